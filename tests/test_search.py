"""Greedy search with synthetic step functions whose answers are known by construction."""

import numpy as np
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.model import Seq2Seq
from seq2seq_tf.tokenizer import EOS_ID, PAD_ID

VOCAB = 8


def scripted_step(script):
    """A step function that emits script[b][t] with probability ~1 at step t."""
    script = tf.constant(script, tf.int32)  # batch x steps

    def step_fn(ids, state):
        t = state["t"]
        column = tf.gather(script, tf.minimum(t, script.shape[1] - 1), axis=1)
        logits = tf.one_hot(column, VOCAB) * 3.0
        return logits, {"t": t + 1}

    return step_fn


def test_stops_at_eos_and_pads_after():
    step_fn = scripted_step([[5, 6, EOS_ID, 7, 7], [4, EOS_ID, 7, 7, 7]])
    ids, lengths, scores = search.greedy_search(step_fn, {"t": tf.constant(0)}, [10, 10])
    np.testing.assert_array_equal(ids, [[5, 6, EOS_ID], [4, EOS_ID, PAD_ID]])
    np.testing.assert_array_equal(lengths, [2, 1])
    expected = np.log(np.exp(3.0) / (np.exp(3.0) + VOCAB - 1))
    np.testing.assert_allclose(scores, [3 * expected, 2 * expected], rtol=1e-5)


def test_respects_per_sentence_max_length():
    step_fn = scripted_step([[5] * 9, [6] * 9])
    ids, lengths, _ = search.greedy_search(step_fn, {"t": tf.constant(0)}, [3, 5])
    np.testing.assert_array_equal(lengths, [3, 5])
    np.testing.assert_array_equal(ids, [[5, 5, 5, PAD_ID, PAD_ID], [6, 6, 6, 6, 6]])


def test_max_target_lengths_formula():
    got = search.max_target_lengths(tf.constant([1, 4, 100]), ratio=1.5, offset=2, cap=50)
    np.testing.assert_array_equal(got, [4, 8, 50])


def test_greedy_is_padding_invariant_with_a_model():
    model = Seq2Seq(30, 8, 1, 8, 1, 16, 16, bridge="copy")
    alone = tf.constant([[5, 9, 7, 3]])
    batch = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3]])
    ids_a, len_a, score_a = search.greedy_search(model.step, model.initial_state(alone), [6])
    ids_b, len_b, score_b = search.greedy_search(model.step, model.initial_state(batch), [6, 6])
    n = int(len_a[0])
    assert int(len_b[0]) == n
    np.testing.assert_array_equal(ids_a[0, :n], ids_b[0, :n])
    np.testing.assert_allclose(score_a[0], score_b[0], atol=1e-4)
