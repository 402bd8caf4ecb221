"""Training loop: loss goes down, a restarted run resumes, bad workdirs are refused."""

import os

import numpy as np
import pytest
import tensorflow as tf
from support import MULTI30K, tiny_config

from seq2seq_tf import train, workdir
from seq2seq_tf.models import build_model


def _model_weights(path: str, config, vocab_size: int):
    model = build_model(config.model, vocab_size)
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return [w.numpy() for w in model.weights]


def test_short_run_lowers_the_loss(toy_data, tmp_path):
    first = train.train_and_evaluate(
        tiny_config(toy_data, num_steps=10, log_every=10), str(tmp_path)
    )
    config = tiny_config(toy_data, num_steps=60, log_every=10)
    last = train.train_and_evaluate(config, str(tmp_path))
    assert last["loss"] < 0.9 * first["loss"]
    for name in ("loss", "perplexity", "learning_rate", "grad_norm", "tokens_per_sec"):
        assert np.isfinite(last[name])
    assert os.listdir(tmp_path / workdir.TENSORBOARD_DIR / "train")


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_restart_resumes_step_and_input_position(toy_data, tmp_path, dropout):
    def config(steps):
        config = tiny_config(toy_data, num_steps=steps, checkpoint_every=20)
        config.model.dropout = dropout
        return config

    straight = str(tmp_path / "straight")
    resumed = str(tmp_path / "resumed")
    train.train_and_evaluate(config(40), straight)
    train.train_and_evaluate(config(20), resumed)
    assert tf.train.latest_checkpoint(os.path.join(resumed, "checkpoints")).endswith("-20")
    # The same command with the full step count picks up at step 20.
    train.train_and_evaluate(config(40), resumed)
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
    from seq2seq_tf import tokenizer

    train.train_and_evaluate(
        tiny_config(toy_data, num_steps=2, checkpoint_every=2), str(tmp_path / "w")
    )
    other = tokenizer.train_sentencepiece(
        [toy_data["train_src"], toy_data["train_tgt"]], str(tmp_path / "other"), 200, "bpe"
    )
    config = tiny_config(toy_data, num_steps=4)
    config.data.spm_model = other
    with pytest.raises(workdir.WorkdirError, match=r"other\.model \(\d+ pieces\) is not the"):
        train.train_and_evaluate(config, str(tmp_path / "w"))


def test_unwritable_workdir_is_named(toy_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(workdir.WorkdirError, match="file/run is not writable"):
        train.train_and_evaluate(tiny_config(toy_data), str(blocker / "run"))


def test_workdir_config_round_trip(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=3)
    vocab = workdir.prepare_workdir(config, str(tmp_path))
    loaded, loaded_vocab = workdir.load_workdir_config(str(tmp_path))
    assert loaded_vocab == vocab
    assert loaded.to_dict() == config.to_dict() or loaded.model.to_dict() == config.model.to_dict()
    assert tuple(loaded.data.bucket_boundaries) == tuple(config.data.bucket_boundaries)


class _ScriptedEvaluator:
    """Stands in for DevEvaluator: returns the next BLEU of a script."""

    def __init__(self, scores):
        self.scores = list(scores)

    def __call__(self, step):
        return {"bleu": self.scores.pop(0)}


def _tracker(tmp_path, scores, **train_fields):
    from seq2seq_tf.config import default_config

    config = default_config()
    for key, value in train_fields.items():
        config.train[key] = value
    weights = tf.Variable([0.0])
    step = tf.Variable(0, dtype=tf.int64)
    tracker = train._DevTracker(_ScriptedEvaluator(scores), config, str(tmp_path), weights, step)
    return tracker, weights, step


def test_best_checkpoint_holds_the_best_dev_bleu_and_plateau_halves_the_rate(tmp_path):
    tracker, weights, step = _tracker(
        tmp_path, [10.0, 12.0, 11.0, 12.0, 9.0, 8.0], lr_schedule="plateau", plateau_patience=2
    )
    lr_scale = tf.Variable(1.0)
    decisions = []
    for current, marker in zip(range(100, 700, 100), range(1, 7)):
        step.assign(current)
        weights.assign([float(marker)])
        decisions.append(tracker(current, lr_scale))
    assert decisions == [False] * 6  # no early stopping configured
    assert (int(tracker.best_step), float(tracker.best_bleu)) == (200, 12.0)  # ties do not win
    assert int(tracker.evals_since_best) == 4
    assert float(lr_scale) == pytest.approx(0.25)  # halved after 2 and after 4 bad evaluations
    best = tf.train.latest_checkpoint(str(tmp_path / workdir.BEST_DIR))
    assert best.endswith("best-200")
    assert tf.train.load_checkpoint(best).get_tensor("model/.ATTRIBUTES/VARIABLE_VALUE")[0] == 2.0
    stored = __import__("json").load(open(tmp_path / workdir.BEST_FILE))
    assert stored["step"] == 200 and stored["bleu"] == 12.0


def test_early_stopping_after_patience_evaluations_without_a_new_best(tmp_path):
    tracker, _, step = _tracker(tmp_path, [5.0, 4.0, 6.0, 6.0, 5.0], early_stopping_patience=2)
    lr_scale = tf.Variable(1.0)
    decisions = [tracker(s, lr_scale) for s in (1, 2, 3, 4, 5)]
    assert decisions == [False, False, False, False, True]
    assert float(lr_scale) == 1.0  # not a plateau schedule


def test_inverse_sqrt_schedule_warms_up_then_decays():
    schedule = train.InverseSqrtSchedule(1e-3, warmup_steps=100)
    values = [float(schedule(s)) for s in (0, 49, 99, 399, 9999)]
    np.testing.assert_allclose(values, [1e-5, 5e-4, 1e-3, 5e-4, 1e-4], rtol=1e-5)


def test_dev_evaluation_keeps_the_best_checkpoint_and_export_picks_it(toy_data, tmp_path):
    from seq2seq_tf import export

    config = tiny_config(toy_data, num_steps=30, eval_every=10, checkpoint_every=10)
    config.data.dev_src, config.data.dev_tgt = toy_data["test_src"], toy_data["test_tgt"]
    config.train.lr_schedule = "plateau"
    config.train.plateau_patience = 1
    run = str(tmp_path / "run")
    result = train.train_and_evaluate(config, run)
    best = tf.train.latest_checkpoint(os.path.join(run, workdir.BEST_DIR))
    assert best.endswith(f"best-{result['best_step']}")
    assert export.default_checkpoint(run) == best
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run, "checkpoints")))
    assert reader.get_tensor("best_step/.ATTRIBUTES/VARIABLE_VALUE") == result["best_step"]
    assert reader.get_tensor("last_eval_step/.ATTRIBUTES/VARIABLE_VALUE") == 30


