"""Beam search with synthetic step functions whose answers are known by construction,
and with a small random model (brute force for the best hypothesis)."""

import numpy as np
import pytest
import tensorflow as tf
from support import history_step, make_seq2seq, random_table, table_step

from seq2seq_tf import search
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID

VOCAB = 8
IDS = {"start_id": BOS_ID, "end_id": EOS_ID, "pad_id": PAD_ID}


def _model(vocab=30, bridge="zeros"):
    return make_seq2seq(
        vocab,
        embedding_dim=8,
        encoder_layers=1,
        encoder_units=8,
        decoder_layers=1,
        decoder_units=16,
        attention_units=16,
        bridge=bridge,
    )


def _random_model(vocab=30, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return _model(vocab)


def _coverage(model, source):
    """The beam_search arguments the coverage penalty reads."""
    return {"alignment_fn": model.alignment, "source_mask": tf.not_equal(source, PAD_ID)}


SOURCES = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3], [6, 3, 0, 0, 0, 0]])


def test_beam_is_padding_invariant_with_a_model():
    model = _model(bridge="copy")
    alone = tf.constant([[5, 9, 7, 3]])
    batch = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3]])
    a = search.beam_search(
        model.step, model.initial_state(alone), [6], 3, 0.6, 0.2, 3,
        **_coverage(model, alone), **IDS,
    )  # fmt: skip
    b = search.beam_search(
        model.step, model.initial_state(batch), [6, 6], 3, 0.6, 0.2, 3,
        **_coverage(model, batch), **IDS,
    )  # fmt: skip
    np.testing.assert_array_equal(a.lengths[0], b.lengths[0])
    for k in range(a.ids.shape[1]):
        n = int(a.lengths[0, k])
        np.testing.assert_array_equal(a.ids[0, k, :n], b.ids[0, k, :n])
    np.testing.assert_allclose(a.scores[0], b.scores[0], atol=1e-4)


def test_beam_width_one_is_greedy():
    model = _random_model()
    state = model.initial_state(SOURCES)
    greedy = search.greedy_search(model.step, state, [7, 7, 7], **IDS)
    beam = search.beam_search(model.step, state, [7, 7, 7], beam_size=1, **IDS)
    np.testing.assert_array_equal(greedy.lengths, beam.lengths)
    for b in range(3):
        n = int(greedy.lengths[b, 0]) + 1
        np.testing.assert_array_equal(greedy.ids[b, 0, :n], beam.ids[b, 0, :n])
    np.testing.assert_allclose(greedy.log_probs, beam.log_probs, atol=1e-5)


def _exhaustive(model, source, max_len, alpha):
    """Scores of every hypothesis up to max_len pieces, by brute force."""
    vocab = model.vocab_size
    results = []

    def extend(prefix, state, log_prob):
        logits, new_state = model.step(tf.constant([prefix[-1] if prefix else BOS_ID]), state)
        log_probs = tf.nn.log_softmax(logits)[0].numpy()
        for token in range(vocab):
            total = log_prob + float(log_probs[token])
            seq = prefix + [token]
            if token == EOS_ID or len(seq) == max_len:
                score = total / search.length_penalty(len(seq), alpha).numpy()
                results.append((score, seq))
            else:
                extend(seq, new_state, total)

    extend([], model.initial_state(source), 0.0)
    return sorted(results, key=lambda r: -r[0])


def test_wide_beam_finds_the_exhaustive_best_and_nbest_is_sorted_and_distinct():
    model = _random_model(vocab=6, seed=3)
    source = tf.constant([[4, 5, 3]])
    for alpha in (0.0, 1.0):
        expected = _exhaustive(model, source, 3, alpha)
        beam = search.beam_search(
            model.step, model.initial_state(source), [3], 40, alpha, n_best=5, **IDS
        )
        np.testing.assert_allclose(beam.scores[0].numpy(), [s for s, _ in expected[:5]], atol=1e-5)
        best_seq = expected[0][1]
        np.testing.assert_array_equal(beam.ids[0, 0, : len(best_seq)], best_seq)
        scores = beam.scores[0].numpy()
        assert np.all(np.diff(scores) <= 1e-6)
        hyps = {tuple(beam.ids[0, k, : int(beam.lengths[0, k])].numpy()) for k in range(5)}
        assert len(hyps) == 5 or len({tuple(seq) for _, seq in expected[:5]}) < 5


