"""Greedy search and sampling with synthetic step functions whose answers are known by
construction, and with a small random model."""

import numpy as np
import tensorflow as tf
from support import history_step, make_seq2seq, random_table, scripted_step, table_step

from seq2seq_tf import search
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID

VOCAB = 8
IDS = {"start_id": BOS_ID, "end_id": EOS_ID, "pad_id": PAD_ID}


def test_stops_at_eos_and_pads_after():
    step_fn = scripted_step(VOCAB, [[5, 6, EOS_ID, 7, 7], [4, EOS_ID, 7, 7, 7]])
    hyps = search.greedy_search(step_fn, {"t": tf.constant(0)}, [10, 10], **IDS)
    ids, lengths, scores = hyps.ids[:, 0], hyps.lengths[:, 0], hyps.scores[:, 0]
    np.testing.assert_array_equal(ids, [[5, 6, EOS_ID], [4, EOS_ID, PAD_ID]])
    np.testing.assert_array_equal(lengths, [2, 1])
    expected = np.log(np.exp(3.0) / (np.exp(3.0) + VOCAB - 1))
    np.testing.assert_allclose(scores, [3 * expected, 2 * expected], rtol=1e-5)


def test_respects_per_sentence_max_length():
    step_fn = scripted_step(VOCAB, [[5] * 9, [6] * 9])
    hyps = search.greedy_search(step_fn, {"t": tf.constant(0)}, [3, 5], **IDS)
    ids, lengths = hyps.ids[:, 0], hyps.lengths[:, 0]
    np.testing.assert_array_equal(lengths, [3, 5])
    np.testing.assert_array_equal(ids, [[5, 5, 5, PAD_ID, PAD_ID], [6, 6, 6, 6, 6]])


# --- Prompts: forced first tokens. ------------------------------------------------------


def forced_by_hand(table, prompt_row, budget):
    """Feeds BOS and the prompt, then the argmax, one step at a time in numpy:
    (ids, length, score) with only the chosen tokens scored."""
    log_probs = table - np.log(np.exp(table).sum(-1, keepdims=True))
    ids, score, previous, ended = [], 0.0, BOS_ID, False
    for token in prompt_row:
        if token == PAD_ID:
            break
        ids.append(int(token))
        previous = int(token)
    for _ in range(budget):
        row = log_probs[min(len(ids), len(table) - 1), previous]
        previous = int(np.argmax(row))
        score += float(row[previous])
        ids.append(previous)
        if previous == EOS_ID:
            ended = True
            break
    return ids, len(ids) - int(ended), score


PROMPT = [[5, 6, 7], [4, 0, 0], [0, 0, 0], [7, 7, 0]]  # right-padded, one empty
BUDGET = [4, 5, 3, 6]


