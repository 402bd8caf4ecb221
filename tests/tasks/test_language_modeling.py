"""The language-model task: carried state in the compiled loss, exact resume in the middle
of a pass, evaluation against NumPy, the best checkpoint by bits per character, bad text."""

import glob
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from support import tiny_lm_config

from seq2seq_tf import workdir as workdir_lib
from seq2seq_tf.data import stream, vocab
from seq2seq_tf.data.text import DataError
from seq2seq_tf.tasks import make_task
from seq2seq_tf.tasks.language_modeling import LanguageModelTask
from seq2seq_tf.training import loop
from seq2seq_tf.training.checkpoints import restore_model


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _nats(logits, labels) -> float:
    """Summed NLL by NumPy: the reference the toolkit's sums are checked against."""
    picked = np.take_along_axis(_log_softmax(logits), np.asarray(labels)[..., None], -1)
    return float(-picked.sum())


def _prepared(lm_text, tmp_path, **train):
    task = make_task(tiny_lm_config(lm_text, **train))
    assert isinstance(task, LanguageModelTask)
    task.prepare(str(tmp_path))
    return task, task.build_model()


def test_consecutive_windows_carry_the_state_inside_the_loss(lm_text, tmp_path):
    task, model = _prepared(lm_text, tmp_path)
    for weight in model.weights:  # random weights, so the carried state shows
        weight.assign(np.random.default_rng(0).normal(scale=0.4, size=weight.shape))
    batches = list(task.train_dataset().take(3))
    loss_sums = tf.function(lambda batch: task.loss_sums(model, batch, training=False))
    nll = [float(loss_sums(b)[1]) for b in batches]
    rows = stream.stream_rows(task.splits["train"], 8)[:, : 3 * 24 + 1]
    reference = _nats(model(tf.constant(rows[:, :-1])), rows[:, 1:])  # one pass from zeros
    assert sum(nll) == pytest.approx(reference, rel=1e-5)
    # The first window of a pass starts from zeros again, whatever is carried.
    again = float(loss_sums(batches[0])[1])
    assert again == pytest.approx(nll[0], rel=1e-6)
    carried = [v.numpy() for layer in task.carried.layers for v in layer]
    assert all(np.abs(c).max() > 0 for c in carried)