def scripted_rows_step(script):
    """A step that emits script[s][t] with probability ~1 at step t, s the row's sentence
    (a per-row state value, so it follows its sentence when search gathers or drops rows)."""
    script = tf.constant(script, tf.int32)  # sentences x steps

    def step_fn(ids, state):
        t = tf.minimum(state["t"], script.shape[1] - 1)
        token = tf.gather_nd(script, tf.stack([state["sentence"], t], axis=-1))
        return tf.one_hot(token, VOCAB) * 3.0, {**state, "t": state["t"] + 1}

    return step_fn


def test_finished_hypotheses_never_grow():
    # Sentence 0 prefers EOS at once; it must stay a 0-piece hypothesis with that score.
    state = {"t": tf.zeros([2], tf.int32), "sentence": tf.range(2)}
    for n_best in (1, 2):
        beam = search.beam_search(
            scripted_rows_step([[EOS_ID, 5, 5, 5], [5, 6, EOS_ID, 5]]), state, [4, 4], 2,
            n_best=n_best, **IDS,
        )  # fmt: skip
        assert int(beam.lengths[0, 0]) == 0 and int(beam.lengths[1, 0]) == 2
        np.testing.assert_array_equal(beam.ids[1, 0, :3], [5, 6, EOS_ID])


# --- Coverage penalty: read through alignment_fn and source_mask only. -------------------

_LOGITS = np.full((VOCAB, VOCAB), -30.0)
_LOGITS[BOS_ID, 5], _LOGITS[BOS_ID, 6] = 0.2, 0.0  # first piece: 5 a little likelier than 6
_LOGITS[5:7, EOS_ID] = 0.0  # then the end, almost surely
# Attention over 3 source positions at the step fed each id (the third is padding in row 0).
_ALIGN = np.zeros((VOCAB, 3))
_ALIGN[BOS_ID] = [0.5, 0.5, 0.2]
_ALIGN[5] = [0.5, 0.0, 0.8]  # [5, EOS] covers [1.0, 0.5, 1.0]
_ALIGN[6] = [0.5, 0.5, 0.0]  # [6, EOS] covers [1.0, 1.0, 0.2]
_MASK = tf.constant([[True, True, False], [True, True, True]])


def _attending_step(ids, state):
    """logits from the fed id; the state keeps its attention under a name search can't know."""
    logits = tf.gather(tf.constant(_LOGITS, tf.float32), ids)
    return logits, {"attn": tf.gather(tf.constant(_ALIGN, tf.float32), ids)}


