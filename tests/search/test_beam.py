"""Greedy search with synthetic step functions whose answers are known by construction."""

import numpy as np
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.model import Seq2Seq
from seq2seq_tf.data.vocab import EOS_ID, PAD_ID

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
    hyps = search.greedy_search(step_fn, {"t": tf.constant(0)}, [10, 10])
    ids, lengths, scores = hyps.ids[:, 0], hyps.lengths[:, 0], hyps.scores[:, 0]
    np.testing.assert_array_equal(ids, [[5, 6, EOS_ID], [4, EOS_ID, PAD_ID]])
    np.testing.assert_array_equal(lengths, [2, 1])
    expected = np.log(np.exp(3.0) / (np.exp(3.0) + VOCAB - 1))
    np.testing.assert_allclose(scores, [3 * expected, 2 * expected], rtol=1e-5)


def test_respects_per_sentence_max_length():
    step_fn = scripted_step([[5] * 9, [6] * 9])
    hyps = search.greedy_search(step_fn, {"t": tf.constant(0)}, [3, 5])
    ids, lengths = hyps.ids[:, 0], hyps.lengths[:, 0]
    np.testing.assert_array_equal(lengths, [3, 5])
    np.testing.assert_array_equal(ids, [[5, 5, 5, PAD_ID, PAD_ID], [6, 6, 6, 6, 6]])


def test_max_target_lengths_formula():
    got = search.max_target_lengths(tf.constant([1, 4, 100]), ratio=1.5, offset=2, cap=50)
    np.testing.assert_array_equal(got, [4, 8, 50])


def test_greedy_is_padding_invariant_with_a_model():
    model = Seq2Seq(30, 8, 1, 8, 1, 16, 16, bridge="copy")
    alone = tf.constant([[5, 9, 7, 3]])
    batch = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3]])
    for search_fn in (search.greedy_search, lambda *a: search.beam_search(*a, 3, 0.6, 0.2, 3)):
        a = search_fn(model.step, model.initial_state(alone), [6])
        b = search_fn(model.step, model.initial_state(batch), [6, 6])
        np.testing.assert_array_equal(a.lengths[0], b.lengths[0])
        for k in range(a.ids.shape[1]):
            n = int(a.lengths[0, k])
            np.testing.assert_array_equal(a.ids[0, k, :n], b.ids[0, k, :n])
        np.testing.assert_allclose(a.scores[0], b.scores[0], atol=1e-4)


def _random_model(vocab=30, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return Seq2Seq(vocab, 8, 1, 8, 1, 16, 16, bridge="zeros")


SOURCES = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3], [6, 3, 0, 0, 0, 0]])


def test_beam_width_one_is_greedy():
    model = _random_model()
    state = model.initial_state(SOURCES)
    greedy = search.greedy_search(model.step, state, [7, 7, 7])
    beam = search.beam_search(model.step, state, [7, 7, 7], beam_size=1)
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
        logits, new_state = model.step(tf.constant([prefix[-1] if prefix else 2]), state)
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
        beam = search.beam_search(model.step, model.initial_state(source), [3], 40, alpha, n_best=5)
        np.testing.assert_allclose(beam.scores[0].numpy(), [s for s, _ in expected[:5]], atol=1e-5)
        best_seq = expected[0][1]
        np.testing.assert_array_equal(beam.ids[0, 0, : len(best_seq)], best_seq)
        scores = beam.scores[0].numpy()
        assert np.all(np.diff(scores) <= 1e-6)
        hyps = {tuple(beam.ids[0, k, : int(beam.lengths[0, k])].numpy()) for k in range(5)}
        assert len(hyps) == 5 or len({tuple(seq) for _, seq in expected[:5]}) < 5


def test_finished_hypotheses_never_grow():
    # Sentence 0 prefers EOS at once; it must stay a 0-piece hypothesis with that score.
    step_fn = scripted_step([[EOS_ID, 5, 5, 5], [5, 6, EOS_ID, 5]])
    beam = search.beam_search(
        step_fn_with_state(step_fn), {"t": tf.zeros([2], tf.int32)}, [4, 4], 2
    )
    assert int(beam.lengths[0, 0]) == 0 and int(beam.lengths[1, 0]) == 2
    np.testing.assert_array_equal(beam.ids[1, 0, :3], [5, 6, EOS_ID])


def step_fn_with_state(step_fn):
    """Adapts scripted_step to a per-row state (beam search tiles and gathers it)."""

    def adapted(ids, state):
        logits, _ = step_fn(ids, {"t": state["t"][0]})
        repeat = tf.shape(ids)[0] // tf.shape(logits)[0]
        return tf.repeat(logits, repeat, axis=0), {"t": state["t"] + 1}

    return adapted


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


