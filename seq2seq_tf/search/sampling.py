"""One hypothesis per sequence: greedy search and sampling, from BOS or from a prompt."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from seq2seq_tf.search import samplers
from seq2seq_tf.search.common import (
    Hypotheses,
    StepFn,
    buffer,
    forced_token,
    prompt_lengths,
)


def decode(
    step_fn: StepFn,
    initial_state,
    max_lengths,
    choose: Callable,
    *,
    start_id: int,
    end_id: int,
    pad_id: int,
    prompt=None,
    alignment_fn: Callable | None = None,
    max_steps: int | None = None,
) -> Hypotheses:
    """Extends every sequence one token per step until the end id or its budget.

    Args:
        step_fn: the model's step.
        initial_state: nested state for `batch` sequences.
        max_lengths: `[batch]` int32, most tokens to produce per sequence (the end
            id included), after the prompt.
        choose: a sampler, `(t, log_probs [batch, vocab]) -> ids [batch]`.
        start_id, end_id, pad_id: the first input, the token that ends a
            sequence, and what fills ids after the end.
        prompt: optional `[batch, len]` int, right-padded with pad_id: tokens
            forced before anything is chosen (they are fed to the model and kept
            in `ids`, but not scored).
        alignment_fn: `state -> [batch, src_len]` attention weights, to return
            each step's (None: no alignments).
        max_steps: a Python int bound on prompt + max_lengths; outputs are then
            padded to exactly this many steps, so shapes are static and XLA can
            compile it.
    """
    max_lengths = tf.convert_to_tensor(max_lengths, tf.int32)
    batch = tf.shape(max_lengths)[0]
    prompted = prompt_lengths(prompt, pad_id, batch)
    ends = prompted + max_lengths  # step (exclusive) at which each sequence is cut
    limit = tf.reduce_max(ends)
    steps = limit if max_steps is None else max_steps
    with_alignments = alignment_fn is not None
    src_len = tf.shape(alignment_fn(initial_state))[1] if with_alignments else 1

    def cond(t, ids, finished, *_):
        return (t < limit) & ~tf.reduce_all(finished)

    def body(t, ids, finished, lengths, scores, state, outputs, aligned):
        logits, state = step_fn(ids, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # batch x vocab
        next_ids = tf.cast(choose(t, log_probs), tf.int32)
        not_scored = finished  # without a prompt no step is forced (no ops spent on it)
        if prompt is not None:
            forced, token = forced_token(prompt, t, prompted, pad_id)
            next_ids = tf.where(forced, token, next_ids)
            not_scored = finished | forced
        token_scores = tf.gather(log_probs, next_ids, batch_dims=1)
        scores += tf.where(not_scored, 0.0, token_scores)
        next_ids = tf.where(finished, pad_id, next_ids)
        ended = ~not_scored & ((next_ids == end_id) | (t + 1 >= ends))
        counted = next_ids != end_id
        if prompt is not None:
            counted = forced | counted
        lengths += tf.cast(~finished & counted, tf.int32)
        if with_alignments:
            weights = tf.where(finished[:, None], 0.0, tf.cast(alignment_fn(state), tf.float32))
            aligned = aligned.write(t, weights)
        outputs = outputs.write(t, next_ids)
        return t + 1, next_ids, finished | ended, lengths, scores, state, outputs, aligned

    start = (
        tf.constant(0),
        tf.fill([batch], start_id),
        ends <= prompted,
        tf.zeros([batch], tf.int32),
        tf.zeros([batch], tf.float32),
        initial_state,
        buffer(tf.int32, steps, tf.zeros([batch], tf.int32) + pad_id),
        buffer(tf.float32, steps, tf.zeros([batch, src_len])),
    )
    t, _, _, lengths, scores, _, outputs, aligned = tf.while_loop(
        cond, body, start, maximum_iterations=steps
    )
    ids = tf.transpose(outputs.stack(), [1, 0])[:, None]  # batch x 1 x steps
    alignments = None
    if with_alignments:
        alignments = tf.transpose(aligned.stack(), [1, 0, 2])[:, None]  # batch x 1 x steps x src
    if max_steps is None:  # dynamic shapes: keep only the steps that ran
        ids = ids[:, :, :t]
        alignments = None if alignments is None else alignments[:, :, :t]
    return Hypotheses(ids, lengths[:, None], scores[:, None], scores[:, None], alignments)


def greedy_search(step_fn: StepFn, initial_state, max_lengths, **kwargs) -> Hypotheses:
    """Batched greedy decoding (see `decode` for the arguments)."""
    return decode(step_fn, initial_state, max_lengths, samplers.Greedy(), **kwargs)


def sample_search(
    step_fn: StepFn,
    initial_state,
    max_lengths,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    seed=0,
    **kwargs,
) -> Hypotheses:
    """Ancestral sampling with temperature, top-k and nucleus (top-p) filtering.

    The same seed gives the same samples. `log_probs` are under the model itself
    (no temperature, no filter). See `decode` for the other arguments.
    """
    choose = samplers.sampler(temperature, top_k, top_p, seed)
    return decode(step_fn, initial_state, max_lengths, choose, **kwargs)
