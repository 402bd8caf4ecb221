"""Token cross entropy with label smoothing against NumPy and autodiff."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.training.losses import sequence_loss, token_cross_entropy


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


def test_pad_id_decides_which_tokens_count():
    rng = np.random.default_rng(2)
    logits = tf.constant(rng.normal(size=(2, 3, 5)).astype(np.float32))
    target = tf.constant([[1, 4, 0], [2, 1, 1]])
    loss, nll, tokens = sequence_loss(logits, target, 0.1, pad_id=1)
    smoothed, plain = token_cross_entropy(logits, target, 0.1)
    mask = target.numpy() != 1
    assert float(tokens) == 3  # 0 is a real token here
    np.testing.assert_allclose(loss, smoothed.numpy()[mask].sum(), rtol=1e-6)
    np.testing.assert_allclose(nll, plain.numpy()[mask].sum(), rtol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_token_cross_entropy_fused_gradient_equals_autodiff_of_the_smoothed_loss(eps):
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(size=(3, 4, 7)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 7, size=(3, 4)))
    weights = tf.constant(rng.normal(size=(3, 4)).astype(np.float32))

    def reference(logits):
        log_p = tf.nn.log_softmax(logits)
        one_hot = tf.one_hot(labels, 7)
        smoothed = -tf.reduce_sum(((1 - eps) * one_hot + eps / 7) * log_p, -1)
        return smoothed, -tf.reduce_sum(one_hot * log_p, -1)

    def value_and_gradients(loss_fn):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(logits)
            smoothed, nll = loss_fn(logits)
            weighted = tf.reduce_sum(smoothed * weights)  # NLL unconnected, as in training
            both = weighted + tf.reduce_sum(nll)
        return smoothed, nll, tape.gradient(weighted, logits), tape.gradient(both, logits)

    fused = tf.function(value_and_gradients)(lambda x: token_cross_entropy(x, labels, eps))
    for got, want in zip(fused, value_and_gradients(reference)):
        np.testing.assert_allclose(got, want, atol=1e-5)