def test_time_budget_stops_early_with_a_checkpoint(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=100000, max_time_s=3.0)
    result = train.train_and_evaluate(config, str(tmp_path))
    assert result["stopped"] == "time budget 3s"
    assert 0 < result["step"] < 100000
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith(f"-{result['step']}")


def test_time_decay_factor_holds_then_falls_linearly_to_zero():
    factors = [train.time_decay_factor(t, 100.0, 0.25) for t in (0, 50, 75, 87.5, 100, 120)]
    np.testing.assert_allclose(factors, [1.0, 1.0, 1.0, 0.5, 0.0, 0.0])
    assert train.time_decay_factor(99.0, 100.0, 0.0) == 1.0  # off


def test_time_decay_anneals_the_learning_rate_by_the_clock(toy_data, tmp_path, monkeypatch):
    clock = iter(range(10**6))  # every reading of the clock is one second later
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(next(clock)))
    factors = []
    real_factor = train.time_decay_factor
    monkeypatch.setattr(
        train, "time_decay_factor", lambda *a: factors.append(real_factor(*a)) or factors[-1]
    )
    config = tiny_config(toy_data, num_steps=1000, max_time_s=60.0, time_decay_fraction=0.5)
    config.train.log_every = 1
    result = train.train_and_evaluate(config, str(tmp_path))
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
    result = train.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(result["loss"]) and result["epoch"] > 0