def _losses(workdir: str) -> dict[int, float]:
    points = []
    for path in glob.glob(os.path.join(workdir, "tensorboard", "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "loss":
                    points.append(
                        (event.wall_time, event.step, float(tf.make_ndarray(value.tensor)))
                    )
    return {step: loss for _, step, loss in sorted(points)}


def _run(lm_text, path, steps):
    config = tiny_lm_config(lm_text, num_steps=steps, checkpoint_every=4, log_every=1)
    config.model.dropout = config.model.recurrent_dropout = 0.2
    loop.train_and_evaluate(config, str(path))


def _weights(path) -> list[np.ndarray]:
    reader = tf.train.load_checkpoint(os.path.join(path, "checkpoints"))
    names = sorted(n for n in reader.get_variable_to_shape_map() if n.startswith("model/"))
    return [reader.get_tensor(n) for n in names if "OPTIMIZER_SLOT" not in n]


def test_a_run_stopped_in_the_middle_of_a_pass_resumes_on_the_same_curve(
    lm_text, tmp_path, monkeypatch
):
    # 69 windows per pass: step 10 is inside the first pass, with a non-zero carried state.
    _run(lm_text, tmp_path / "straight", 14)
    _run(lm_text, tmp_path / "stopped", 10)
    reader = tf.train.load_checkpoint(os.path.join(tmp_path / "stopped", "checkpoints"))
    carried = [n for n in reader.get_variable_to_shape_map() if n.startswith("carried_state/")]
    assert carried and all(np.abs(reader.get_tensor(n)).max() > 0 for n in carried)
    _run(lm_text, tmp_path / "stopped", 14)
    straight, resumed = _losses(tmp_path / "straight"), _losses(tmp_path / "stopped")
    assert sorted(resumed) == sorted(straight) == list(range(1, 15))
    for step in straight:
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6), step
    for a, b in zip(_weights(tmp_path / "straight"), _weights(tmp_path / "stopped")):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # Control: a checkpoint without the carried state resumes from zeros, off the curve.
    monkeypatch.setattr(LanguageModelTask, "checkpoint_items", lambda self: {})
    _run(lm_text, tmp_path / "forgetful", 10)
    _run(lm_text, tmp_path / "forgetful", 14)
    forgetful = _losses(tmp_path / "forgetful")
    assert forgetful[10] == pytest.approx(straight[10], rel=1e-6)
    assert abs(forgetful[11] - straight[11]) > 1e-4


def test_evaluation_matches_numpy_with_the_state_carried_and_reset(lm_workdir):
    config, vocab_size = workdir_lib.load_workdir_config(lm_workdir)
    assert config.data.batch_size == 8  # the split is read in lm.eval_rows rows, not these
    config.lm.eval_rows = 3
    task = make_task(config, vocab_size)
    task.prepare(lm_workdir)
    model, _ = restore_model(lm_workdir)
    evaluator = task.dev_evaluator(model, lambda name: tf.summary.create_noop_writer())
    assert evaluator.metric == "bits_per_char" and evaluator.higher_is_better is False
    results = evaluator.scores(task.splits["valid"])
    rows = stream.stream_rows(task.splits["valid"], 3)
    predicted = rows.shape[0] * (rows.shape[1] - 1)
    carried = _nats(model(tf.constant(rows[:, :-1])), rows[:, 1:])  # each row in one pass
    reset = 0.0
    for start in range(0, rows.shape[1] - 1, 24):
        end = min(start + 24, rows.shape[1] - 1)
        reset += _nats(model(tf.constant(rows[:, start:end])), rows[:, start + 1 : end + 1])
    assert results["loss"] == pytest.approx(carried / predicted, rel=1e-5)
    assert results["bits_per_char"] == pytest.approx(carried / predicted / math.log(2), rel=1e-5)
    assert results["perplexity"] == pytest.approx(math.exp(carried / predicted), rel=1e-5)
    assert results["loss_reset"] == pytest.approx(reset / predicted, rel=1e-5)
    assert results["bits_per_char"] < results["bits_per_char_reset"]  # carrying pays
    assert isinstance(evaluator.sample(1), str)


def test_training_keeps_the_best_checkpoint_by_lowest_bits_per_char(lm_workdir):
    with open(os.path.join(lm_workdir, workdir_lib.BEST_FILE)) as f:
        best = json.load(f)
    assert best["metric"] == "bits_per_char"
    assert best["bits_per_char"] <= best["last"]["bits_per_char"] + 1e-6  # float32 best
    assert best["bits_per_char"] < 3.0  # a uniform guess over ~30 characters is ~4.9
    stored, _ = workdir_lib.load_workdir_config(lm_workdir)
    assert stored.task == "language_model" and len(stored.lm.characters) > 20
    events = glob.glob(os.path.join(lm_workdir, "tensorboard", "dev", "events.*"))
    tags = {
        value.tag
        for path in events
        for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
    }
    assert {"bits_per_char", "bits_per_char_reset", "loss", "perplexity", "sample"} <= tags


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"no text in .*bad\.txt"),
        (b"ROMEO: hi\n", r"bad\.txt: 11 tokens .* shorter than one window"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", r"bad\.txt:\d+: (invalid UTF-8|NUL byte)"),
    ],
    ids=["empty", "shorter_than_a_window", "binary"],
)
def test_bad_training_text_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    config = tiny_lm_config(str(path))
    config.lm.valid_fraction = config.lm.test_fraction = 0.0
    with pytest.raises(DataError, match=message):
        loop.train_and_evaluate(config, str(tmp_path / "run"))


def test_a_workdir_refuses_other_characters_batch_or_window(lm_text, tmp_path):
    _prepared(lm_text, tmp_path)
    config = tiny_lm_config(lm_text)
    config.lm.characters = "abc"
    with pytest.raises(workdir_lib.WorkdirError, match="lm.characters differ"):
        make_task(config).prepare(str(tmp_path))
    for group, name, value in (("data", "batch_size", 4), ("lm", "window", 12)):
        config = tiny_lm_config(lm_text)
        config[group][name] = value
        with pytest.raises(workdir_lib.WorkdirError, match=f"{group}.{name} is {value} but"):
            make_task(config).prepare(str(tmp_path))


def test_the_vocabulary_is_the_training_parts_and_new_characters_are_unknown(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abab ba\n" * 900 + "Zab\n" * 100, encoding="utf-8")  # Z only held out
    config = tiny_lm_config(str(path))
    config.lm.valid_fraction, config.lm.test_fraction = 0.1, 0.0
    task = make_task(config)
    task.prepare(str(tmp_path / "run"))
    assert config.lm.characters == "\n ab"
    assert task.splits["train"][0] == vocab.BOS_ID  # the text starts after BOS
    assert (task.splits["valid"] == vocab.UNK_ID).sum() == 100


def test_mixed_bfloat16_trains_with_the_carried_state_kept_in_float32(lm_text, tmp_path):
    config = tiny_lm_config(lm_text, num_steps=8, eval_every=8, precision="mixed_bfloat16")
    result = loop.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(result["loss"]) and np.isfinite(result["best_dev_bits_per_char"])
    reader = tf.train.load_checkpoint(os.path.join(tmp_path, "checkpoints"))
    dtypes = reader.get_variable_to_dtype_map()
    carried = [n for n in dtypes if n.startswith("carried_state/")]
    assert carried and all(dtypes[n] == tf.float32 for n in carried)