def test_coverage_penalty_changes_ranking_only_through_attention():
    model = _random_model(seed=5)
    state = model.initial_state(SOURCES)
    plain = search.beam_search(model.step, state, [6, 6, 6], 3, 0.0, 0.0)
    covered = search.beam_search(model.step, state, [6, 6, 6], 3, 0.0, 0.5)
    assert np.all(covered.scores.numpy() <= plain.scores.numpy() + 1e-5)  # penalty <= 0


def test_low_temperature_sampling_is_greedy_and_seeds_reproduce():
    model = _random_model(seed=1)
    state = model.initial_state(SOURCES)
    greedy = search.greedy_search(model.step, state, [8, 8, 8])
    cold = search.sample_search(model.step, state, [8, 8, 8], temperature=1e-7, seed=3)
    np.testing.assert_array_equal(greedy.ids, cold.ids)
    np.testing.assert_allclose(greedy.log_probs, cold.log_probs, atol=1e-5)
    a = search.sample_search(model.step, state, [8, 8, 8], temperature=1.5, seed=11)
    again = search.sample_search(model.step, state, [8, 8, 8], temperature=1.5, seed=11)
    np.testing.assert_array_equal(a.ids, again.ids)
    others = [
        search.sample_search(model.step, state, [8, 8, 8], temperature=1.5, seed=s).ids.numpy()
        for s in (12, 13, 14)
    ]
    assert any(o.shape != a.ids.shape or np.any(o != a.ids.numpy()) for o in others)


def test_top_k_one_is_greedy_and_top_p_keeps_the_nucleus():
    model = _random_model(seed=2)
    state = model.initial_state(SOURCES)
    greedy = search.greedy_search(model.step, state, [8, 8, 8])
    top1 = search.sample_search(model.step, state, [8, 8, 8], top_k=1, seed=9)
    np.testing.assert_array_equal(greedy.ids, top1.ids)
    tiny_p = search.sample_search(model.step, state, [8, 8, 8], top_p=1e-6, seed=9)
    np.testing.assert_array_equal(greedy.ids, tiny_p.ids)


def test_searches_compile_with_xla_and_agree():
    model = _random_model(seed=4)
    budget = tf.constant([7, 7, 7])

    def run(source):
        state = model.initial_state(source)
        greedy = search.greedy_search(model.step, state, budget, True, max_steps=7)
        beam = search.beam_search(model.step, state, budget, 3, 0.6, 0.2, n_best=2, max_steps=7)
        sample = search.sample_search(model.step, state, budget, 0.7, 5, 0.9, seed=3, max_steps=7)
        return greedy, beam, sample

    plain = tf.function(run)(SOURCES)
    compiled_fn = tf.function(run, jit_compile=True)
    compiled = compiled_fn(SOURCES)
    # XLA draws other random numbers than the plain kernels; a seed still reproduces.
    np.testing.assert_array_equal(compiled[2].ids, compiled_fn(SOURCES)[2].ids)
    for a, b in zip(plain[:2], compiled[:2]):
        assert a.ids.shape[-1] == 7 and b.ids.shape[-1] == 7  # static, padded
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.lengths, b.lengths)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_allclose(plain[0].alignments, compiled[0].alignments, atol=1e-5)
    # Padding to a static length changes nothing but the shape.
    dynamic = search.greedy_search(model.step, model.initial_state(SOURCES), budget)
    steps = dynamic.ids.shape[-1]
    np.testing.assert_array_equal(plain[0].ids[..., :steps], dynamic.ids)
    assert np.all(plain[0].ids.numpy()[..., steps:] == PAD_ID)


def test_beam_invariant_state_is_not_reordered_and_results_are_unchanged():
    model = _random_model(seed=4)
    state = model.initial_state(SOURCES)
    invariant = model.decoder.BEAM_INVARIANT
    for key in invariant:  # what the decoder calls invariant really is the same every step
        _, after = model.step(tf.constant([2, 2, 2]), state)
        np.testing.assert_array_equal(after[key], state[key])
    plain = search.beam_search(model.step, state, [7, 7, 7], 4, 0.6, 0.3, n_best=2)
    fast = search.beam_search(
        model.step, state, [7, 7, 7], 4, 0.6, 0.3, n_best=2, beam_invariant=invariant
    )
    np.testing.assert_array_equal(plain.ids, fast.ids)
    np.testing.assert_allclose(plain.scores, fast.scores, rtol=1e-6)