def _coverage_by_hand(beta):
    """Per row: {hypothesis: log p / 1 + beta * sum over real positions log min(coverage, 1)}."""
    log_p = _LOGITS - np.log(np.exp(_LOGITS).sum(-1, keepdims=True))
    expected = []
    for mask in _MASK.numpy():
        row = {}
        for first in (5, 6):
            coverage = _ALIGN[BOS_ID] + _ALIGN[first]
            penalty = beta * np.sum(np.log(np.minimum(coverage, 1.0))[mask])
            row[(first, EOS_ID)] = log_p[BOS_ID, first] + log_p[first, EOS_ID] + penalty
        expected.append(row)
    return expected


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_coverage_penalty_ranks_as_computed_by_hand(beta):
    state = {"attn": tf.zeros([2, 3])}
    beam = search.beam_search(
        _attending_step, state, [3, 3], 2, 0.0, beta, n_best=2,
        alignment_fn=lambda s: s["attn"], source_mask=_MASK, **IDS,
    )  # fmt: skip
    for b, expected in enumerate(_coverage_by_hand(beta)):
        ranked = sorted(expected, key=lambda h: -expected[h])
        got = [tuple(beam.ids[b, k, :2].numpy()) for k in range(2)]
        assert got == ranked, f"row {b}"
        np.testing.assert_allclose(beam.scores[b], [expected[h] for h in ranked], atol=1e-5)
        np.testing.assert_array_equal(beam.lengths[b], [1, 1])
    winners = [tuple(beam.ids[b, 0, :2].numpy()) for b in range(2)]
    # Without the penalty 5 wins everywhere; with it, row 0 (the 0.2-covered position is
    # padding) prefers 6, which covers its real source, and row 1 keeps 5.
    assert winners == ([(5, EOS_ID)] * 2 if beta == 0 else [(6, EOS_ID), (5, EOS_ID)])


def test_coverage_penalty_needs_alignment_fn_and_source_mask():
    state = {"attn": tf.zeros([2, 3])}
    with pytest.raises(ValueError, match="alignment_fn and source_mask"):
        search.beam_search(_attending_step, state, [3, 3], 2, 0.0, 0.5, **IDS)
    with pytest.raises(ValueError, match="alignment_fn and source_mask"):
        search.beam_search(
            _attending_step, state, [3, 3], 2, 0.0, 0.5, alignment_fn=lambda s: s["attn"], **IDS
        )


def test_coverage_penalty_changes_ranking_only_through_attention():
    model = _random_model(seed=5)
    state = model.initial_state(SOURCES)
    plain = search.beam_search(model.step, state, [6, 6, 6], 3, 0.0, 0.0, **IDS)
    covered = search.beam_search(
        model.step, state, [6, 6, 6], 3, 0.0, 0.5, **_coverage(model, SOURCES), **IDS
    )
    assert np.all(covered.scores.numpy() <= plain.scores.numpy() + 1e-5)  # penalty <= 0


# --- Prompts and state layouts. ----------------------------------------------------------


PROMPT = tf.constant([[5, 6, 7], [4, 0, 0], [0, 0, 0], [7, 7, 0]])  # right-padded, one empty
BUDGET = [4, 5, 3, 6]


def test_beam_one_with_a_prompt_is_greedy_with_that_prompt():
    for seed in range(3):
        step_fn, state = table_step(random_table(VOCAB, seed)), {"t": tf.zeros([4], tf.int32)}
        greedy = search.greedy_search(step_fn, state, BUDGET, prompt=PROMPT, **IDS)
        beam = search.beam_search(step_fn, state, BUDGET, 1, prompt=PROMPT, **IDS)
        np.testing.assert_array_equal(greedy.lengths, beam.lengths)
        for b in range(4):
            n = min(int(greedy.lengths[b, 0]) + 1, greedy.ids.shape[-1])
            np.testing.assert_array_equal(beam.ids[b, 0, :n], greedy.ids[b, 0, :n])
        np.testing.assert_allclose(beam.log_probs, greedy.log_probs, atol=1e-5)
        np.testing.assert_allclose(beam.scores, greedy.scores, atol=1e-5)  # alpha 0: log p


def test_every_beam_hypothesis_starts_with_its_prompt_and_the_penalty_skips_it():
    step_fn, state = table_step(random_table(VOCAB, 4)), {"t": tf.zeros([4], tf.int32)}
    alpha = 1.0
    beam = search.beam_search(step_fn, state, BUDGET, 4, alpha, n_best=3, prompt=PROMPT, **IDS)
    prompted = np.sum(PROMPT.numpy() != PAD_ID, axis=1)
    for b in range(4):
        for k in range(3):
            ids = beam.ids[b, k].numpy()
            np.testing.assert_array_equal(ids[: prompted[b]], PROMPT[b, : prompted[b]])
            length = int(beam.lengths[b, k])
            produced = length - prompted[b] + int(ids[length] == EOS_ID if length < len(ids) else 0)
            assert 1 <= produced <= BUDGET[b]
            expected = beam.log_probs[b, k] / ((5.0 + produced) / 6.0) ** alpha
            np.testing.assert_allclose(beam.scores[b, k], expected, rtol=1e-5)


