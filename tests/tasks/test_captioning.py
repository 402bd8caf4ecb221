"""The captioning task on the shared training loop: best by dev CIDEr-D, the loss with the
penalty, resume checks, TensorBoard output."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from support import tiny_caption_config

from seq2seq_tf.tasks import make_task
from seq2seq_tf.training.losses import token_cross_entropy
from seq2seq_tf.workdir import WorkdirError


def test_training_keeps_the_best_dev_cider(caption_workdir):
    best = json.load(open(os.path.join(caption_workdir, "best.json")))
    assert best["metric"] == "cider" and set(best["last"]) >= {"bleu1", "bleu4", "cider"}
    stored = json.load(open(os.path.join(caption_workdir, "config.json")))
    assert stored["task"] == "captioning" and "circle" in stored["caption"]["words"].split()
    events = tf.io.gfile.glob(os.path.join(caption_workdir, "tensorboard", "dev", "events*"))
    tags = set()
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert {"cider", "captions", "attention/0"} <= tags


def test_loss_adds_lambda_times_the_penalty(shapes_data, tmp_path):
    config = tiny_caption_config(shapes_data, attention_penalty=0.5)
    task = make_task(config)
    task.prepare(str(tmp_path))
    model = task.build_model()
    batch = next(iter(task.train_dataset()))
    loss, nll, tokens = (float(x) for x in task.loss_sums(model, batch, training=False))
    logits, labels, penalty = model.teacher_forced(*batch, training=False)
    smoothed, reference_nll = token_cross_entropy(logits, labels, 0.1)
    assert tokens == float(np.sum(batch[2].numpy() != 0))
    assert nll == pytest.approx(float(tf.reduce_sum(reference_nll)), rel=1e-5)
    expected = float(tf.reduce_sum(smoothed)) + 0.5 * float(tf.reduce_sum(penalty))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_resume_with_another_encoder_is_refused(caption_workdir, shapes_data):
    config = tiny_caption_config(shapes_data, cnn_filters=(8, 8))
    with pytest.raises(WorkdirError, match="caption.cnn_filters"):
        make_task(config).prepare(caption_workdir)
    config = tiny_caption_config(shapes_data, cnn_kernel_sizes=(3, 1))
    with pytest.raises(WorkdirError, match="caption.cnn_kernel_sizes"):
        make_task(config).prepare(caption_workdir)


def test_config_errors_name_the_field(shapes_data):
    from seq2seq_tf.config import ConfigError, validate

    config = tiny_caption_config(shapes_data, image_size=30)
    with pytest.raises(ConfigError, match="caption.image_size"):
        validate(config)
    config = tiny_caption_config(shapes_data, cnn_kernel_sizes=(3, 4))
    with pytest.raises(ConfigError, match="caption.cnn_kernel_sizes: needs one odd"):
        validate(config)
    config = tiny_caption_config(shapes_data)
    config.model.bridge = "copy"
    with pytest.raises(ConfigError, match="model.bridge"):
        validate(config)