def test_greedy_with_a_prompt_equals_forcing_the_prompt_by_hand():
    table = random_table(
        VOCAB,
    )
    state = {"t": tf.zeros([4], tf.int32)}
    hyps = search.greedy_search(table_step(table), state, BUDGET, prompt=tf.constant(PROMPT), **IDS)
    plain = search.greedy_search(table_step(table), state, BUDGET, **IDS)
    expected = [forced_by_hand(table, p, n) for p, n in zip(PROMPT, BUDGET)]
    ends = set()
    for b, (ids, length, score) in enumerate(expected):
        got = hyps.ids[b, 0].numpy()
        np.testing.assert_array_equal(got[: len(ids)], ids, err_msg=f"row {b}")
        assert np.all(got[len(ids) :] == PAD_ID)
        assert int(hyps.lengths[b, 0]) == length  # the prompt's tokens counted
        np.testing.assert_allclose(hyps.scores[b, 0], score, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(hyps.log_probs[b, 0], score, rtol=1e-5, atol=1e-5)
        prompted = sum(t != PAD_ID for t in PROMPT[b])
        assert len(ids) - prompted <= BUDGET[b]  # the budget counts after the prompt
        ends.add(ids[-1] == EOS_ID)
        if prompted:  # the prompt really was forced: greedy alone starts elsewhere
            assert not np.array_equal(plain.ids[b, 0, :prompted], PROMPT[b][:prompted])
    assert ends == {True, False}  # some rows end with EOS, some are cut by the budget
    # The row without a prompt is what greedy search gives without one.
    n = int(plain.lengths[2, 0])
    np.testing.assert_array_equal(hyps.ids[2, 0, : n + 1], plain.ids[2, 0, : n + 1])


def test_prompt_with_static_steps_matches_the_dynamic_run():
    table = random_table(VOCAB, seed=1)
    state = {"t": tf.zeros([4], tf.int32)}
    prompt = tf.constant(PROMPT)
    dynamic = search.greedy_search(table_step(table), state, BUDGET, prompt=prompt, **IDS)
    padded = search.greedy_search(
        table_step(table), state, BUDGET, prompt=prompt, max_steps=9, **IDS
    )
    steps = dynamic.ids.shape[-1]
    assert padded.ids.shape[-1] == 9
    np.testing.assert_array_equal(padded.ids[..., :steps], dynamic.ids)
    assert np.all(padded.ids.numpy()[..., steps:] == PAD_ID)
    np.testing.assert_array_equal(padded.lengths, dynamic.lengths)
    np.testing.assert_allclose(padded.scores, dynamic.scores, rtol=1e-6)


# --- The state is the model's business: any nest works. ---------------------------------


def _history_states(batch):
    t = tf.zeros([batch], tf.int32)
    seen = tf.constant(np.random.default_rng(9).uniform(0, 2, (batch, VOCAB)), tf.float32)
    return (t, (seen,)), {"t": t, "seen": seen}


def test_greedy_and_sampling_take_a_plain_tuple_state():
    table = random_table(VOCAB, seed=2)
    as_tuple, as_dict = _history_states(4)
    tuple_step, dict_step = history_step(VOCAB, table, True), history_step(VOCAB, table, False)
    for run in (
        lambda step, state: search.greedy_search(step, state, BUDGET, **IDS),
        lambda step, state: search.sample_search(step, state, BUDGET, 1.3, 4, 0.95, 5, **IDS),
        lambda step, state: search.greedy_search(step, state, BUDGET, prompt=PROMPT, **IDS),
    ):
        got, expected = run(tuple_step, as_tuple), run(dict_step, as_dict)
        np.testing.assert_array_equal(got.ids, expected.ids)
        np.testing.assert_array_equal(got.lengths, expected.lengths)
        np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-6)
    # The history matters: without it the answers differ.
    greedy = search.greedy_search(tuple_step, as_tuple, BUDGET, **IDS)
    forgetful = search.greedy_search(table_step(table), {"t": as_tuple[0]}, BUDGET, **IDS)
    assert np.any(np.abs(greedy.scores.numpy() - forgetful.scores.numpy()) > 1e-3)


# --- A small random model. ---------------------------------------------------------------


def _random_model(vocab=30, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return make_seq2seq(
        vocab,
        embedding_dim=8,
        encoder_layers=1,
        encoder_units=8,
        decoder_layers=1,
        decoder_units=16,
        attention_units=16,
        bridge="zeros",
    )


SOURCES = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3], [6, 3, 0, 0, 0, 0]])


def test_greedy_is_padding_invariant_with_a_model():
    model = make_seq2seq(
        30,
        embedding_dim=8,
        encoder_layers=1,
        encoder_units=8,
        decoder_layers=1,
        decoder_units=16,
        attention_units=16,
        bridge="copy",
    )
    alone = tf.constant([[5, 9, 7, 3]])
    batch = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3]])
    a = search.greedy_search(model.step, model.initial_state(alone), [6], **IDS)
    b = search.greedy_search(model.step, model.initial_state(batch), [6, 6], **IDS)
    np.testing.assert_array_equal(a.lengths[0], b.lengths[0])
    for k in range(a.ids.shape[1]):
        n = int(a.lengths[0, k])
        np.testing.assert_array_equal(a.ids[0, k, :n], b.ids[0, k, :n])
    np.testing.assert_allclose(a.scores[0], b.scores[0], atol=1e-4)


