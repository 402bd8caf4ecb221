"""The training loop: loss goes down, a restarted run resumes, bad workdirs are refused,
bad steps, time budgets, SIGTERM and dev evaluations are handled."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from support import MULTI30K, tiny_config

from seq2seq_tf import workdir
from seq2seq_tf.models import build_model
from seq2seq_tf.training import checkpoints, loop
from seq2seq_tf.training.checkpoints import TrainingError


def _model_weights(path: str, config, vocab_size: int):
    model = build_model(config.model, vocab_size)
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return [w.numpy() for w in model.weights]


def test_short_run_lowers_the_loss(toy_data, tmp_path):
    first = loop.train_and_evaluate(
        tiny_config(toy_data, num_steps=10, log_every=10), str(tmp_path)
    )
    config = tiny_config(toy_data, num_steps=60, log_every=10)
    last = loop.train_and_evaluate(config, str(tmp_path))
    assert last["loss"] < 0.9 * first["loss"]
    for name in ("loss", "perplexity", "learning_rate", "grad_norm", "tokens_per_sec"):
        assert np.isfinite(last[name])
    assert os.listdir(tmp_path / workdir.TENSORBOARD_DIR / "train")


@pytest.mark.parametrize("dropout", [0.3])  # with dropout: the masks resume too
def test_restart_resumes_step_and_input_position(toy_data, tmp_path, dropout):
    def config(steps):
        config = tiny_config(toy_data, num_steps=steps, checkpoint_every=20)
        config.model.dropout = dropout
        return config

    straight = str(tmp_path / "straight")
    resumed = str(tmp_path / "resumed")
    loop.train_and_evaluate(config(40), straight)
    loop.train_and_evaluate(config(20), resumed)
    assert tf.train.latest_checkpoint(os.path.join(resumed, "checkpoints")).endswith("-20")
    # The same command with the full step count picks up at step 20.
    loop.train_and_evaluate(config(40), resumed)
    reader = tf.train.load_checkpoint(os.path.join(resumed, "checkpoints"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 40
    # Same batches in the same order and, with dropout, the same masks (the dropout
    # random streams are in the checkpoint): the weights match the straight run.
    config = tiny_config(toy_data)
    vocab = workdir.load_workdir_config(straight)[1]
    a = _model_weights(
        tf.train.latest_checkpoint(os.path.join(straight, "checkpoints")), config, vocab
    )
    b = _model_weights(
        tf.train.latest_checkpoint(os.path.join(resumed, "checkpoints")), config, vocab
    )
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_workdir_refuses_another_sentencepiece_model(toy_data, tmp_path):
    from seq2seq_tf.data import vocab

    loop.train_and_evaluate(
        tiny_config(toy_data, num_steps=2, checkpoint_every=2), str(tmp_path / "w")
    )
    other = vocab.train_sentencepiece(
        [toy_data["train_src"], toy_data["train_tgt"]], str(tmp_path / "other"), 200, "bpe"
    )
    config = tiny_config(toy_data, num_steps=4)
    config.data.spm_model = other
    with pytest.raises(workdir.WorkdirError, match=r"other\.model \(\d+ pieces\) is not the"):
        loop.train_and_evaluate(config, str(tmp_path / "w"))


def test_unwritable_workdir_is_named(toy_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(workdir.WorkdirError, match="file/run is not writable"):
        loop.train_and_evaluate(tiny_config(toy_data), str(blocker / "run"))


def test_workdir_config_round_trip(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=3)
    vocab = workdir.prepare_workdir(config, str(tmp_path))
    workdir.write_config(config, str(tmp_path), vocab_size=vocab)
    loaded, loaded_vocab = workdir.load_workdir_config(str(tmp_path))
    assert loaded_vocab == vocab
    assert json.dumps(loaded.to_dict(), default=list) == json.dumps(config.to_dict(), default=list)
    assert tuple(loaded.data.bucket_boundaries) == tuple(config.data.bucket_boundaries)


def test_dev_evaluation_keeps_the_best_checkpoint_and_export_picks_it(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=30, eval_every=10, checkpoint_every=10)
    config.data.dev_src, config.data.dev_tgt = toy_data["test_src"], toy_data["test_tgt"]
    config.train.lr_schedule = "plateau"
    config.train.plateau_patience = 1
    run = str(tmp_path / "run")
    result = loop.train_and_evaluate(config, run)
    best = tf.train.latest_checkpoint(os.path.join(run, workdir.BEST_DIR))
    assert best.endswith(f"best-{result['best_step']}")
    assert checkpoints.default_checkpoint(run) == best
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run, "checkpoints")))
    assert reader.get_tensor("best_step/.ATTRIBUTES/VARIABLE_VALUE") == result["best_step"]
    assert reader.get_tensor("last_eval_step/.ATTRIBUTES/VARIABLE_VALUE") == 30
    best_score = reader.get_tensor("best_score/.ATTRIBUTES/VARIABLE_VALUE")
    assert best_score == pytest.approx(result["best_dev_bleu"])
    with open(os.path.join(run, workdir.BEST_FILE)) as f:
        stored = json.load(f)
    assert (stored["metric"], stored["step"]) == ("bleu", result["best_step"])
    assert stored["bleu"] == pytest.approx(result["best_dev_bleu"])
    assert set(stored["last"]) >= {"bleu", "chrf", "loss", "perplexity"}


def test_time_budget_stops_early_with_a_checkpoint(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=100000, max_time_s=3.0)
    result = loop.train_and_evaluate(config, str(tmp_path))
    assert result["stopped"] == "time budget 3s"
    assert 0 < result["step"] < 100000
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith(f"-{result['step']}")


def test_time_decay_anneals_the_learning_rate_by_the_clock(toy_data, tmp_path, monkeypatch):
    clock = iter(range(10**6))  # every reading of the clock is one second later
    monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(clock)))
    factors = []
    real_factor = loop.time_decay_factor
    monkeypatch.setattr(
        loop, "time_decay_factor", lambda *a: factors.append(real_factor(*a)) or factors[-1]
    )
    config = tiny_config(toy_data, num_steps=1000, max_time_s=60.0, time_decay_fraction=0.5)
    config.train.log_every = 1
    result = loop.train_and_evaluate(config, str(tmp_path))
    assert result["stopped"] == "time budget 60s"
    assert factors[0] == 1.0 and factors[len(factors) // 3] == 1.0
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    assert factors[-1] < 0.2
    # The optimizer's rate is the schedule's times the clock's factor.
    np.testing.assert_allclose(result["learning_rate"], 5e-3 * factors[-1], rtol=1e-5)


def test_token_budget_batches_and_derived_buckets_train(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=5)
    config.data.batch_tokens = 400
    config.data.bucket_boundaries = ()
    result = loop.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(result["loss"]) and result["epoch"] > 0


@pytest.mark.skipif(not MULTI30K.exists(), reason="../shared/data/multi30k not present")
def test_multi30k_smoke_trains_a_few_steps(tmp_path):
    """Prepare the real corpus, a small SentencePiece model, a few steps of a small model."""
    from support import load_script

    from seq2seq_tf.config import default_config
    from seq2seq_tf.data import vocab

    prepare = load_script("prepare_corpus")
    out = tmp_path / "m30k"
    report = prepare.prepare_directory(str(MULTI30K), ["train", "val"], "en", "de", str(out))
    assert report["train"]["pairs"] == 29000 and report["val"]["pairs"] == 1014
    spm = vocab.train_sentencepiece(
        [str(out / "train.en"), str(out / "train.de")], str(out / "spm"), 1000,
        input_sentence_size=20000,
    )  # fmt: skip
    config = default_config()
    config.data.train_src, config.data.train_tgt = str(out / "train.en"), str(out / "train.de")
    config.data.spm_model = spm
    config.data.target_lang = "de"
    config.data.bucket_boundaries = ()
    config.model.embedding_dim, config.model.encoder_layers = 16, 1
    config.model.encoder_units, config.model.decoder_layers = 16, 1
    config.model.decoder_units = config.model.attention_units = 32
    config.train.num_steps, config.train.log_every = 6, 3
    result = loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert result["step"] == 6 and np.isfinite(result["loss"])


def test_mixed_bfloat16_trains_with_float32_weights_and_exports_float32(toy_data, tmp_path):
    from seq2seq_tf.serving import export

    config = tiny_config(toy_data, num_steps=20, precision="mixed_bfloat16")
    first = loop.train_and_evaluate(tiny_config(toy_data, num_steps=2), str(tmp_path / "f32"))
    result = loop.train_and_evaluate(config, str(tmp_path / "bf16"))
    assert np.isfinite(result["loss"]) and result["loss"] < first["loss"]
    model, optimizer = loop.build_training(config, lambda: build_model(config.model, 300))
    assert model.compute_dtype == "bfloat16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert __import__("keras").config.dtype_policy().name == "float32"  # global policy restored
    path = export.export(str(tmp_path / "bf16"), str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](inputs=tf.constant(["the dog laughs ."]))
    assert out["translations"].shape == (1,) and out["scores"].dtype == tf.float32


def _fake_steps(monkeypatch, pattern):
    """Replaces the train step: pattern[i] False makes step i non-finite (nothing applied)."""
    real = loop.make_train_step
    calls = {"n": 0}

    def make(model, optimizer, config, loss_sums, input_signature, strategy=None):
        step_fn = real(model, optimizer, config, loss_sums, input_signature, strategy)

        def fake(source, target_in, target_out):
            i = calls["n"]
            calls["n"] += 1
            if i < len(pattern) and not pattern[i]:
                nan = tf.constant(float("nan"))
                return nan, nan, tf.constant(10.0), nan, tf.constant(False)
            return step_fn(source, target_in, target_out)

        return fake

    monkeypatch.setattr(loop, "make_train_step", make)


def test_non_finite_steps_are_skipped_and_counted(toy_data, tmp_path, monkeypatch):
    _fake_steps(monkeypatch, [True, False, False, True])
    result = loop.train_and_evaluate(tiny_config(toy_data, num_steps=10), str(tmp_path))
    assert np.isfinite(result["loss"]) and result["skipped_steps"] == 2
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    assert reader.get_tensor("skipped/.ATTRIBUTES/VARIABLE_VALUE") == 2
    # Adam counted only the applied steps.
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 8


def test_a_run_of_non_finite_steps_stops_and_keeps_the_good_checkpoint(
    toy_data, tmp_path, monkeypatch
):
    loop.train_and_evaluate(tiny_config(toy_data, num_steps=20), str(tmp_path))
    _fake_steps(monkeypatch, [False] * 100)
    with pytest.raises(TrainingError, match=r"5 non-finite steps in a row.*ckpt-20"):
        loop.train_and_evaluate(tiny_config(toy_data, num_steps=60, max_bad_steps=5), str(tmp_path))
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-20")


_SIGTERM_RUN = """
import sys
sys.path.insert(0, {tests!r})
from support import tiny_config
from seq2seq_tf.training import loop
from absl import logging
logging.set_verbosity("info")
toy = {toy!r}
result = loop.train_and_evaluate(tiny_config(toy, num_steps=100000, checkpoint_every=100000,
                                              log_every=5), {workdir!r})
