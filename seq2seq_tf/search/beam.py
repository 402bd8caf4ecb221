"""Batched beam search with GNMT length and coverage penalties, over a step function."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from seq2seq_tf.search.common import (
    NEG_INF,
    Hypotheses,
    StepFn,
    coverage_penalty,
    forced_token,
    length_penalty,
    prompt_lengths,
)

_NEG_INF = NEG_INF


def _static_or_tensor(value):
    """A Python int when the value is known while tracing (static shapes), else a tensor."""
    static = tf.get_static_value(value)
    return int(static) if static is not None else tf.convert_to_tensor(value, tf.int32)


def _at_most(n, bound):
    """min(n, bound), a Python int where both are (static shapes), else a tensor."""
    return min(n, bound) if isinstance(n + bound, int) else tf.minimum(n, bound)


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


def _force_prompt(log_probs, prompt, t, prompted, pad_id: int, beam_size):
    """Where step t is inside a sequence's prompt, its token at no cost is the only extension.

    Returns `(forced [batch, beam] bool, log_probs [batch * beam, vocab])`.
    """
    vocab = tf.shape(log_probs)[-1]
    rows, token = forced_token(prompt, t, prompted, pad_id)
    only = tf.one_hot(token, vocab, on_value=0.0, off_value=_NEG_INF)  # batch x vocab
    forced = tf.reshape(_tile(rows, beam_size), [-1, beam_size])
    flat = tf.reshape(forced, [-1, 1])
    return forced, tf.where(flat, tf.reshape(_tile(only, beam_size), [-1, vocab]), log_probs)


def _split_invariant(state, invariant: tuple[str, ...]):
    """`(invariant entries, the rest)` of a dict state (a nested tuple has none)."""
    if not isinstance(state, dict):
        return {}, state
    return (
        {k: v for k, v in state.items() if k in invariant},
        {k: v for k, v in state.items() if k not in invariant},
    )


def _merge_finished(finished: dict, ended_now: dict, beam_size) -> dict:
    """The best `beam_size` of the finished set and this step's ended candidates (scores of
    candidates that did not end are -inf). Each entry is `[batch, beam, ...]`."""
    merged = {k: tf.concat([finished[k], ended_now[k]], axis=1) for k in finished}
    _, keep = tf.math.top_k(merged["scores"], k=beam_size)
    return {k: tf.gather(v, keep, batch_dims=1) for k, v in merged.items()}


def _merge_one(finished: dict, ended_now: dict) -> dict:
    """`_merge_finished` at beam 1: the candidate replaces the finished entry only if it
    scores higher (top_k keeps the first of equals, the finished one)."""
    better = ended_now["scores"] > finished["scores"]  # batch x 1
    return {
        k: tf.where(tf.reshape(better, [-1] + [1] * (v.shape.rank - 1)), ended_now[k], v)
        for k, v in finished.items()
    }


def _searching(alive_log_probs, finished_scores, bound_divisor, n_best):
    """`[batch]` bool: the sentences whose search is not over, those with a live hypothesis
    that can still beat the `n_best`-th best of their finished ones (log probabilities only
    fall, the length penalty is at most `bound_divisor`, and the coverage penalty is at
    most 0): once none can, the n best that the search returns are final. `finished_scores`
    `[batch, beam]` is sorted, best first."""
    live = tf.reduce_any(alive_log_probs > _NEG_INF / 2, axis=1)
    bound = tf.reduce_max(alive_log_probs, axis=1) / bound_divisor
    return live & (bound > finished_scores[:, n_best - 1])


def _write_back(results: dict, rows, finished: dict) -> dict:
    """Writes finished entries `[n, beam, ...]` into the full-batch results at `rows [n]`."""
    rows = rows[:, None]
    return {k: tf.tensor_scatter_nd_update(v, rows, finished[k]) for k, v in results.items()}


def _loop_invariants(loop_vars):
    """While-loop shape invariants: the sentence (or row) dimension may change, the rest not."""
    return tf.nest.map_structure(
        lambda v: v.shape if v.shape.rank == 0 else tf.TensorShape([None]).concatenate(v.shape[1:]),
        loop_vars,
    )


class _Search(NamedTuple):
    """What every step of one search reads, fixed while tracing (see `beam_search`)."""

    step_fn: StepFn
    beam_size: object  # a Python int, or a scalar tensor
    alpha: float
    beta: float
    end_id: object
    pad_id: object
    beam_invariant: tuple[str, ...]
    alignment_fn: Callable | None
    prompted: bool  # a prompt is given (`given` then holds it)
    n_best: object  # hypotheses returned per sentence (<= beam_size): int or scalar tensor
    positions: tf.Tensor  # `[steps]`: where each step's token is written in the id buffers

    @property
    def coverage(self) -> bool:
        return self.beta > 0

    @property
    def greedy(self) -> bool:
        """Width 1 known while tracing: `_advance` then skips the beam bookkeeping."""
        return isinstance(self.beam_size, int) and self.beam_size == 1


def _advance(
    search: _Search, t, last, alive_ids, alive_log_probs, state, coverage, fin, given, mask, batch
):
    """One step for `batch` sentences; `given` holds their constants (ends, prompt offsets,
    the prompt), `mask` their tiled source mask (coverage)."""
    beam_size = search.beam_size
    logits, state = search.step_fn(tf.reshape(last, [-1]), state)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # batch*beam x vocab
    vocab = tf.shape(log_probs)[-1]
    forced = None  # without a prompt no step is forced (no ops spent on it)
    if search.prompted:
        forced, log_probs = _force_prompt(
            log_probs, given["prompt"], t, given["prompted"], search.pad_id, beam_size
        )
    candidates = alive_log_probs[:, :, None] + tf.reshape(log_probs, [batch, beam_size, -1])
    top_log_probs, top_index = tf.math.top_k(tf.reshape(candidates, [batch, -1]), beam_size)
    if search.greedy:  # one hypothesis per sentence: it extends itself, nothing to reorder
        token, top_ids = top_index, alive_ids
    else:
        beam_index = top_index // vocab  # batch x beam: which live hypothesis it extends
        token = top_index % vocab
        top_ids = tf.gather(alive_ids, beam_index, batch_dims=1)  # batch x beam x steps
    top_ids = tf.where(search.positions == t, token[..., None], top_ids)
    if search.coverage:
        coverage += tf.cast(search.alignment_fn(state), tf.float32)
        if not search.greedy:
            coverage = _gather_beams(coverage, beam_index, batch, beam_size)
    if not search.greedy:
        state = _reorder(
            state, search.beam_invariant, lambda s: _gather_beams(s, beam_index, batch, beam_size)
        )
    valid = top_log_probs > _NEG_INF / 2
    if forced is not None:
        valid &= ~forced
    ended_eos = valid & (token == search.end_id)
    ended = ended_eos | (valid & (t + 1 >= given["ends"]))
    produced = t + 1 if not search.prompted else t + 1 - given["offsets"]
    scores = top_log_probs / length_penalty(produced, search.alpha)
    if search.coverage:
        penalty = coverage_penalty(coverage, mask, search.beta)
        scores += tf.reshape(penalty, [batch, beam_size])
    ended_now = {
        "ids": top_ids,
        "scores": tf.where(ended, scores, _NEG_INF),
        "log_probs": top_log_probs,
        "lengths": t + 1 - tf.cast(ended_eos, tf.int32),
    }
    if search.greedy:
        fin = _merge_one(fin, ended_now)
    else:
        fin = _merge_finished(fin, ended_now, beam_size)
    if forced is None:
        alive_log_probs = tf.where(ended | ~valid, _NEG_INF, top_log_probs)
    else:  # a forced step keeps its (one) real candidate alive
        alive = (valid | forced) & ~ended & (top_log_probs > _NEG_INF / 2)
        alive_log_probs = tf.where(alive, top_log_probs, _NEG_INF)
    return t + 1, token, top_ids, alive_log_probs, state, coverage, fin


def _first_loop_vars(
    initial_state, invariant, batch, beam_size, steps, src_len, start_id, pad_id
) -> tuple:
    """`(t, last, alive_ids, alive_log_probs, state, coverage, finished)` before the first
    step: one live hypothesis per sentence, fed `start_id`; nothing finished. The state
    is tiled to the beams except its `invariant` entries (one row per sentence)."""
    finished = {
        "ids": tf.fill([batch, beam_size, steps], pad_id),
        "scores": tf.fill([batch, beam_size], _NEG_INF),
        "log_probs": tf.fill([batch, beam_size], _NEG_INF),
        "lengths": tf.zeros([batch, beam_size], tf.int32),
    }
    first = tf.one_hot(0, beam_size, on_value=0.0, off_value=_NEG_INF)
    return (
        tf.constant(0),
        tf.fill([batch, beam_size], start_id),
        tf.fill([batch, beam_size, steps], pad_id),
        tf.tile(first[None], [batch, 1]),
        _reorder(initial_state, invariant, lambda s: _tile(s, beam_size)),
        tf.zeros([batch * beam_size, src_len]),
        finished,
    )


def _whole_batch_loop(search: _Search, start: tuple, given, mask, divisor, limit, steps) -> dict:
    """Static shapes (XLA): the whole batch steps until every sentence's search is over.

    Args:
        start: `(t, last, alive_ids, alive_log_probs, state, coverage, finished)`.
        divisor: `[batch]` the largest length penalty ahead of each sentence.

    Returns:
        the finished set, `steps` ids long.
    """
    batch = tf.shape(start[1])[0]

    def cond(t, last, alive_ids, alive_log_probs, state, coverage, fin):
        searching = _searching(alive_log_probs, fin["scores"], divisor, search.n_best)
        return (t < limit) & tf.reduce_any(searching)

    def body(*loop_vars):
        return _advance(search, *loop_vars, given, mask, batch)

    # The batch dimension may lose its static size inside the loop; the rest stays.
    *_, fin = tf.while_loop(
        cond, body, start, shape_invariants=_loop_invariants(start), maximum_iterations=steps
    )
    return fin


def _leaving_loop(search: _Search, start: tuple, given, mask, divisor, limit, steps) -> dict:
    """Dynamic shapes: sentences whose search is over leave the working batch.

    A leaving sentence's finished hypotheses are written to the full-size results,
    and its rows are dropped from the live hypotheses, the state (beam-invariant
    entries too), the coverage and the prompt: a batch costs what its sentences
    still searching cost, not `batch * beam` rows until its longest is done. The
    working set holds per sentence `[active, ...]` (with its row in the results)
    and per row `[active * beam, ...]`. The hypotheses equal `_whole_batch_loop`'s,
    their scores to the last bit that CPU kernels already round by a row's position
    in the batch; the ids keep only the steps that ran. Arguments as
    `_whole_batch_loop`.

    Returns:
        the finished set, with only the steps that ran.
    """
    _, last, alive_ids, alive_log_probs, state, coverage, finished = start
    invariant, state = _split_invariant(state, search.beam_invariant)
    sentences = {
        "index": tf.range(tf.shape(last)[0]),
        "last": last,
        "ids": alive_ids,
        "log_probs": alive_log_probs,
        "fin": finished,
        "given": given,
        "divisor": divisor,
        "invariant": invariant,  # one row per sentence
    }
    rows = {"state": state, "coverage": coverage}
    if search.coverage:
        rows["mask"] = mask

    def cond(t, sentences, rows, results):
        return (t < limit) & (tf.size(sentences["index"]) > 0)

    def body(t, sentences, rows, results):
        state = rows["state"]
        if sentences["invariant"]:
            state = {**state, **sentences["invariant"]}
        t, last, alive_ids, alive_log_probs, state, coverage, fin = _advance(
            search, t, sentences["last"], sentences["ids"], sentences["log_probs"],
            state, rows["coverage"], sentences["fin"], sentences["given"],
            rows.get("mask"), tf.shape(sentences["index"])[0],
        )  # fmt: skip
        _, state = _split_invariant(state, search.beam_invariant)
        sentences = {
            **sentences, "last": last, "ids": alive_ids, "log_probs": alive_log_probs,
            "fin": fin,
        }  # fmt: skip
        rows = {**rows, "state": state, "coverage": coverage}
        searching = _searching(alive_log_probs, fin["scores"], sentences["divisor"], search.n_best)

        def leave():
            done = ~searching
            leaving = tf.nest.map_structure(lambda v: tf.boolean_mask(v, done), fin)
            written = _write_back(results, tf.boolean_mask(sentences["index"], done), leaving)
            kept_rows = _tile(searching, search.beam_size)  # the beams of the kept sentences
            return (
                tf.nest.map_structure(lambda v: tf.boolean_mask(v, searching), sentences),
                tf.nest.map_structure(lambda v: tf.boolean_mask(v, kept_rows), rows),
                written,
            )

        # Compacting copies the state: only when a sentence has just finished.
        sentences, rows, results = tf.cond(
            tf.reduce_all(searching), lambda: (sentences, rows, results), leave
        )
        return t, sentences, rows, results

    loop_vars = (tf.constant(0), sentences, rows, finished)
    t, sentences, _, fin = tf.while_loop(
        cond, body, loop_vars, shape_invariants=_loop_invariants(loop_vars),
        maximum_iterations=steps,
    )  # fmt: skip
    # Any sentence still searching when the steps ran out (a safeguard: a budget's last
    # step ends every candidate, so a searching sentence has none finished to write).
    fin = _write_back(fin, sentences["index"], sentences["fin"])
    return {**fin, "ids": fin["ids"][:, :, :t]}  # keep only the steps that ran


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
    *,
    start_id: int,
    end_id: int,
    pad_id: int,
    alignment_fn: Callable | None = None,
    source_mask=None,
    prompt=None,
) -> Hypotheses:
    """Batched beam search with GNMT length and coverage penalties.

    Each step extends the live hypotheses by every token and keeps the
    `beam_size` best by log-probability. A candidate that ends in the end id (or
    reaches its sequence's max length) moves to the finished set, ranked by
    log_prob / length_penalty + coverage_penalty, and never grows again; its
    live slot is dropped. A sentence's search is over when it has no live
    hypothesis left or no live one can still beat the `n_best`-th best of its
    finished ones (log probabilities only fall, and the coverage penalty is at
    most 0): nothing it could still produce would enter the n best it returns,
    so asking for fewer hypotheses ends the search sooner and changes none of
    them. With beam_size 1 this is greedy search exactly.

    With dynamic shapes (`max_steps` None) a sentence whose search is over
    leaves the working batch (`_leaving_loop`), so later steps run `step_fn` on
    fewer rows; with `max_steps` (static shapes, for XLA) the whole batch steps
    to the end. The hypotheses are the same either way.

    Args:
        beam_size: hypotheses kept per sequence (a Python int or scalar tensor).
        length_penalty_alpha: GNMT alpha (0 = rank by log-probability).
        coverage_penalty_beta: GNMT beta (0 = off); needs alignment_fn and source_mask.
        n_best: hypotheses returned per sequence, best first (<= beam_size).
        max_steps: bound on prompt + max_lengths (see `sampling.decode`): a Python
            int, or a scalar XLA can fold from the input shapes; with it every
            shape is static once beam_size is, and XLA can compile the search
            (finished sentences then stay in the batch).
        beam_invariant: top-level state entries that are the same for every beam of
            a sequence and never change (the model says which: encoder memory, its
            attention keys and mask): never tiled nor reordered, which saves the
            largest gathers and lets attention read a sentence's memory once for all
            its beams. `step_fn` then gets them with one row per sentence, the other
            entries with `beam` rows per sentence, each sentence's together (they
            still leave with their sentence).
        start_id, end_id, pad_id: see `sampling.decode`.
        alignment_fn: `state -> [batch * beam, src_len]` attention weights.
        source_mask: `[batch, src_len]` bool, the real source positions (coverage).
        prompt: optional `[batch, len]` forced first tokens (see `sampling.decode`);
            they are not scored and do not count in the length penalty.

    Returns:
        Hypotheses with n = n_best, sorted by score.
    """
    beam_size = _static_or_tensor(beam_size)
    search_with = functools.partial(
        _beam_search, step_fn, initial_state, max_lengths,
        length_penalty_alpha=length_penalty_alpha, coverage_penalty_beta=coverage_penalty_beta,
        max_steps=max_steps, beam_invariant=beam_invariant, start_id=start_id, end_id=end_id,
        pad_id=pad_id, alignment_fn=alignment_fn, source_mask=source_mask, prompt=prompt,
    )  # fmt: skip
    if isinstance(beam_size, int):
        return search_with(beam_size, n_best)
    # A width given as a tensor (a request's): width 1 takes the greedy loop, which
    # skips the beam bookkeeping; both give the same hypotheses.
    return tf.cond(
        tf.equal(beam_size, 1),
        lambda: search_with(1, 1),
        lambda: search_with(beam_size, n_best),
    )


def _beam_search(
    step_fn, initial_state, max_lengths, beam_size, n_best, *, length_penalty_alpha,
    coverage_penalty_beta, max_steps, beam_invariant, start_id, end_id, pad_id, alignment_fn,
    source_mask, prompt,
) -> Hypotheses:  # fmt: skip
    """`beam_search` at one width (a Python int, or a tensor that is not 1)."""
    max_lengths = tf.convert_to_tensor(max_lengths, tf.int32)
    batch = tf.shape(max_lengths)[0]
    prompted = prompt_lengths(prompt, pad_id, batch)
    ends = prompted + max_lengths
    limit = tf.reduce_max(ends)
    steps = limit if max_steps is None else max_steps
    n_best = _at_most(_static_or_tensor(n_best), beam_size)
    search = _Search(
        step_fn, beam_size, length_penalty_alpha, coverage_penalty_beta, end_id, pad_id,
        beam_invariant, alignment_fn, prompt is not None, n_best, tf.range(steps),
    )  # fmt: skip
    if search.coverage and (alignment_fn is None or source_mask is None):
        raise ValueError("the coverage penalty needs alignment_fn and source_mask")
    # Per-sentence constants the step reads (what leaves the working batch with a sentence).
    given = {
        "ends": tf.reshape(_tile(ends, beam_size), [batch, beam_size]),
        "offsets": tf.reshape(_tile(prompted, beam_size), [batch, beam_size]),
        "prompted": prompted,
    }
    if prompt is not None:
        given["prompt"] = tf.convert_to_tensor(prompt)
    src_len = tf.shape(source_mask)[1] if search.coverage else 1
    start = _first_loop_vars(
        initial_state, beam_invariant, batch, beam_size, steps, src_len, start_id, pad_id
    )
    loop = _whole_batch_loop if max_steps is not None else _leaving_loop
    fin = loop(
        search,
        start,
        given,
        _tile(source_mask, beam_size) if search.coverage else None,
        # Upper bound on what a live hypothesis can still score (largest penalty ahead).
        length_penalty(max_lengths, length_penalty_alpha),
        limit,
        steps,
    )
    return Hypotheses(
        ids=fin["ids"][:, :n_best],
        lengths=fin["lengths"][:, :n_best],
        scores=fin["scores"][:, :n_best],
        log_probs=fin["log_probs"][:, :n_best],
    )
