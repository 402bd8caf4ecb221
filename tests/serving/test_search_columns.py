"""Export-time search speed-ups: scored columns, the lexical shortlist, the input table.

Each is checked against the plain search with the model's own step: the same
search over all columns, and over fewer columns the same as masking the other
logits to -inf (which is what scoring fewer columns means).
"""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.data.shortlist import LexicalShortlist
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq_tf.serving import export
from seq2seq_tf.serving.search_columns import (
    SearchColumns,
    SearchSpeedupError,
    SearchSpeedups,
)
from seq2seq_tf.serving.translator import SHORTLIST_SIGNATURES, SIGNATURES, SearchDefaults

SENTENCES = ["the dog laughs .", "some old women visit the teacher with a blue car ."]
IDS = {"start_id": BOS_ID, "end_id": EOS_ID, "pad_id": PAD_ID}


@pytest.fixture(scope="module")
def plain(trained_workdir):
    return export.serving_module(trained_workdir)[0]


def _search(translator, step, ids, beam=3):
    source, budget, state = translator._start(tf.constant(SENTENCES))
    return search.beam_search(
        step, state, budget, beam, 0.6, n_best=2, beam_invariant=translator.model.beam_invariant,
        **ids,
    )  # fmt: skip


def _masked_step(model, allowed: np.ndarray):
    def step(ids, state):
        logits, state = model.step(ids, state)
        return tf.where(allowed, logits, -1e9), state

    return step


def _through_columns(translator, columns_module, use_shortlist, beam=3):
    source = translator.encode_sources(tf.constant(SENTENCES))
    columns = columns_module.columns(source, use_shortlist)
    hyps = _search(
        translator, columns_module.step_fn(columns), columns_module.search_ids(columns), beam
    )
    return columns.numpy(), hyps._replace(ids=columns_module.to_ids(columns, hyps.ids))


def _same(a, b, atol=1e-5):
    np.testing.assert_array_equal(a.lengths.numpy(), b.lengths.numpy())
    for row, n in np.ndenumerate(a.lengths.numpy()):
        np.testing.assert_array_equal(a.ids.numpy()[row][:n], b.ids.numpy()[row][:n])
    np.testing.assert_allclose(a.scores.numpy(), b.scores.numpy(), atol=atol)


def test_all_columns_with_the_input_table_search_as_the_model_does(plain):
    model = plain.model
    columns = SearchColumns(model.decoder, input_table=True)
    got_columns, got = _through_columns(plain, columns, False)
    allowed = np.ones(model.vocab_size, bool)
    allowed[[PAD_ID, BOS_ID]] = False
    np.testing.assert_array_equal(got_columns, np.flatnonzero(allowed))
    _same(got, _search(plain, _masked_step(model, allowed), IDS))
    # The table is the embedding times the first layer's input kernel, plus its bias.
    table = columns.input_table.numpy()
    ids = tf.constant([3, 7, BOS_ID])
    np.testing.assert_allclose(table[[3, 7, BOS_ID]], model.decoder._embed(ids, False), atol=1e-6)


def test_fewer_scored_columns_equal_masking_the_other_logits(plain):
    model = plain.model
    scored = tuple(range(3, model.vocab_size, 2))  # every other id, EOS among them
    columns = SearchColumns(model.decoder, scored_ids=scored)
    got_columns, got = _through_columns(plain, columns, False)
    assert list(got_columns) == list(scored)
    allowed = np.zeros(model.vocab_size, bool)
    allowed[list(scored)] = True
    _same(got, _search(plain, _masked_step(model, allowed), IDS))


def _table(vocab_size: int, seed: int = 0) -> LexicalShortlist:
    rng = np.random.default_rng(seed)
    candidates = rng.integers(4, vocab_size, size=(vocab_size, 3)).astype(np.int32)
    return LexicalShortlist(candidates, np.array([4, 5], np.int32))


def test_the_shortlist_union_by_hand_and_its_search_equals_masking_to_it(plain):
    model = plain.model
    table = _table(model.vocab_size)
    scored = tuple(range(3, model.vocab_size))
    columns = SearchColumns(model.decoder, scored_ids=scored, shortlist=table)
    source = plain.encode_sources(tf.constant(SENTENCES)).numpy()
    union = set(table.candidates[source[source != PAD_ID]].reshape(-1)) | {4, 5, EOS_ID}
    got_columns, got = _through_columns(plain, columns, True)
    assert list(got_columns) == sorted(union)
    allowed = np.zeros(model.vocab_size, bool)
    allowed[sorted(union)] = True
    _same(got, _search(plain, _masked_step(model, allowed), IDS))
    # Off for the request: every scored column.
    off_columns, _ = _through_columns(plain, columns, False, beam=1)
    assert list(off_columns) == list(scored)


def test_a_shortlist_export_has_translate_options_and_its_switch_works(trained_workdir, tmp_path):
    speedups = SearchSpeedups(target_vocab=True, shortlist_k=3, shortlist_frequent=5)
    defaults = SearchDefaults(beam_width=3, use_shortlist=True)
    path = export.export(trained_workdir, str(tmp_path), defaults=defaults, speedups=speedups)
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == set(SIGNATURES) | set(SHORTLIST_SIGNATURES)
    candidates = loaded.columns.shortlist_candidates.numpy()
    assert candidates.shape[1] == 3
    args = {"inputs": tf.constant(SENTENCES), "n": tf.constant(1), "beam_width": tf.constant(3)}
    options = loaded.signatures["translate_options"]
    on = options(**args, shortlist=tf.constant(True))
    off = options(**args, shortlist=tf.constant(False))
    default = loaded.signatures["translate_nbest"](**args)  # exported with the shortlist on
    np.testing.assert_array_equal(on["translations"].numpy(), default["translations"].numpy())
    np.testing.assert_allclose(on["scores"].numpy(), default["scores"].numpy(), atol=1e-5)
    # Off: the target vocabulary's search, as an export without a shortlist does it.
    target_only = export.serving_module(
        trained_workdir, defaults=SearchDefaults(beam_width=3),
        speedups=SearchSpeedups(target_vocab=True),
    )[0]  # fmt: skip
    expected = target_only.translate_nbest(**args)
    np.testing.assert_array_equal(off["translations"].numpy(), expected["translations"].numpy())
    np.testing.assert_allclose(off["scores"].numpy(), expected["scores"].numpy(), atol=1e-5)


def test_speedups_that_cannot_apply_are_clear_errors(trained_workdir, lm_workdir, tmp_path):
    with pytest.raises(SearchSpeedupError, match="--shortlist_k must be an integer >= 0"):
        SearchSpeedups(shortlist_k=-1)
    with pytest.raises(SearchSpeedupError, match="apply to translation exports, not to"):
        export.serving_module(lm_workdir, speedups=SearchSpeedups(input_table=True))
    for speedups in (None, SearchSpeedups(target_vocab=True)):
        with pytest.raises(SearchSpeedupError, match="--shortlist_default needs a shortlist"):
            export.serving_module(
                trained_workdir, defaults=SearchDefaults(use_shortlist=True), speedups=speedups
            )
    # A workdir whose training corpus is not on this machine.
    moved = tmp_path / "moved"
    shutil.copytree(trained_workdir, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["train_tgt"] = str(tmp_path / "gone.de")
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(SearchSpeedupError, match="gone.de .* is not here: --target_vocab"):
        export.serving_module(str(moved), speedups=SearchSpeedups(shortlist_k=5))