print("STOPPED", result["step"], result["stopped"])
"""


def _start_until_step_10(script) -> tuple[object, list[str]]:
    """Starts the training script; returns it once it logs step 10 (or its output ends)."""
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    deadline = time.time() + 240
    for line in process.stdout:  # wait until training steps are being logged
        lines.append(line)
        if "step 10/100000" in line or time.time() > deadline:
            return process, lines
    process.wait(timeout=60)  # its output ended: it exited
    return process, lines


def test_sigterm_saves_a_checkpoint_then_exits(toy_data, tmp_path):
    import pathlib
    import signal

    script = tmp_path / "run.py"
    tests = str(pathlib.Path(__file__).parents[1])  # where support.py is
    script.write_text(_SIGTERM_RUN.format(tests=tests, toy=toy_data, workdir=str(tmp_path / "run")))
    process, lines = _start_until_step_10(script)
    if process.returncode is not None and process.returncode < 0:
        # It died by a signal before any was sent: in two of three full suite runs on
        # 2026-12-03 the child aborted in its first steps with glibc's "malloc():
        # mismatching next->prev_size", never in 30 runs alone or two at once. Not what
        # this test is about (what SIGTERM does to a running loop): start it once more.
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        first = f"(the first start died with {process.returncode}:\n{''.join(lines)[-1500:]})\n"
        process, lines = _start_until_step_10(script)
        lines.insert(0, first)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=240)
    text = "".join(lines) + out
    assert process.returncode == 0, text[-3000:]
    assert "SIGTERM received" in text
    stopped_step = int(text.split("STOPPED ")[1].split()[0])
    assert stopped_step >= 10
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest and latest.endswith(f"ckpt-{stopped_step}"), text[-2000:]


def test_mixed_float16_scales_the_loss_keeps_float32_weights_and_trains(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=12, log_every=4, precision="mixed_float16")
    model, optimizer = loop.build_training(config, lambda: build_model(config.model, 300))
    assert model.compute_dtype == "float16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert isinstance(optimizer, __import__("keras").optimizers.LossScaleOptimizer)
    first = loop.train_and_evaluate(tiny_config(toy_data, num_steps=1), str(tmp_path / "f32"))
    result = loop.train_and_evaluate(config, str(tmp_path / "f16"))
    assert result["step"] == 12 and np.isfinite(result["loss"]) and result["loss"] < first["loss"]
    # The loss scale is part of the checkpoint, so a resumed run keeps it.
    reader = tf.train.load_checkpoint(os.path.join(tmp_path, "f16", "checkpoints"))
    assert any("dynamic_scale" in name for name in reader.get_variable_to_shape_map())