def test_beam_takes_a_plain_tuple_state():
    table = random_table(VOCAB, seed=2)
    t = tf.zeros([4], tf.int32)
    seen = tf.constant(np.random.default_rng(9).uniform(0, 2, (4, VOCAB)), tf.float32)
    tuple_step, as_tuple = history_step(VOCAB, table, True), (t, (seen,))
    dict_step, as_dict = history_step(VOCAB, table, False), {"t": t, "seen": seen}
    for width, prompt in ((3, None), (3, PROMPT), (1, None)):
        got = search.beam_search(
            tuple_step, as_tuple, BUDGET, width, 0.6, n_best=width, beam_invariant=(),
            prompt=prompt, **IDS,
        )  # fmt: skip
        expected = search.beam_search(
            dict_step, as_dict, BUDGET, width, 0.6, n_best=width, prompt=prompt, **IDS
        )
        np.testing.assert_array_equal(got.ids, expected.ids)
        np.testing.assert_array_equal(got.lengths, expected.lengths)
        np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-6)
    greedy = search.greedy_search(tuple_step, as_tuple, BUDGET, **IDS)
    one = search.beam_search(tuple_step, as_tuple, BUDGET, 1, beam_invariant=(), **IDS)
    np.testing.assert_allclose(one.log_probs, greedy.log_probs, atol=1e-5)
    np.testing.assert_array_equal(one.lengths, greedy.lengths)


# --- Compiled search and beam-invariant state. --------------------------------------------


def test_beam_compiles_with_xla_and_agrees():
    model = _random_model(seed=4)
    budget = tf.constant([7, 7, 7])

    def run(source):
        state = model.initial_state(source)
        return search.beam_search(
            model.step, state, budget, 3, 0.6, 0.2, n_best=2, max_steps=7,
            **_coverage(model, source), **IDS,
        )  # fmt: skip

    a = tf.function(run)(SOURCES)
    b = tf.function(run, jit_compile=True)(SOURCES)
    assert a.ids.shape[-1] == 7 and b.ids.shape[-1] == 7  # static, padded
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_beam_invariant_state_is_not_reordered_and_results_are_unchanged():
    model = _random_model(seed=4)
    state = model.initial_state(SOURCES)
    invariant = model.beam_invariant
    assert invariant  # an attention model has memory to keep still
    for key in invariant:  # what the decoder calls invariant really is the same every step
        _, after = model.step(tf.constant([BOS_ID] * 3), state)
        np.testing.assert_array_equal(after[key], state[key])
    coverage = _coverage(model, SOURCES)
    plain = search.beam_search(
        model.step, state, [7, 7, 7], 4, 0.6, 0.3, n_best=2, **coverage, **IDS
    )
    fast = search.beam_search(
        model.step, state, [7, 7, 7], 4, 0.6, 0.3, n_best=2, beam_invariant=invariant,
        **coverage, **IDS,
    )  # fmt: skip
    np.testing.assert_array_equal(plain.ids, fast.ids)
    np.testing.assert_allclose(plain.scores, fast.scores, rtol=1e-6)


# --- Finished sentences leave the working batch (dynamic shapes). -------------------------


