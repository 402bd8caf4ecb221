"""Luong general attention: masking and a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.attention import LuongAttention


def test_weights_sum_to_one_and_zero_on_padding():
    rng = np.random.default_rng(0)
    memory = tf.constant(rng.normal(size=(3, 5, 4)) * 10, tf.float32)
    mask = tf.constant([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]) > 0
    query = tf.constant(rng.normal(size=(3, 6)) * 10, tf.float32)
    attention = LuongAttention(6)
    attention.build((None, None, 4))
    _, weights = attention(query, attention.prepare(memory), memory, mask)
    np.testing.assert_allclose(tf.reduce_sum(weights, -1), 1.0, atol=1e-6)
    assert np.all(weights.numpy()[~mask.numpy()] == 0.0)


@pytest.mark.parametrize("scaled", [False, True])
def test_matches_numpy_reference(scaled):
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    query = rng.normal(size=(2, 5)).astype(np.float32)
    attention = LuongAttention(5, scaled=scaled)
    attention.build((None, None, 3))
    w_a = attention.memory_layer.kernel.numpy()  # 3 x 5
    if scaled:
        np.testing.assert_allclose(attention.score_scale.numpy(), 5**-0.5, rtol=1e-6)
        attention.score_scale.assign(0.7)
    context, weights = attention(
        tf.constant(query),
        attention.prepare(tf.constant(memory)),
        tf.constant(memory),
        tf.constant(mask),
    )
    for b in range(2):
        scores = memory[b] @ w_a @ query[b]  # src_len
        if scaled:
            scores = scores * attention.score_scale.numpy()
        scores = np.where(mask[b], scores, -np.inf)
        expected = np.exp(scores - scores.max())
        expected /= expected.sum()
        np.testing.assert_allclose(weights[b], expected, atol=1e-6)
        np.testing.assert_allclose(context[b], expected @ memory[b], atol=1e-6)


def test_padding_does_not_change_context():
    rng = np.random.default_rng(2)
    memory = rng.normal(size=(1, 3, 4)).astype(np.float32)
    padded = np.concatenate([memory, rng.normal(size=(1, 2, 4)).astype(np.float32)], axis=1)
    query = tf.constant(rng.normal(size=(1, 4)), tf.float32)
    attention = LuongAttention(4)
    attention.build((None, None, 4))
    short, _ = attention(
        query, attention.prepare(memory), tf.constant(memory), tf.ones((1, 3), tf.bool)
    )
    long, _ = attention(
        query,
        attention.prepare(padded),
        tf.constant(padded),
        tf.constant([[True, True, True, False, False]]),
    )
    np.testing.assert_allclose(short, long, atol=1e-6)
