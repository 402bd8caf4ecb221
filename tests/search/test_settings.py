"""Search settings change the result the way a hand calculation predicts.

Scripted step functions whose probabilities are written out, so each winner and
score below is worked out by hand (GNMT: log P / ((5 + |Y|) / 6)^alpha +
beta * sum_i log min(sum_t a_ti, 1)); a search that ignored alpha or beta, or
a beam no wider than greedy, picks another hypothesis. Sampling filters are
checked by the frequencies of 4,000 seeded draws against the filtered and
renormalized distribution.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID

IDS = {"start_id": BOS_ID, "end_id": EOS_ID, "pad_id": PAD_ID}
VOCAB = 8


def _table(rows: dict) -> np.ndarray:
    """Logits by fed id: rows {fed id: {next id: probability}}, all else ~0."""
    logits = np.full((VOCAB, VOCAB), -30.0)
    for fed, nexts in rows.items():
        for token, p in nexts.items():
            logits[fed, token] = math.log(p)
    return logits


def _step(logits, align=None):
    """Step function: logits of the fed id; the state carries attention of the fed id."""
    logits = tf.constant(logits, tf.float32)
    align = tf.constant(np.zeros((VOCAB, 3)) if align is None else align, tf.float32)

    def step_fn(ids, state):
        return tf.gather(logits, ids), {"attn": tf.gather(align, ids)}

    return step_fn


# --- Length and coverage penalties. -------------------------------------------------------

# After BOS: EOS or 5 (even); after 5: 6 (0.9) or EOS (0.1); after 6: EOS.
_PENALTY_TABLE = _table({BOS_ID: {EOS_ID: 0.5, 5: 0.5}, 5: {6: 0.9, EOS_ID: 0.1}, 6: {EOS_ID: 1.0}})
# Attention (3 real source positions) at the step that was fed each id.
_PENALTY_ALIGN = np.zeros((VOCAB, 3))
_PENALTY_ALIGN[BOS_ID] = [0.6, 0.2, 0.2]
_PENALTY_ALIGN[5] = [0.2, 0.4, 0.4]
_PENALTY_ALIGN[6] = [0.1, 0.4, 0.5]
# The three hypotheses: (ids, probability, fed ids, |Y| with the end counted).
_A, _B, _C = (EOS_ID,), (5, EOS_ID), (5, 6, EOS_ID)
_HYPOTHESES = {
    _A: (0.5, (BOS_ID,)),
    _B: (0.5 * 0.1, (BOS_ID, 5)),
    _C: (0.5 * 0.9, (BOS_ID, 5, 6)),
}


def _gnmt_score(hypothesis, alpha, beta):
    p, fed = _HYPOTHESES[hypothesis]
    coverage = sum(_PENALTY_ALIGN[f] for f in fed)
    return math.log(p) / ((5 + len(hypothesis)) / 6) ** alpha + beta * float(
        np.sum(np.log(np.minimum(coverage, 1.0)))
    )


@pytest.mark.parametrize(
    "alpha, beta, ranked",
    [
        # log P: A -0.69, C -0.80, B -3.00: the shortest wins.
        (0.0, 0.0, [_A, _C]),
        # / lp: A -0.69 / 1, C -0.80 / (8/6) = -0.60: the longest wins.
        (1.0, 0.0, [_C, _A]),
        # + coverage: A covers [.6 .2 .2] (-3.73), B [.8 .6 .6] (-1.25), C [.9 1 1.1] (-0.11).
        (0.0, 1.0, [_C, _B]),
        (1.0, 1.0, [_C, _B]),  # C -0.60 - 0.11, B -3.00 / (7/6) - 1.25, A -0.69 - 3.73
    ],
)
def test_length_and_coverage_penalties_pick_the_winner_worked_out_by_hand(alpha, beta, ranked):
    beam = search.beam_search(
        _step(_PENALTY_TABLE, _PENALTY_ALIGN),
        {"attn": tf.zeros([1, 3])},
        [4],
        2,
        alpha,
        beta,
        n_best=2,
        alignment_fn=lambda s: s["attn"],
        source_mask=tf.ones([1, 3], tf.bool),
        **IDS,
    )
    got = [tuple(beam.ids[0, k, : len(h)].numpy()) for k, h in enumerate(ranked)]
    assert got == ranked
    np.testing.assert_array_equal(beam.lengths[0], [len(h) - 1 for h in ranked])
    expected = [_gnmt_score(h, alpha, beta) for h in ranked]
    np.testing.assert_allclose(beam.scores[0], expected, atol=1e-5)
    np.testing.assert_allclose(
        beam.log_probs[0], [math.log(_HYPOTHESES[h][0]) for h in ranked], atol=1e-5
    )


def test_the_penalties_must_be_the_reason_for_the_winner():
    """Sanity of the construction: without them the order is A, C, B by hand."""
    scores = {h: _gnmt_score(h, 0.0, 0.0) for h in _HYPOTHESES}
    assert sorted(scores, key=lambda h: -scores[h]) == [_A, _C, _B]
    assert _gnmt_score(_C, 1.0, 0.0) > _gnmt_score(_A, 1.0, 0.0)
    assert _gnmt_score(_B, 0.0, 1.0) > _gnmt_score(_A, 0.0, 1.0)


# --- A wider beam finds what greedy misses. -----------------------------------------------

# After BOS: 5 (0.6) or 6 (0.4); after 5 the mass is spread (EOS 0.34); after 6, EOS 0.95.
# Greedy takes 5 then EOS: P = 0.204. Two beams keep 6 and find 6, EOS: P = 0.38.
_GARDEN_TABLE = _table(
    {
        BOS_ID: {5: 0.6, 6: 0.4},
        5: {EOS_ID: 0.34, 7: 0.33, 4: 0.33},
        6: {EOS_ID: 0.95, 7: 0.05},
        7: {EOS_ID: 1.0},
        4: {EOS_ID: 1.0},
    }
)


def test_a_beam_of_two_finds_the_better_hypothesis_that_greedy_misses():
    step_fn, state = _step(_GARDEN_TABLE), {"attn": tf.zeros([1, 3])}
    greedy = search.greedy_search(step_fn, state, [4], **IDS)
    np.testing.assert_array_equal(greedy.ids[0, 0, :2], [5, EOS_ID])
    np.testing.assert_allclose(greedy.log_probs[0, 0], math.log(0.6 * 0.34), atol=1e-5)
    narrow = search.beam_search(step_fn, state, [4], 1, **IDS)
    np.testing.assert_array_equal(narrow.ids[0, 0, :2], [5, EOS_ID])
    wide = search.beam_search(step_fn, state, [4], 2, n_best=2, **IDS)
    np.testing.assert_array_equal(wide.ids[0, 0, :2], [6, EOS_ID])
    np.testing.assert_allclose(
        wide.scores[0], [math.log(0.4 * 0.95), math.log(0.6 * 0.34)], atol=1e-5
    )


# --- Sampling filters by empirical frequencies. --------------------------------------------

DRAWS = 4000
# Probabilities of the next token (pad has none); sorted: 4 .30, 2 .25, 5 .20, 3 .10, ...
_PROBS = np.array([0.0, 0.05, 0.25, 0.10, 0.30, 0.20, 0.06, 0.04])


def _filtered(temperature=1.0, top_k=0, top_p=1.0) -> np.ndarray:
    """The distribution a sampler should draw from, by hand: p^(1/T) renormalized, then
    the k most likely, then the smallest most-likely set whose mass reaches p."""
    with np.errstate(divide="ignore"):
        q = np.where(_PROBS > 0, _PROBS ** (1.0 / temperature), 0.0)
    q /= q.sum()
    order = np.argsort(-q, kind="stable")
    keep = np.zeros(VOCAB, bool)
    keep[order[: top_k if top_k > 0 else VOCAB]] = True
    q = np.where(keep, q, 0.0) / np.where(keep, q, 0.0).sum()
    mass_before = 0.0
    nucleus = np.zeros(VOCAB, bool)
    for token in np.argsort(-q, kind="stable"):
        if q[token] > 0 and (mass_before < top_p or not nucleus.any()):
            nucleus[token] = True
        mass_before += q[token]
    q = np.where(nucleus, q, 0.0)
    return q / q.sum()


@pytest.mark.parametrize(
    "settings, support",
    [
        ({"top_k": 3}, {4, 2, 5}),  # not 3 (0.10), the fourth
        ({"top_p": 0.5}, {4, 2}),  # 2 brings the mass from .30 to .55: it stays
        ({"top_p": 0.8}, {4, 2, 5, 3}),  # .75 before 3 < .8: 3 stays, 6 does not
        ({"top_k": 4, "top_p": 0.9}, {4, 2, 5, 3}),
        ({"temperature": 0.5, "top_p": 0.75}, {4, 2, 5}),  # p^2 renormalized: .43 .30 .19
    ],
)
def test_sampling_draws_from_the_filtered_distribution(settings, support):
    expected = _filtered(**settings)
    assert set(np.flatnonzero(expected)) == support  # the hand calculation, spelled out
    assert expected.max() < 0.7  # far from greedy: a filter that collapsed would show
    logits = tf.constant(np.log(np.maximum(_PROBS, 1e-13))[None], tf.float32)

    def step_fn(ids, state):
        return tf.repeat(logits, tf.shape(ids)[0], axis=0), state

    hyps = search.sample_search(
        step_fn, {"t": tf.zeros([DRAWS])}, tf.fill([DRAWS], 1), seed=13, **settings, **IDS
    )
    drawn = hyps.ids[:, 0, 0].numpy()
    counts = np.bincount(drawn, minlength=VOCAB)
    for token in range(VOCAB):
        q = expected[token]
        if q == 0:
            assert counts[token] == 0, f"token {token} was filtered out but drawn"
            continue
        # 4 standard errors of a binomial frequency: a miss has odds ~1 in 16,000 per token.
        tolerance = 4 * math.sqrt(q * (1 - q) / DRAWS)
        assert abs(counts[token] / DRAWS - q) < tolerance, (token, counts[token] / DRAWS, q)
    # Scores are the model's log-probabilities of the draws (no temperature, no filter).
    np.testing.assert_allclose(hyps.log_probs[:, 0], np.log(_PROBS[drawn]), atol=1e-5)