def _finishing_step(table, watch=None):
    """`table_step` where each sentence's end is unlikely before its own step `end_at` and
    likely from it on (a per-row state value), plus a per-sentence bias over the vocabulary
    (`memory`, never changed: beam-invariant). `watch`, a list, gets the rows of every call."""
    step = table_step(table)

    def step_fn(ids, state):
        if watch is not None:
            watch.append(int(tf.shape(ids)[0]))
        logits, _ = step(ids, state)
        late = tf.where(state["t"] >= _per_row(state["end_at"], ids), 8.0, -8.0)
        logits += late[:, None] * tf.one_hot(EOS_ID, VOCAB) + _per_row(state["memory"], ids)
        return logits, {**state, "t": state["t"] + 1}

    return step_fn


def _per_row(entry, ids):
    """A state entry `[sentences, ...]` (beam-invariant: one row per sentence) or `[rows,
    ...]` as one row per row of `ids` (a sentence's beams are consecutive rows)."""
    return tf.repeat(entry, tf.shape(ids)[0] // tf.shape(entry)[0], axis=0)


END_AT = [0, 9, 3, 6, 1]  # sentence 0 ends at once, sentence 1 runs to its budget
LATE_BUDGET = [10, 10, 4, 8, 10]


def _finishing_state(rows):
    memory = np.random.default_rng(11).normal(size=(len(END_AT), VOCAB)).astype("float32")
    return {
        "t": tf.zeros([len(rows)], tf.int32),
        "end_at": tf.constant([END_AT[r] for r in rows], tf.int32),
        "memory": tf.constant(memory[rows]),
    }


def _assert_same_hypotheses(got, expected):
    """The same hypotheses: ids, lengths and n-best order exactly; scores and log-probs to
    float rounding (CPU kernels round a row's values by where it sits in the batch, so a
    row's last bit already depends on the batch it is searched in); the ids of the search
    that ran more steps only have padding in the steps the other did not run."""
    width = min(got.ids.shape[-1], expected.ids.shape[-1])
    for hyps in (got, expected):
        np.testing.assert_array_equal(hyps.ids[..., width:], PAD_ID)
    np.testing.assert_array_equal(got.ids[..., :width], expected.ids[..., :width])
    np.testing.assert_array_equal(got.lengths, expected.lengths)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.log_probs, expected.log_probs, rtol=1e-6, atol=1e-6)


def _stack(hyps):
    """Single-sentence Hypotheses as one batch (ids padded to the longest)."""
    width = max(h.ids.shape[-1] for h in hyps)
    ids = [np.pad(h.ids.numpy(), [(0, 0), (0, 0), (0, width - h.ids.shape[-1])]) for h in hyps]
    fields = {f: np.concatenate([getattr(h, f) for h in hyps]) for f in _FIELDS}
    return search.Hypotheses(**fields, ids=np.concatenate(ids))


_FIELDS = ("lengths", "scores", "log_probs")
STATIC_STEPS = 14  # bounds every prompt + budget below


def _alone_batched_and_static(run, batch):
    """`run(rows, max_steps)` for each sentence alone, for the batch, and for the batch with
    static shapes (no sentence leaves): all must agree."""
    batched = run(list(range(batch)), None)
    _assert_same_hypotheses(batched, _stack([run([b], None) for b in range(batch)]))
    static = run(list(range(batch)), STATIC_STEPS)
    assert static.ids.shape[-1] == STATIC_STEPS > batched.ids.shape[-1]
    _assert_same_hypotheses(batched, static)
    return batched


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_sentences_finishing_at_different_steps_match_alone_and_static(alpha):
    step_fn = _finishing_step(random_table(VOCAB, 6))

    def run(rows, max_steps):
        budget = [LATE_BUDGET[r] for r in rows]
        return search.beam_search(
            step_fn, _finishing_state(rows), budget, 3, alpha, n_best=3, max_steps=max_steps,
            **IDS,
        )  # fmt: skip

    batched = _alone_batched_and_static(run, len(END_AT))
    ends = batched.lengths[:, 0].numpy()
    assert ends.min() <= 1 and ends.max() >= 9  # they really finish at very different steps


