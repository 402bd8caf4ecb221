"""What every search shares: target budgets and the GNMT penalties."""

import numpy as np
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.search import common


def test_max_target_lengths_formula():
    got = search.max_target_lengths(tf.constant([1, 4, 100]), ratio=1.5, offset=2, cap=50)
    np.testing.assert_array_equal(got, [4, 8, 50])


def test_penalties_match_numpy_on_hand_cases():
    lengths = np.array([1, 5, 10])
    for alpha in (0.0, 0.6, 1.0):
        np.testing.assert_allclose(
            search.length_penalty(lengths, alpha), ((5 + lengths) / 6) ** alpha, rtol=1e-6
        )
    coverage = np.array([[0.5, 1.7, 0.0, 0.9], [1.0, 1.0, 1.0, 0.2]], np.float32)
    mask = np.array([[True, True, False, True], [True, True, True, True]])
    expected = 0.2 * np.array(
        [np.log(0.5) + np.log(1.0) + np.log(0.9), 3 * np.log(1.0) + np.log(0.2)]
    )
    np.testing.assert_allclose(search.coverage_penalty(coverage, mask, 0.2), expected, rtol=1e-5)


def test_package_reexports_the_module_functions():
    assert search.length_penalty is common.length_penalty
    assert search.coverage_penalty is common.coverage_penalty
    assert search.max_target_lengths is common.max_target_lengths
    assert search.Hypotheses is common.Hypotheses


def test_prompt_lengths_and_forced_tokens_of_a_right_padded_prompt():
    prompt = tf.constant([[7, 5, 6], [4, 0, 0], [0, 0, 0]])
    lengths = common.prompt_lengths(prompt, 0, 3)
    np.testing.assert_array_equal(lengths, [3, 1, 0])
    np.testing.assert_array_equal(common.prompt_lengths(None, 0, 3), [0, 0, 0])
    expected = {0: ([True, True, False], [7, 4, 0]), 1: ([True, False, False], [5, 0, 0])}
    expected |= {2: ([True, False, False], [6, 0, 0]), 3: ([False] * 3, [0, 0, 0])}
    for t, (forced, token) in expected.items():
        got_forced, got_token = common.forced_token(prompt, tf.constant(t), lengths, 0)
        np.testing.assert_array_equal(got_forced, forced, err_msg=f"step {t}")
        np.testing.assert_array_equal(got_token, token, err_msg=f"step {t}")