@pytest.mark.skipif(not MULTI30K.exists(), reason="../shared/data/multi30k not present")
def test_multi30k_smoke_trains_a_few_steps(tmp_path):
    """Prepare the real corpus, a small SentencePiece model, a few steps of a small model."""
    from support import load_script

    from seq2seq_tf import tokenizer
    from seq2seq_tf.config import default_config

    prepare = load_script("prepare_corpus")
    out = tmp_path / "m30k"
    report = prepare.prepare_directory(str(MULTI30K), ["train", "val"], "en", "de", str(out))
    assert report["train"]["pairs"] == 29000 and report["val"]["pairs"] == 1014
    spm = tokenizer.train_sentencepiece(
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
    result = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert result["step"] == 6 and np.isfinite(result["loss"])


def test_mixed_bfloat16_trains_with_float32_weights_and_exports_float32(toy_data, tmp_path):
    from seq2seq_tf import export

    config = tiny_config(toy_data, num_steps=20, precision="mixed_bfloat16")
    first = train.train_and_evaluate(tiny_config(toy_data, num_steps=2), str(tmp_path / "f32"))
    result = train.train_and_evaluate(config, str(tmp_path / "bf16"))
    assert np.isfinite(result["loss"]) and result["loss"] < first["loss"]
    model, optimizer = train.build_training(config, 300)
    assert model.compute_dtype == "bfloat16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert __import__("keras").config.dtype_policy().name == "float32"  # global policy restored
    path = export.export(str(tmp_path / "bf16"), str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](inputs=tf.constant(["the dog laughs ."]))
    assert out["translations"].shape == (1,) and out["scores"].dtype == tf.float32


def _fake_steps(monkeypatch, pattern):
    """Replaces the train step: pattern[i] False makes step i non-finite (nothing applied)."""
    real = train.make_train_step
    calls = {"n": 0}

    def make(model, optimizer, config, strategy=None):
        step_fn = real(model, optimizer, config, strategy)

        def fake(source, target_in, target_out):
            i = calls["n"]
            calls["n"] += 1
            if i < len(pattern) and not pattern[i]:
                nan = tf.constant(float("nan"))
                return nan, nan, tf.constant(10.0), nan, tf.constant(False)
            return step_fn(source, target_in, target_out)

        return fake

    monkeypatch.setattr(train, "make_train_step", make)


def test_non_finite_steps_are_skipped_and_counted(toy_data, tmp_path, monkeypatch):
    _fake_steps(monkeypatch, [True, False, False, True])
    result = train.train_and_evaluate(tiny_config(toy_data, num_steps=10), str(tmp_path))
    assert np.isfinite(result["loss"]) and result["skipped_steps"] == 2
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    assert reader.get_tensor("skipped/.ATTRIBUTES/VARIABLE_VALUE") == 2
    # Adam counted only the applied steps.
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 8


def test_a_run_of_non_finite_steps_stops_and_keeps_the_good_checkpoint(
    toy_data, tmp_path, monkeypatch
):
    train.train_and_evaluate(tiny_config(toy_data, num_steps=20), str(tmp_path))
    _fake_steps(monkeypatch, [False] * 100)
    with pytest.raises(train.TrainingError, match=r"5 non-finite steps in a row.*ckpt-20"):
        train.train_and_evaluate(
            tiny_config(toy_data, num_steps=60, max_bad_steps=5), str(tmp_path)
        )
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-20")


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(toy_data, tmp_path, caplog):
    caplog.set_level("INFO", logger="absl")
    train.train_and_evaluate(tiny_config(toy_data, num_steps=40), str(tmp_path))
    data_file = tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:  # truncate: a write cut short by a crash
        f.truncate(os.path.getsize(data_file) // 3)
    result = train.train_and_evaluate(tiny_config(toy_data, num_steps=60), str(tmp_path))
    assert result["step"] == 60
    assert "ckpt-40 is unreadable" in caplog.text
    assert "resumed from" in caplog.text and "ckpt-20 at step 20" in caplog.text


_SIGTERM_RUN = """
import sys
sys.path.insert(0, {tests!r})
from support import tiny_config
from seq2seq_tf import train
from absl import logging
logging.set_verbosity("info")
toy = {toy!r}
result = train.train_and_evaluate(tiny_config(toy, num_steps=100000, checkpoint_every=100000,
                                              log_every=5), {workdir!r})
print("STOPPED", result["step"], result["stopped"])
"""


def test_sigterm_saves_a_checkpoint_then_exits(toy_data, tmp_path):
    import pathlib
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    tests = str(pathlib.Path(__file__).parent)
    script.write_text(_SIGTERM_RUN.format(tests=tests, toy=toy_data, workdir=str(tmp_path / "run")))
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    deadline = time.time() + 240
    for line in process.stdout:  # wait until training steps are being logged
        lines.append(line)
        if "step 10/100000" in line or time.time() > deadline:
            break
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
    model, optimizer = train.build_training(config, 300)
    assert model.compute_dtype == "float16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert isinstance(optimizer, __import__("keras").optimizers.LossScaleOptimizer)
    first = train.train_and_evaluate(tiny_config(toy_data, num_steps=1), str(tmp_path / "f32"))
    result = train.train_and_evaluate(config, str(tmp_path / "f16"))
    assert result["step"] == 12 and np.isfinite(result["loss"]) and result["loss"] < first["loss"]
    # The loss scale is part of the checkpoint, so a resumed run keeps it.
    reader = tf.train.load_checkpoint(os.path.join(tmp_path, "f16", "checkpoints"))
    assert any("dynamic_scale" in name for name in reader.get_variable_to_shape_map())


def test_a_failing_checkpoint_write_names_the_path_and_a_rerun_resumes_the_last_good(
    toy_data, tmp_path
):
    run = tmp_path / "run"
    train.train_and_evaluate(tiny_config(toy_data, num_steps=10, checkpoint_every=10), str(run))
    # The next save cannot create its temporary directory (as on a full or read-only disk).
    (run / "checkpoints" / "ckpt-20_temp").write_text("in the way")
    config = tiny_config(toy_data, num_steps=20, checkpoint_every=10)
    with pytest.raises(train.TrainingError, match="could not write the step 20 checkpoint") as err:
        train.train_and_evaluate(config, str(run))
    assert str(run / "checkpoints") in str(err.value) and "ckpt-10" in str(err.value)
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-10")
    (run / "checkpoints" / "ckpt-20_temp").unlink()
    result = train.train_and_evaluate(config, str(run))
    assert result["step"] == 20
