"""What every search shares: the step-function contract, results, budgets, penalties.

Search never asks what model it drives: it takes
`step_fn(ids [batch], state) -> (logits [batch, vocab], state)` and a nested
state whose tensors all have the batch as their first dimension. The ids that
start, end and pad a sequence are arguments, and so is what reads attention
weights from the state (`alignment_fn`), for coverage penalties and alignments.

Lengths: a hypothesis of n pieces that ended with the end id has length n + 1
for the length penalty (the end counts, as in GNMT and OpenNMT); one cut by the
maximum length has length n.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

StepFn = Callable[[tf.Tensor, object], tuple[tf.Tensor, object]]
NEG_INF = -1e9


class Hypotheses(NamedTuple):
    """Search results; `n` is 1 for greedy and sampling, the n-best size for beam.

    ids: `[batch, n, steps]` int32, pad after the end (the end id kept where produced);
        a prompt's tokens come first.
    lengths: `[batch, n]` tokens before the end id (a prompt's included).
    scores: `[batch, n]` what the search ranked by (penalized for beam search).
    log_probs: `[batch, n]` model log-probability of the produced tokens (the end
        included, a prompt's tokens not).
    alignments: `[batch, n, steps, src_len]` attention weights, when asked for.
    """

    ids: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    log_probs: tf.Tensor
    alignments: tf.Tensor | None = None  # a NamedTuple so tf.function can return it


def max_target_lengths(source_lengths, ratio: float, offset: int, cap: int):
    """Per-sentence target budget: min(cap, ceil(ratio * source_len) + offset)."""
    budget = tf.math.ceil(ratio * tf.cast(source_lengths, tf.float32)) + float(offset)
    return tf.minimum(tf.cast(budget, tf.int32), cap)


def length_penalty(lengths, alpha: float):
    """GNMT length penalty ((5 + |Y|) / 6)^alpha; scores are divided by it."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def coverage_penalty(coverage, source_mask, beta: float):
    """GNMT coverage penalty beta * sum_i log(min(sum_t a_ti, 1)) over real source positions.

    Args:
        coverage: `[..., src_len]` attention summed over target steps.
        source_mask: `[..., src_len]` bool.
    """
    covered = tf.math.log(tf.clip_by_value(coverage, 1e-10, 1.0))
    return beta * tf.reduce_sum(tf.where(source_mask, covered, 0.0), axis=-1)


def prompt_lengths(prompt, pad_id: int, batch):
    """Tokens of each row of a right-padded prompt `[batch, len]` (zeros without one)."""
    if prompt is None:
        return tf.zeros([batch], tf.int32)
    return tf.reduce_sum(tf.cast(tf.not_equal(prompt, pad_id), tf.int32), axis=1)


def forced_token(prompt, t, lengths, pad_id: int):
    """`(forced [batch] bool, token [batch])`: whether step t copies the prompt, and what."""
    padded = tf.pad(prompt, [[0, 0], [0, 1]], constant_values=pad_id)  # safe to index at t
    token = tf.gather(padded, tf.minimum(t, tf.shape(prompt)[1]), axis=1)
    forced = t < lengths
    return forced, tf.where(forced, tf.cast(token, tf.int32), pad_id)


def buffer(dtype, steps, fill):
    """A TensorArray of `steps` elements preset to `fill` (steps not reached keep it)."""
    return tf.TensorArray(dtype, size=steps, element_shape=fill.shape).unstack(
        tf.repeat(fill[None], steps, axis=0)
    )