def test_low_temperature_sampling_is_greedy_and_seeds_reproduce():
    model = _random_model(seed=1)
    state = model.initial_state(SOURCES)
    greedy = search.greedy_search(model.step, state, [8, 8, 8], **IDS)
    cold = search.sample_search(model.step, state, [8, 8, 8], temperature=1e-7, seed=3, **IDS)
    np.testing.assert_array_equal(greedy.ids, cold.ids)
    np.testing.assert_allclose(greedy.log_probs, cold.log_probs, atol=1e-5)
    a = search.sample_search(model.step, state, [8, 8, 8], temperature=1.5, seed=11, **IDS)
    again = search.sample_search(model.step, state, [8, 8, 8], temperature=1.5, seed=11, **IDS)
    np.testing.assert_array_equal(a.ids, again.ids)
    others = [
        search.sample_search(
            model.step, state, [8, 8, 8], temperature=1.5, seed=s, **IDS
        ).ids.numpy()
        for s in (12, 13, 14)
    ]
    assert any(o.shape != a.ids.shape or np.any(o != a.ids.numpy()) for o in others)


def test_top_k_one_is_greedy_and_top_p_keeps_the_nucleus():
    model = _random_model(seed=2)
    state = model.initial_state(SOURCES)
    greedy = search.greedy_search(model.step, state, [8, 8, 8], **IDS)
    top1 = search.sample_search(model.step, state, [8, 8, 8], top_k=1, seed=9, **IDS)
    np.testing.assert_array_equal(greedy.ids, top1.ids)
    tiny_p = search.sample_search(model.step, state, [8, 8, 8], top_p=1e-6, seed=9, **IDS)
    np.testing.assert_array_equal(greedy.ids, tiny_p.ids)


def test_greedy_alignments_come_from_alignment_fn():
    model = _random_model(seed=6)
    state = model.initial_state(SOURCES)
    hyps = search.greedy_search(model.step, state, [7, 7, 7], alignment_fn=model.alignment, **IDS)
    assert search.greedy_search(model.step, state, [7, 7, 7], **IDS).alignments is None
    steps = hyps.ids.shape[-1]
    assert hyps.alignments.shape == (3, 1, steps, SOURCES.shape[1])
    # By hand: feed the greedy ids and read the attention after each step.
    ids, by_hand = tf.fill([3], BOS_ID), []
    for t in range(steps):
        _, state = model.step(ids, state)
        by_hand.append(model.alignment(state).numpy())
        ids = hyps.ids[:, 0, t]
    by_hand = np.stack(by_hand, axis=1)  # batch x steps x src_len
    for b in range(3):
        n = int(hyps.lengths[b, 0]) + 1  # the step that produced EOS attends too
        n = min(n, steps)
        np.testing.assert_allclose(hyps.alignments[b, 0, :n], by_hand[b, :n], atol=1e-5)
        assert np.all(hyps.alignments.numpy()[b, 0, n:] == 0.0)  # finished rows: zeros
        np.testing.assert_allclose(hyps.alignments[b, 0, :n].numpy().sum(-1), 1.0, atol=1e-5)


def test_greedy_and_sampling_compile_with_xla_and_agree():
    model = _random_model(seed=4)
    budget = tf.constant([7, 7, 7])

    def run(source):
        state = model.initial_state(source)
        greedy = search.greedy_search(
            model.step, state, budget, alignment_fn=model.alignment, max_steps=7, **IDS
        )
        sample = search.sample_search(
            model.step, state, budget, 0.7, 5, 0.9, seed=3, max_steps=7, **IDS
        )
        return greedy, sample

    plain = tf.function(run)(SOURCES)
    compiled_fn = tf.function(run, jit_compile=True)
    compiled = compiled_fn(SOURCES)
    # XLA draws other random numbers than the plain kernels; a seed still reproduces.
    np.testing.assert_array_equal(compiled[1].ids, compiled_fn(SOURCES)[1].ids)
    a, b = plain[0], compiled[0]
    assert a.ids.shape[-1] == 7 and b.ids.shape[-1] == 7  # static, padded
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_allclose(plain[0].alignments, compiled[0].alignments, atol=1e-5)
    # Padding to a static length changes nothing but the shape.
    dynamic = search.greedy_search(model.step, model.initial_state(SOURCES), budget, **IDS)
    steps = dynamic.ids.shape[-1]
    np.testing.assert_array_equal(plain[0].ids[..., :steps], dynamic.ids)
    assert np.all(plain[0].ids.numpy()[..., steps:] == PAD_ID)
