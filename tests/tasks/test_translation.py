"""The translation task: what it gives the training loop (data, loss, dev evaluator)."""

import numpy as np
import pytest
import tensorflow as tf
from support import tiny_config

from seq2seq_tf.data import vocab
from seq2seq_tf.tasks import make_task
from seq2seq_tf.tasks.translation import TranslationDevEvaluator, TranslationTask
from seq2seq_tf.training.losses import sequence_loss


def _prepared(config, tmp_path) -> TranslationTask:
    task = TranslationTask(config)
    task.prepare(str(tmp_path / "work"))
    return task


def _writer_for(tmp_path):
    return lambda name: tf.summary.create_file_writer(str(tmp_path / "tensorboard" / name))


def test_prepare_reads_the_vocabulary_and_the_training_data(toy_data, tmp_path):
    task = _prepared(tiny_config(toy_data), tmp_path)
    assert task.vocab_size == vocab.vocab_size_of(toy_data["spm_model"])
    assert task.describe() == f"vocabulary {task.vocab_size}"
    assert 0 < task.examples_per_epoch() <= 3000
    assert (tmp_path / "work" / "spm.model").exists()
    assert not (tmp_path / "work" / "config.json").exists()  # the loop writes it after resume
    assert task.workdir_fields() == {"vocab_size": task.vocab_size}


def test_loss_sums_equal_the_sequence_loss_of_the_full_logits(toy_data, tmp_path):
    config = tiny_config(toy_data)
    assert config.train.label_smoothing > 0  # smoothed and plain sums differ
    task = _prepared(config, tmp_path)
    model = task.build_model()
    # A real batch with padding, so that masking padding out is part of what is compared.
    for batch in task.train_dataset().take(20):
        if bool(tf.reduce_any(tf.equal(batch[2], vocab.PAD_ID))):
            break
    else:
        pytest.fail("no training batch with padding in 20")
    source, target_in, target_out = batch
    got = [float(x) for x in task.loss_sums(model, batch, training=False)]
    logits = model((source, target_in), training=False)
    want = sequence_loss(logits, target_out, config.train.label_smoothing, vocab.PAD_ID)
    want = [float(x) for x in want]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert want[2] == float(np.sum(target_out.numpy() != vocab.PAD_ID))
    assert want[0] != want[1]  # both sums are compared (near-uniform logits: close)


def test_dev_evaluator_is_none_without_dev_data_and_scores_bleu_with_it(toy_data, tmp_path):
    config = tiny_config(toy_data)
    task = _prepared(config, tmp_path)
    model = task.build_model()
    assert task.dev_evaluator(model, _writer_for(tmp_path)) is None

    config = tiny_config(toy_data)
    for side in ("src", "tgt"):  # ten dev pairs keep greedy decoding short
        lines = open(toy_data[f"test_{side}"], encoding="utf-8").readlines()[:10]
        (tmp_path / f"dev.{side}").write_text("".join(lines), encoding="utf-8")
    config.data.dev_src, config.data.dev_tgt = str(tmp_path / "dev.src"), str(tmp_path / "dev.tgt")
    task = _prepared(config, tmp_path)
    model = task.build_model()
    evaluator = task.dev_evaluator(model, _writer_for(tmp_path))
    assert isinstance(evaluator, TranslationDevEvaluator)
    assert (evaluator.metric, evaluator.metric_label) == ("bleu", "BLEU")
    results = evaluator(1)
    assert 0.0 <= results[evaluator.metric] <= 100.0
    assert np.isfinite(results["loss"]) and results["perplexity"] > 1.0
    assert (tmp_path / "tensorboard" / "dev").is_dir()


def test_make_task_builds_the_configured_task_and_rejects_an_unknown_one(toy_data):
    config = tiny_config(toy_data)
    task = make_task(config, vocab_size=300)
    assert isinstance(task, TranslationTask) and task.vocab_size == 300
    config.task = "other"
    with pytest.raises(ValueError, match=r"config field task: .*'other'"):
        make_task(config)
