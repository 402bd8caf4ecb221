"""Token choice: the temperature/top-k/top-p filters and the greedy and random samplers."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.search import samplers
from seq2seq_tf.search.common import NEG_INF


def _kept(filtered) -> list[set[int]]:
    """Per row, the tokens a filter left a chance (not pushed to NEG_INF)."""
    return [set(np.flatnonzero(row > NEG_INF / 2).tolist()) for row in np.asarray(filtered)]


LOGITS = tf.constant([[1.0, 4.0, 2.0, 3.0, 0.0], [0.5, -1.0, 2.5, 2.0, 1.5]])


@pytest.mark.parametrize(
    "k,expected",
    [
        (1, [{1}, {2}]),
        (2, [{1, 3}, {2, 3}]),
        (3, [{1, 2, 3}, {2, 3, 4}]),
        (0, [set(range(5))] * 2),  # k <= 0 keeps all
        (9, [set(range(5))] * 2),  # k above the vocabulary keeps all
    ],
)
def test_top_k_keeps_exactly_the_k_most_likely(k, expected):
    filtered = samplers.TopK(k)(LOGITS)
    assert _kept(filtered) == expected
    kept = np.asarray(filtered) > NEG_INF / 2
    np.testing.assert_array_equal(np.asarray(filtered)[kept], LOGITS.numpy()[kept])  # unchanged


def test_top_k_keeps_ties_at_the_kth():
    assert _kept(samplers.TopK(2)(tf.constant([[1.0, 3.0, 3.0, 3.0, 0.0]]))) == [{1, 2, 3}]


PROBS = np.array([[0.15, 0.5, 0.05, 0.3], [0.25, 0.2, 0.45, 0.1]])


@pytest.mark.parametrize(
    "p,expected",
    [
        (0.4, [{1}, {2}]),
        (0.6, [{1, 3}, {0, 2}]),
        (0.85, [{0, 1, 3}, {0, 1, 2}]),
        (0.99, [{0, 1, 2, 3}, {0, 1, 2, 3}]),
        (1e-6, [{1}, {2}]),  # tiny p: the most likely token only
        (0.0, [{1}, {2}]),  # never an empty set (it sampled uniformly from all before)
    ],
)
def test_top_p_keeps_the_smallest_nucleus_reaching_p(p, expected):
    log_probs = tf.math.log(tf.constant(PROBS, tf.float32))
    assert _kept(samplers.TopP(p)(log_probs)) == expected


def test_temperature_divides_logits():
    np.testing.assert_allclose(samplers.Temperature(0.5)(LOGITS), LOGITS.numpy() / 0.5)
    np.testing.assert_allclose(samplers.Temperature(2.0)(LOGITS), LOGITS.numpy() / 2.0)


def _random_log_probs(batch=64, vocab=50, seed=0):
    logits = np.random.default_rng(seed).normal(size=(batch, vocab)).astype(np.float32)
    return tf.nn.log_softmax(logits)


def test_greedy_takes_the_argmax():
    log_probs = _random_log_probs()
    got = samplers.Greedy()(tf.constant(0), log_probs)
    np.testing.assert_array_equal(got, np.argmax(log_probs.numpy(), axis=-1))


def test_random_with_a_fixed_seed_repeats_and_other_seeds_or_steps_differ():
    log_probs = _random_log_probs(seed=1)
    draw = samplers.Random([], seed=7)(tf.constant(3), log_probs).numpy()
    again = samplers.Random([], seed=7)(tf.constant(3), log_probs).numpy()
    np.testing.assert_array_equal(draw, again)
    other_seed = samplers.Random([], seed=8)(tf.constant(3), log_probs).numpy()
    other_step = samplers.Random([], seed=7)(tf.constant(4), log_probs).numpy()
    assert np.any(draw != other_seed) and np.any(draw != other_step)


def test_random_never_draws_what_its_filters_removed():
    log_probs = _random_log_probs(seed=2)
    top2 = np.argsort(-log_probs.numpy(), axis=-1)[:, :2]
    choose = samplers.Random([samplers.TopK(2)], seed=1)
    seen = set()
    for t in range(20):
        ids = choose(tf.constant(t), log_probs).numpy()
        assert all(ids[b] in top2[b] for b in range(len(ids)))
        seen |= {(b, int(i)) for b, i in enumerate(ids)}
    assert len(seen) > len(ids)  # both of the two kept tokens do get drawn


def test_random_at_temperature_near_zero_is_greedy():
    for seed in range(3):
        log_probs = _random_log_probs(seed=seed)
        greedy = samplers.Greedy()(tf.constant(0), log_probs)
        cold = samplers.Random([samplers.Temperature(1e-6)], seed=seed)(tf.constant(5), log_probs)
        np.testing.assert_array_equal(cold, greedy)


def test_sampler_composes_temperature_top_k_and_top_p_in_order():
    choose = samplers.sampler(temperature=0.7, top_k=5, top_p=0.9, seed=4)
    assert [type(f) for f in choose.filters] == [
        samplers.Temperature,
        samplers.TopK,
        samplers.TopP,
    ]
    log_probs = _random_log_probs(seed=3)
    greedy = samplers.Greedy()(tf.constant(0), log_probs)
    np.testing.assert_array_equal(samplers.sampler(top_k=1)(tf.constant(0), log_probs), greedy)
    np.testing.assert_array_equal(samplers.sampler(top_p=1e-6)(tf.constant(0), log_probs), greedy)