def test_leaving_sentences_take_their_beam_invariant_state_and_prompt_along():
    step_fn = _finishing_step(random_table(VOCAB, 7))
    prompt = np.array([[5, 6, 0], [4, 0, 0], [0, 0, 0], [7, 7, 7], [6, 0, 0]], np.int32)

    def run(rows, max_steps, invariant=("end_at", "memory")):
        budget = [LATE_BUDGET[r] for r in rows]
        return search.beam_search(
            step_fn, _finishing_state(rows), budget, 4, 0.6, n_best=2, max_steps=max_steps,
            beam_invariant=invariant, prompt=tf.constant(prompt[rows]), **IDS,
        )  # fmt: skip

    batched = _alone_batched_and_static(run, len(END_AT))
    every = list(range(len(END_AT)))
    _assert_same_hypotheses(batched, run(every, None, invariant=()))
    traced = tf.function(lambda: run(every, None))()  # the graph an export traces
    _assert_same_hypotheses(batched, traced)
    for b, row in enumerate(prompt):
        n = int(np.sum(row != PAD_ID))
        np.testing.assert_array_equal(batched.ids[b, :, :n], np.broadcast_to(row[:n], (2, n)))


def test_leaving_sentences_take_their_coverage_and_source_mask_along():
    base = _finishing_step(random_table(VOCAB, 8))
    align = np.random.default_rng(3).uniform(0.0, 0.6, (VOCAB, 4)).astype("float32")
    lengths = np.array([2, 4, 1, 3, 4])  # real source positions per sentence

    def step_fn(ids, state):
        logits, state = base(ids, state)
        return logits, {**state, "attn": tf.gather(tf.constant(align), ids)}

    def run(rows, max_steps):
        state = {**_finishing_state(rows), "attn": tf.zeros([len(rows), 4])}
        return search.beam_search(
            step_fn, state, [LATE_BUDGET[r] for r in rows], 3, 0.6, 0.7, n_best=3,
            max_steps=max_steps, beam_invariant=("end_at", "memory"),
            alignment_fn=lambda s: s["attn"], source_mask=tf.sequence_mask(lengths[rows], 4),
            **IDS,
        )  # fmt: skip

    _alone_batched_and_static(run, len(END_AT))


def test_the_step_runs_on_fewer_rows_once_sentences_finish():
    table, beam = random_table(VOCAB, 6), 3

    def run(rows, watch, max_steps=None):
        return search.beam_search(
            _finishing_step(table, watch), _finishing_state(rows),
            [LATE_BUDGET[r] for r in rows], beam, 0.6, max_steps=max_steps, **IDS,
        )  # fmt: skip

    every = list(range(len(END_AT)))
    searching = []  # steps each sentence searches alone
    for b in every:
        calls = []
        run([b], calls)
        searching.append(len(calls))
    rows = []
    run(every, rows)
    # Call j runs the beams of the sentences still searching at step j, and only those.
    assert rows == [beam * sum(s > j for s in searching) for j in range(max(searching))]
    assert sum(rows) < len(every) * beam * len(rows)
    static = []
    run(every, static, max_steps=STATIC_STEPS)
    assert static == [len(every) * beam] * len(rows)  # static shapes: the whole batch
    seen = tf.Variable(0)  # the same in a traced graph (what an export runs)

    def counting(ids, state):
        seen.assign_add(tf.shape(ids)[0])
        return _finishing_step(table)(ids, state)

    tf.function(
        lambda: search.beam_search(counting, _finishing_state(every), LATE_BUDGET, beam, 0.6, **IDS)
    )()
    assert int(seen.numpy()) == sum(rows)


