"""Luong general attention: masking and a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.layers.attention import ATTENTION_TYPES, LuongAttention, make_attention


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


def _numpy_scores(attention, kind, query, memory):
    """Reference scores of every mechanism, from the layer's own weights."""
    if kind in ("luong_dot", "luong_general"):
        keys = memory if kind == "luong_dot" else memory @ attention.memory_layer.kernel.numpy()
        return np.einsum("d,sd->s", query, keys) * attention.score_scale.numpy()
    w_memory = attention.memory_layer.kernel.numpy()
    w_query = attention.query_layer.kernel.numpy()
    v = attention.v.numpy()
    bias = 0.0
    if kind == "bahdanau_normalized":
        v = attention.g.numpy() * v / np.linalg.norm(v)
        bias = attention.b.numpy()
    return np.tanh(memory @ w_memory + bias + query @ w_query) @ v


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
def test_every_mechanism_matches_numpy_and_masks_padding(kind):
    rng = np.random.default_rng(3)
    memory = rng.normal(size=(2, 5, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    query = rng.normal(size=(2, 6)).astype(np.float32)
    attention = make_attention(kind, 6)
    attention.build((None, None, 6))
    context, weights = attention(
        tf.constant(query),
        attention.prepare(tf.constant(memory)),
        tf.constant(memory),
        tf.constant(mask),
    )
    np.testing.assert_allclose(tf.reduce_sum(weights, -1), 1.0, atol=1e-6)
    assert np.all(weights.numpy()[~mask] == 0.0)
    for b in range(2):
        scores = np.where(mask[b], _numpy_scores(attention, kind, query[b], memory[b]), -np.inf)
        expected = np.exp(scores - scores.max())
        expected /= expected.sum()
        np.testing.assert_allclose(weights[b], expected, atol=1e-5)
        np.testing.assert_allclose(context[b], expected @ memory[b], atol=1e-5)


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_masking_stays_finite_in_half_precision(kind, dtype):
    rng = np.random.default_rng(4)
    memory = tf.constant(rng.normal(size=(2, 4, 6)) * 30, dtype)
    query = tf.constant(rng.normal(size=(2, 6)) * 30, dtype)
    mask = tf.constant([[True, False, False, False], [True, True, True, True]])
    attention = make_attention(kind, 6, dtype=f"mixed_{dtype}")  # float32 weights
    attention.build((None, None, 6))
    context, weights = attention(query, attention.prepare(memory), memory, mask)
    assert np.all(np.isfinite(tf.cast(weights, tf.float32).numpy()))
    assert np.all(np.isfinite(tf.cast(context, tf.float32).numpy()))
    assert float(weights[0, 0]) == 1.0 and np.all(tf.cast(weights[0, 1:], tf.float32) == 0.0)


def test_dot_attention_needs_matching_widths_and_unknown_type_is_named():
    with pytest.raises(ValueError, match="dot attention needs memory width 4"):
        make_attention("luong_dot", 6).build((None, None, 4))
    with pytest.raises(ValueError, match="'luong_cosine'"):
        make_attention("luong_cosine", 6)


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
def test_config_round_trip(kind):
    attention = make_attention(kind, 6)
    clone = type(attention).from_config(attention.get_config())
    assert clone.get_config() == attention.get_config()


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
def test_grouped_queries_over_one_memory_equal_the_memory_tiled_per_query(kind):
    rng = np.random.default_rng(5)
    batch, group, width = 3, 4, 6
    memory = tf.constant(rng.normal(size=(batch, 5, width)), tf.float32)
    mask = tf.sequence_mask([5, 2, 3], 5)
    query = tf.constant(rng.normal(size=(batch * group, width)), tf.float32)
    attention = make_attention(kind, width)
    attention.build((None, None, width))
    keys = attention.prepare(memory)
    grouped = attention.call_grouped(query, keys, memory, mask)
    tile = lambda t: tf.repeat(t, group, axis=0)  # noqa: E731
    tiled = attention(query, tile(keys), tile(memory), tile(mask))
    for got, expected in zip(grouped, tiled):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(grouped[1].numpy()[~tile(mask).numpy()] == 0.0)
