"""Seq2Seq assembly: bridges, the loss, checkpoint round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.model import Seq2Seq, sequence_loss

SOURCE = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
TARGET_IN = tf.constant([[2, 9, 10, 11], [2, 12, 13, 0]])


@pytest.mark.parametrize(
    "bridge,enc_units,dec_units", [("zeros", 6, 10), ("copy", 5, 10), ("dense", 6, 10)]
)
def test_bridges_build_and_run(bridge, enc_units, dec_units):
    model = Seq2Seq(40, 8, 2, enc_units, 2, dec_units, 12, bridge=bridge)
    assert model((SOURCE, TARGET_IN)).shape == (2, 4, 40)
    state = model.initial_state(SOURCE)
    if bridge == "zeros":
        assert np.all(state["cells"][0][0].numpy() == 0)
    else:
        assert np.any(state["cells"][0][0].numpy() != 0)


def test_loss_matches_numpy_with_label_smoothing_and_mask():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    target = np.array([[1, 4, 3], [2, 3, 0]])
    eps = 0.1
    loss, nll, tokens = sequence_loss(tf.constant(logits), tf.constant(target), eps)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    smooth = (1 - eps) * np.eye(5)[target] + eps / 5
    per_token = -(smooth * log_p).sum(-1)
    mask = target != 0
    np.testing.assert_allclose(loss, per_token[mask].sum(), rtol=1e-5)
    nll_expected = -np.take_along_axis(log_p, target[..., None], -1)[..., 0][mask].sum()
    np.testing.assert_allclose(nll, nll_expected, rtol=1e-5)
    assert float(tokens) == 5


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = Seq2Seq(40, 8, 2, 6, 2, 12, 10, bridge="copy")
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    clone = Seq2Seq(40, 8, 2, 6, 2, 12, 10, bridge="copy")
    tf.train.Checkpoint(model=clone).restore(path).assert_consumed()
    np.testing.assert_array_equal(model((SOURCE, TARGET_IN)), clone((SOURCE, TARGET_IN)))


def test_config_round_trip():
    model = Seq2Seq(40, 8, 2, 6, 1, 12, 10, bridge="dense", dropout=0.2)
    clone = Seq2Seq.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert len(clone.weights) == len(model.weights)
    assert keras.saving.get_registered_object("seq2seq_tf>Seq2Seq") is Seq2Seq