def test_an_attention_model_searches_the_same_with_and_without_leaving():
    model = _random_model(seed=6)
    state = model.initial_state(SOURCES)
    kwargs = dict(beam_invariant=model.beam_invariant, **_coverage(model, SOURCES), **IDS)
    budget = [2, 7, 4]  # the sentences finish at different steps
    leaving = search.beam_search(model.step, state, budget, 3, 0.6, 0.3, 3, **kwargs)
    static = search.beam_search(model.step, state, budget, 3, 0.6, 0.3, 3, 7, **kwargs)
    _assert_same_hypotheses(leaving, static)


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_asking_for_fewer_hypotheses_ends_the_search_sooner_and_changes_none(alpha):
    table, beam = random_table(VOCAB, 9), 4

    def run(n_best, watch, max_steps=None):
        return search.beam_search(
            _finishing_step(table, watch), _finishing_state(list(range(len(END_AT)))),
            LATE_BUDGET, beam, alpha, n_best=n_best, max_steps=max_steps, **IDS,
        )  # fmt: skip

    every_row, top_rows = [], []
    every = run(beam, every_row)
    for n_best in (1, 2):
        rows = []
        fewer = run(n_best, rows)
        _assert_same_hypotheses(fewer, _sliced(every, n_best))
        _assert_same_hypotheses(run(n_best, [], STATIC_STEPS), fewer)  # static shapes too
        if n_best == 1:
            top_rows = rows
    assert sum(top_rows) < sum(every_row)  # the search did stop sooner


def _sliced(hyps, n):
    return search.Hypotheses(*(None if t is None else t[:, :n] for t in hyps))


def test_an_attention_model_returns_the_same_best_hypothesis_for_any_n_best():
    model = _random_model(seed=8)
    state = model.initial_state(SOURCES)
    kwargs = dict(beam_invariant=model.beam_invariant, **_coverage(model, SOURCES), **IDS)
    every = search.beam_search(model.step, state, [5, 7, 6], 4, 0.6, 0.3, 4, **kwargs)
    best = search.beam_search(model.step, state, [5, 7, 6], 4, 0.6, 0.3, 1, **kwargs)
    _assert_same_hypotheses(best, _sliced(every, 1))
    n = tf.constant(2)  # n as a tensor, as translate_nbest passes it
    two = tf.function(
        lambda: search.beam_search(model.step, state, [5, 7, 6], 4, 0.6, 0.3, n, **kwargs)
    )()
    _assert_same_hypotheses(two, _sliced(every, 2))


@pytest.mark.parametrize("max_steps", [None, 9])
@pytest.mark.parametrize("prompted", [False, True])
def test_the_width_one_loop_equals_the_beam_bookkeeping_at_width_one(max_steps, prompted):
    from seq2seq_tf.search import beam as beam_module

    model = _random_model(seed=10)
    source = tf.concat([SOURCES, SOURCES[:1]], axis=0)  # 4 sentences, as PROMPT has
    state = model.initial_state(source)
    args = (model.step, state, [3, 6, 2, 5])
    kwargs = dict(
        length_penalty_alpha=0.6, coverage_penalty_beta=0.3, max_steps=max_steps,
        beam_invariant=model.beam_invariant, alignment_fn=model.alignment,
        source_mask=tf.not_equal(source, PAD_ID), prompt=PROMPT if prompted else None, **IDS,
    )  # fmt: skip
    # A width that is a tensor inside `_beam_search` runs the general bookkeeping (no
    # reordering skipped); the Python int 1 runs the width-one loop.
    general = beam_module._beam_search(*args, tf.constant(1), 1, **kwargs)
    lean = search.beam_search(*args, 1, **kwargs)
    _assert_same_hypotheses(lean, general)
    # A request's width as a tensor: width 1 takes the width-one loop, width 3 the beams.
    traced = tf.function(lambda width: search.beam_search(*args, width, n_best=width, **kwargs))
    _assert_same_hypotheses(traced(tf.constant(1)), general)
    wide = search.beam_search(*args, 3, n_best=3, **kwargs)
    _assert_same_hypotheses(traced(tf.constant(3)), wide)
