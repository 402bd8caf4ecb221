"""The Translator module: its signatures, and what the graph does in process."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.config import default_config
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq_tf.serving import export
from seq2seq_tf.serving.translator import SIGNATURES, Translator, VocabularyMismatchError

IDS = {"start_id": BOS_ID, "end_id": EOS_ID, "pad_id": PAD_ID}
SENTENCES = ["the dog laughs .", "", "some old women visit the teacher with a blue car ."]


@pytest.fixture(scope="module")
def translator(trained_workdir):
    return export.serving_module(trained_workdir)[0]


def _calls(sentences):
    targets = ["der hund lacht .", "", "einige alte frauen"][: len(sentences)]
    return {
        "serving_default": {"inputs": sentences},
        "translate_nbest": {"inputs": sentences, "n": 3, "beam_width": 4},
        "sample": {"inputs": sentences, "temperature": 0.8, "top_k": 5, "top_p": 0.9, "seed": 4},
        "score": {"sources": sentences, "targets": targets},
        "align": {"inputs": sentences},
    }


def test_signature_functions_are_the_methods_of_the_signatures_table(translator):
    functions = translator.signature_functions()
    assert set(functions) == set(SIGNATURES) == set(_calls(SENTENCES))
    for name, method in SIGNATURES.items():
        assert functions[name] is getattr(translator, method)
    concrete = {name: f.get_concrete_function() for name, f in functions.items()}
    assert set(concrete) == set(SIGNATURES)
    for name, kwargs in _calls(SENTENCES).items():
        args, _ = concrete[name].structured_input_signature
        assert [spec.name for spec in args] == list(kwargs), name


def test_every_signature_answers_per_sentence_and_blanks_empty_sources(translator):
    functions = translator.signature_functions()
    outputs = {
        name: functions[name](**{k: tf.constant(v) for k, v in kwargs.items()})
        for name, kwargs in _calls(SENTENCES).items()
    }
    for name, out in outputs.items():
        for key, value in out.items():
            assert value.shape[0] == len(SENTENCES), (name, key)
    assert outputs["translate_nbest"]["translations"].shape == (3, 3)
    nbest = outputs["translate_nbest"]["scores"].numpy()
    assert np.all(np.diff(nbest[[0, 2]], axis=1) <= 1e-6)  # best first
    for name in ("serving_default", "translate_nbest", "sample"):
        assert np.all(outputs[name]["translations"].numpy()[1] == b""), name
        assert np.all(outputs[name]["scores"].numpy()[1] == 0.0), name
    assert outputs["serving_default"]["translations"].numpy()[0] != b""
    # align: target pieces and weights stop where the translation does.
    align = outputs["align"]
    pieces = align["target_pieces"].numpy()
    weights = align["alignments"].numpy()
    for row in range(len(SENTENCES)):
        n = int(np.sum(pieces[row] != b""))
        assert np.all(weights[row, n:] == 0.0)
        src = int(np.sum(align["source_pieces"].numpy()[row] != b""))
        np.testing.assert_allclose(weights[row, :n, :src].sum(-1), 1.0, atol=1e-4)


def test_overlong_sources_are_cut_to_max_source_pieces(translator):
    limit = translator._max_source_pieces
    ids = translator.encode_sources(tf.constant(["the dog laughs . " * 200, "the dog"])).numpy()
    assert ids.shape[1] == limit
    assert ids[0, -1] == EOS_ID and EOS_ID not in ids[0, :-1]
    n = int(np.sum(ids[1] != PAD_ID))
    assert ids[1, n - 1] == EOS_ID and n < limit


def test_a_mismatched_vocabulary_is_refused(translator, toy_data, tmp_path):
    from seq2seq_tf.data import vocab

    other = vocab.train_sentencepiece(
        [toy_data["train_src"], toy_data["train_tgt"]], str(tmp_path / "small"), 200, "bpe"
    )
    decode = default_config().decode
    match = r"small\.model has 200 pieces but the model was built for \d+"
    with pytest.raises(VocabularyMismatchError, match=match):
        Translator(translator.model, other, decode, 48)


def test_beam_is_greedy_at_width_one_and_never_scores_below_greedy(translator, toy_data):
    sources = open(toy_data["test_src"], encoding="utf-8").read().splitlines()
    inputs = tf.constant(sources)
    _, budget, state = translator._start(inputs)
    greedy = search.greedy_search(translator.model.step, state, budget, **IDS)
    one = search.beam_search(translator.model.step, state, budget, 1, **IDS)
    np.testing.assert_allclose(one.log_probs, greedy.log_probs, atol=1e-5)
    beam = search.beam_search(translator.model.step, state, budget, 5, **IDS)
    worse = np.sum(beam.log_probs.numpy() < greedy.log_probs.numpy() - 1e-4)
    assert worse == 0, f"beam scored below greedy on {worse} of {len(sources)} sentences"


def test_score_of_greedy_output_equals_greedy_score(translator, toy_data):
    sources = open(toy_data["test_src"], encoding="utf-8").read().splitlines()[:50]
    inputs = tf.constant(sources)
    _, budget, state = translator._start(inputs)
    greedy = search.greedy_search(translator.model.step, state, budget, **IDS)
    texts = translator.decode_ids(greedy.ids, greedy.lengths)[:, 0]
    scored = translator.score(inputs, texts)["scores"].numpy()
    retokenized = translator.tokenizer.tokenize(texts).to_list()
    same = [
        i
        for i, pieces in enumerate(retokenized)
        if pieces == greedy.ids[i, 0, : int(greedy.lengths[i, 0])].numpy().tolist()
        and int(greedy.lengths[i, 0]) < int(budget[i])  # ended with EOS, not cut
    ]
    assert len(same) >= 25  # re-tokenizing the detokenized text usually gives the same pieces
    np.testing.assert_allclose(scored[same], greedy.log_probs.numpy()[same, 0], atol=1e-4)


def test_score_cuts_targets_to_decode_max_length_and_outputs_stay_within_it(translator):
    cap = translator._cap
    functions = translator.signature_functions()
    long_target = "der hund lacht . " * 100
    pieces = translator.tokenizer.tokenize(tf.constant([long_target]))[0]
    assert int(tf.size(pieces)) > cap
    cut = translator.tokenizer.detokenize(pieces[None, : cap - 1])[0].numpy()
    sources = tf.constant(["the dog laughs ."])
    long_score = functions["score"](sources=sources, targets=tf.constant([long_target]))
    cut_score = functions["score"](sources=sources, targets=tf.constant([cut]))
    np.testing.assert_allclose(long_score["scores"], cut_score["scores"], rtol=1e-5)
    aligned = functions["align"](inputs=tf.constant(["the dog laughs . " * 200]))
    assert aligned["target_pieces"].shape[1] <= cap
