"""Search over a step function, in pure TensorFlow (exports into a SavedModel).

Search never asks what model it drives: it takes
`step_fn(ids [batch], state) -> (logits [batch, vocab], state)` and a nested
state whose tensors all have the batch as their first dimension, and loops in
a `tf.while_loop` until every sentence has ended. Coverage penalties and
alignments read the state's "alignment" entry (`[batch, src_len]`, the last
step's attention weights), which our decoder provides.

Lengths: a hypothesis of n pieces that ended with EOS has length n + 1 for the
length penalty (EOS counts, as in GNMT and OpenNMT); one cut by the maximum
length has length n.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from seq2seq_tf.tokenizer import BOS_ID, EOS_ID, PAD_ID

StepFn = Callable[[tf.Tensor, object], tuple[tf.Tensor, object]]
_NEG_INF = -1e9


class Hypotheses(NamedTuple):
    """Search results; `n` is 1 for greedy and sampling, the n-best size for beam.

    ids: `[batch, n, steps]` int32, PAD after the end (EOS kept where produced).
    lengths: `[batch, n]` pieces before EOS.
    scores: `[batch, n]` what the search ranked by (penalized for beam search).
    log_probs: `[batch, n]` model log-probability, EOS included.
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


def _decode_loop(step_fn, initial_state, max_lengths, choose, with_alignments, max_steps):
    """The shared one-hypothesis-per-sentence loop of greedy search and sampling.

    `choose(t, log_probs [batch, vocab]) -> ids [batch]` picks each next token.
    """
    max_lengths = tf.convert_to_tensor(max_lengths, tf.int32)
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(max_lengths)
    steps = limit if max_steps is None else max_steps
    src_len = tf.shape(initial_state["mask"])[1] if with_alignments else 1

    def cond(t, ids, finished, *_):
        return (t < limit) & ~tf.reduce_all(finished)

    def body(t, ids, finished, lengths, scores, state, outputs, aligned):
        logits, state = step_fn(ids, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # batch x vocab
        next_ids = tf.cast(choose(t, log_probs), tf.int32)
        token_scores = tf.gather(log_probs, next_ids, batch_dims=1)
        scores += tf.where(finished, 0.0, token_scores)
        next_ids = tf.where(finished, PAD_ID, next_ids)
        ended = ~finished & ((next_ids == EOS_ID) | (t + 1 >= max_lengths))
        lengths += tf.cast(~finished & (next_ids != EOS_ID), tf.int32)
        if with_alignments:
            weights = tf.where(finished[:, None], 0.0, tf.cast(state["alignment"], tf.float32))
            aligned = aligned.write(t, weights)
        outputs = outputs.write(t, next_ids)
        return t + 1, next_ids, finished | ended, lengths, scores, state, outputs, aligned

    start = (
        tf.constant(0),
        tf.fill([batch], BOS_ID),
        max_lengths <= 0,
        tf.zeros([batch], tf.int32),
        tf.zeros([batch], tf.float32),
        initial_state,
        _buffer(tf.int32, steps, tf.zeros([batch], tf.int32) + PAD_ID),
        _buffer(tf.float32, steps, tf.zeros([batch, src_len])),
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


def _buffer(dtype, steps, fill):
    """A TensorArray of `steps` elements preset to `fill` (steps not reached keep it)."""
    return tf.TensorArray(dtype, size=steps, element_shape=fill.shape).unstack(
        tf.repeat(fill[None], steps, axis=0)
    )


def greedy_search(
    step_fn: StepFn,
    initial_state,
    max_lengths,
    with_alignments: bool = False,
    max_steps: int | None = None,
) -> Hypotheses:
    """Batched greedy decoding from BOS until EOS or each sentence's max length.

    Args:
        step_fn: the model's step.
        initial_state: nested state for `batch` sentences.
        max_lengths: `[batch]` int32, most pieces to produce per sentence (EOS included).
        with_alignments: also return each step's attention weights.
        max_steps: a Python int bound on max_lengths; outputs are then padded to
            exactly this many steps, so shapes are static and XLA can compile it.
    """
    return _decode_loop(
        step_fn,
        initial_state,
        max_lengths,
        lambda t, log_probs: tf.argmax(log_probs, axis=-1, output_type=tf.int32),
        with_alignments,
        max_steps,
    )


def sample_search(
    step_fn: StepFn,
    initial_state,
    max_lengths,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    seed=0,
    max_steps: int | None = None,
) -> Hypotheses:
    """Ancestral sampling with temperature, top-k and nucleus (top-p) filtering.

    The same seed gives the same samples (stateless random ops keyed by seed and
    step). `log_probs` are under the model itself (no temperature, no filter).

    Args:
        temperature: > 0; towards 0 it approaches greedy search.
        top_k: keep the k most likely pieces (0 keeps all).
        top_p: keep the smallest set of pieces whose probability reaches p (1 keeps all).
        seed: int seed.
        max_steps: static bound on max_lengths (see `greedy_search`).
    """
    temperature = tf.maximum(tf.cast(temperature, tf.float32), 1e-8)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)
    seed = tf.cast(seed, tf.int32)

    def choose(t, log_probs):
        logits = log_probs / temperature
        vocab = tf.shape(logits)[-1]
        k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
        sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
        kth = tf.gather(sorted_logits, k - 1, axis=-1)[:, None]
        logits = tf.where(logits < kth, _NEG_INF, logits)
        # Nucleus: drop pieces once the mass before them already reaches top_p.
        sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
        probs = tf.nn.softmax(sorted_logits, axis=-1)
        mass_before = tf.cumsum(probs, axis=-1, exclusive=True)
        kept = tf.where(mass_before < top_p, sorted_logits, -_NEG_INF)
        threshold = tf.reduce_min(kept, axis=-1, keepdims=True)
        logits = tf.where(logits < threshold, _NEG_INF, logits)
        step_seed = tf.stack([seed, t])
        return tf.random.stateless_categorical(logits, 1, seed=step_seed, dtype=tf.int32)[:, 0]

    return _decode_loop(step_fn, initial_state, max_lengths, choose, False, max_steps)


def _static_or_tensor(value):
    """A Python int when the value is known while tracing (static shapes), else a tensor."""
    static = tf.get_static_value(value)
    return int(static) if static is not None else tf.convert_to_tensor(value, tf.int32)


def _tile(tensor, beam_size):
    """`[batch, ...]` -> `[batch * beam, ...]`, each row repeated beam times."""
    return tf.repeat(tensor, beam_size, axis=0)


def _gather_beams(tensor, indices, batch, beam_size):
    """Picks rows of a flat `[batch * beam, ...]` tensor by beam indices `[batch, beam]`."""
    shape = tf.shape(tensor)
    nested = tf.reshape(tensor, tf.concat([[batch, beam_size], shape[1:]], 0))
    picked = tf.gather(nested, indices, batch_dims=1)
    return tf.reshape(picked, shape)


def _reorder(state, invariant: tuple[str, ...], gather):
    """Applies `gather` to every state tensor except the beam-invariant entries."""
    if not isinstance(state, dict):
        return tf.nest.map_structure(gather, state)
    return {
        key: value if key in invariant else tf.nest.map_structure(gather, value)
        for key, value in state.items()
    }


def beam_search(
    step_fn: StepFn,
    initial_state,
    max_lengths,
    beam_size,
    length_penalty_alpha: float = 0.0,
    coverage_penalty_beta: float = 0.0,
    n_best=1,
    max_steps: int | None = None,
    beam_invariant: tuple[str, ...] = (),
) -> Hypotheses:
    """Batched beam search with GNMT length and coverage penalties.

    Each step extends the live hypotheses by every piece and keeps the
    `beam_size` best by log-probability. A candidate that ends in EOS (or
    reaches its sentence's max length) moves to the finished set, ranked by
    log_prob / length_penalty + coverage_penalty, and never grows again; its
    live slot is dropped. The loop stops when no live hypothesis is left or no
    live one can still beat the worst of the `beam_size` finished ones (log
    probabilities only fall, and the coverage penalty is at most 0). With
    beam_size 1 this is greedy search exactly.

    Args:
        beam_size: hypotheses kept per sentence (a Python int or scalar tensor).
        length_penalty_alpha: GNMT alpha (0 = rank by log-probability).
        coverage_penalty_beta: GNMT beta (0 = off); needs state["alignment"].
        n_best: hypotheses returned per sentence, best first (<= beam_size).
        max_steps: static bound on max_lengths (see `greedy_search`); with it and a
            Python-int beam_size every shape is static and XLA can compile the search.
        beam_invariant: top-level state entries that are the same for every beam of
            a sentence and never change (the encoder memory, its attention keys and
            mask): tiled once, never reordered, which saves the largest gathers.

    Returns:
        Hypotheses with n = n_best, sorted by score.
    """
    max_lengths = tf.convert_to_tensor(max_lengths, tf.int32)
    beam_size = _static_or_tensor(beam_size)
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(max_lengths)
    steps = limit if max_steps is None else max_steps
    positions = tf.range(steps)  # where each step's token is written in the id buffers
    use_coverage = coverage_penalty_beta > 0
    state = tf.nest.map_structure(lambda s: _tile(s, beam_size), initial_state)
    beam_max = tf.reshape(_tile(max_lengths, beam_size), [batch, beam_size])
    # Upper bound on what a live hypothesis can still score (largest length penalty ahead).
    bound_divisor = length_penalty(max_lengths, length_penalty_alpha)
    src_len = tf.shape(state["mask"])[1] if use_coverage else 1
    first = tf.one_hot(0, beam_size, on_value=0.0, off_value=_NEG_INF)

    def cond(t, last, alive_ids, alive_log_probs, state, coverage, fin):
        any_alive = tf.reduce_any(alive_log_probs > _NEG_INF / 2)
        bound = tf.reduce_max(alive_log_probs, axis=1) / bound_divisor
        can_improve = tf.reduce_any(bound > tf.reduce_min(fin["scores"], axis=1))
        return (t < limit) & any_alive & can_improve

    def body(t, last, alive_ids, alive_log_probs, state, coverage, fin):
        logits, state = step_fn(tf.reshape(last, [-1]), state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # batch*beam x vocab
        vocab = tf.shape(log_probs)[-1]
        candidates = alive_log_probs[:, :, None] + tf.reshape(log_probs, [batch, beam_size, -1])
        top_log_probs, top_index = tf.math.top_k(tf.reshape(candidates, [batch, -1]), beam_size)
        beam_index = top_index // vocab  # batch x beam: which live hypothesis it extends
        token = top_index % vocab
        top_ids = tf.gather(alive_ids, beam_index, batch_dims=1)  # batch x beam x steps
        top_ids = tf.where(positions == t, token[..., None], top_ids)
        if use_coverage:
            coverage += tf.cast(state["alignment"], tf.float32)
            coverage = _gather_beams(coverage, beam_index, batch, beam_size)
        state = _reorder(
            state, beam_invariant, lambda s: _gather_beams(s, beam_index, batch, beam_size)
        )
        valid = top_log_probs > _NEG_INF / 2
        ended_eos = valid & (token == EOS_ID)
        ended = ended_eos | (valid & (t + 1 >= beam_max))
        scores = top_log_probs / length_penalty(t + 1, length_penalty_alpha)
        if use_coverage:
            penalty = coverage_penalty(coverage, state["mask"], coverage_penalty_beta)
            scores += tf.reshape(penalty, [batch, beam_size])
        # Merge the newly finished into the finished set; keep the best beam_size.
        merged = {
            "ids": tf.concat([fin["ids"], top_ids], axis=1),
            "scores": tf.concat([fin["scores"], tf.where(ended, scores, _NEG_INF)], axis=1),
            "log_probs": tf.concat([fin["log_probs"], top_log_probs], axis=1),
            "lengths": tf.concat([fin["lengths"], t + 1 - tf.cast(ended_eos, tf.int32)], axis=1),
        }
        _, keep = tf.math.top_k(merged["scores"], k=beam_size)
        fin = {k: tf.gather(v, keep, batch_dims=1) for k, v in merged.items()}
        alive_log_probs = tf.where(ended | ~valid, _NEG_INF, top_log_probs)
        return t + 1, token, top_ids, alive_log_probs, state, coverage, fin

    finished = {
        "ids": tf.fill([batch, beam_size, steps], PAD_ID),
        "scores": tf.fill([batch, beam_size], _NEG_INF),
        "log_probs": tf.fill([batch, beam_size], _NEG_INF),
        "lengths": tf.zeros([batch, beam_size], tf.int32),
    }
    start = (
        tf.constant(0),
        tf.fill([batch, beam_size], BOS_ID),
        tf.fill([batch, beam_size, steps], PAD_ID),
        tf.tile(first[None], [batch, 1]),  # one live hypothesis per sentence to start
        state,
        tf.zeros([batch * beam_size, src_len]),
        finished,
    )
    # The batch dimension may lose its static size inside the loop; the rest stays.
    invariants = tf.nest.map_structure(
        lambda v: v.shape if v.shape.rank == 0 else tf.TensorShape([None]).concatenate(v.shape[1:]),
        start,
    )
    t, *_, fin = tf.while_loop(
        cond, body, start, shape_invariants=invariants, maximum_iterations=steps
    )
    if max_steps is None:  # dynamic shapes: keep only the steps that ran
        fin = {**fin, "ids": fin["ids"][:, :, :t]}
    n_best = _static_or_tensor(n_best)
    n_best = (
        min(n_best, beam_size)
        if isinstance(n_best + beam_size, int)
        else tf.minimum(n_best, beam_size)
    )
    return Hypotheses(
        ids=fin["ids"][:, :n_best],
        lengths=fin["lengths"][:, :n_best],
        scores=fin["scores"][:, :n_best],
        log_probs=fin["log_probs"][:, :n_best],
    )
