"""Search over a step function, in pure TensorFlow (exports into a SavedModel).

Search never asks what model it drives: it takes
`step_fn(ids [batch], state) -> (logits [batch, vocab], state)` and a nested
state, and loops in a `tf.while_loop` until every sentence has ended.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from seq2seq_tf.tokenizer import BOS_ID, EOS_ID, PAD_ID

StepFn = Callable[[tf.Tensor, object], tuple[tf.Tensor, object]]


def max_target_lengths(source_lengths, ratio: float, offset: int, cap: int):
    """Per-sentence target budget: min(cap, ceil(ratio * source_len) + offset)."""
    budget = tf.math.ceil(ratio * tf.cast(source_lengths, tf.float32)) + float(offset)
    return tf.minimum(tf.cast(budget, tf.int32), cap)


def greedy_search(step_fn: StepFn, initial_state, max_lengths):
    """Batched greedy decoding from BOS until EOS or each sentence's max length.

    Args:
        step_fn: the model's step.
        initial_state: nested state for `batch` sentences.
        max_lengths: `[batch]` int32, most tokens to produce per sentence (EOS included).

    Returns:
        ids `[batch, steps]` (EOS where a sentence ended, PAD after it),
        lengths `[batch]` (tokens before EOS), and log-probabilities `[batch]`
        (summed over the produced tokens, EOS included).
    """
    max_lengths = tf.convert_to_tensor(max_lengths, tf.int32)
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(max_lengths)

    def cond(t, ids, finished, *_):
        return (t < limit) & ~tf.reduce_all(finished)

    def body(t, ids, finished, lengths, scores, state, outputs):
        logits, state = step_fn(ids, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # batch x vocab
        next_ids = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        token_scores = tf.gather(log_probs, next_ids, batch_dims=1)
        scores += tf.where(finished, 0.0, token_scores)
        next_ids = tf.where(finished, PAD_ID, next_ids)
        ended = ~finished & ((next_ids == EOS_ID) | (t + 1 >= max_lengths))
        lengths += tf.cast(~finished & (next_ids != EOS_ID), tf.int32)
        return t + 1, next_ids, finished | ended, lengths, scores, state, outputs.write(t, next_ids)

    start = (
        tf.constant(0),
        tf.fill([batch], BOS_ID),
        max_lengths <= 0,
        tf.zeros([batch], tf.int32),
        tf.zeros([batch], tf.float32),
        initial_state,
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
    )
    _, _, _, lengths, scores, _, outputs = tf.while_loop(cond, body, start)
    ids = tf.transpose(outputs.stack(), [1, 0])  # batch x steps
    ids = tf.reshape(ids, [batch, -1])  # keeps the shape when no step ran
    return ids, lengths, scores
