"""The XLA export: requests padded to buckets, the fixed-size shortlist, and the compiled
search giving the translations the plain export gives."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.data.shortlist import LexicalShortlist
from seq2seq_tf.data.vocab import EOS_ID, PAD_ID
from seq2seq_tf.serving import export
from seq2seq_tf.serving.search_columns import SearchColumns, SearchSpeedupError, SearchSpeedups
from seq2seq_tf.serving.translator import SearchDefaults
from seq2seq_tf.serving.xla_search import XlaBuckets, XlaSearchError, pad_request

# Five lengths, so rows pad 5 -> 8 and the sources to a bucket.
SENTENCES = [
    "the dog laughs .",
    "some old women visit the teacher with a blue car .",
    "a man .",
    "the teacher sees some women near the river with a red ball and a dog .",
    "",
]


def test_pad_request_pads_rows_to_a_power_of_two_and_length_to_a_bucket():
    source = tf.constant([[7, 8, EOS_ID], [9, EOS_ID, PAD_ID], [5, 6, EOS_ID]])
    padded = pad_request(source, (2, 5, 9)).numpy()
    assert padded.shape == (4, 5)
    np.testing.assert_array_equal(padded[:3, :3], source.numpy())
    assert (padded[:3, 3:] == PAD_ID).all()
    np.testing.assert_array_equal(padded[3], [EOS_ID] + [PAD_ID] * 4)  # an empty sentence
    assert pad_request(source[:1, :2], (2, 5)).numpy().shape == (1, 2)  # already a bucket


def test_bucket_settings_are_checked_and_cut_at_the_longest_source():
    assert XlaBuckets(source_lengths=(16, 32, 64)).up_to(40).source_lengths == (16, 32, 40)
    for bad in ((), (1, 8), (16, 8), (8, 8)):
        with pytest.raises(XlaSearchError, match="--xla_source_buckets"):
            XlaBuckets(source_lengths=bad)
    with pytest.raises(XlaSearchError, match="--xla_shortlist_size"):
        XlaBuckets(shortlist_size=1)


@pytest.fixture(scope="module")
def plain(trained_workdir):
    return export.serving_module(trained_workdir)[0]


def _shortlist_columns(plain, **kwargs) -> tuple[SearchColumns, LexicalShortlist, np.ndarray]:
    vocab_size = plain.model.vocab_size
    rng = np.random.default_rng(0)
    candidates = rng.integers(4, vocab_size, size=(vocab_size, 3)).astype(np.int32)
    table = LexicalShortlist(candidates, np.array([4, 5], np.int32))
    columns = SearchColumns(plain.model.decoder, shortlist=table, **kwargs)
    source = plain.encode_sources(tf.constant(SENTENCES[:2]))
    return columns, table, source


def test_a_fixed_size_shortlist_holds_the_union_and_then_fillers(plain):
    columns, table, source = _shortlist_columns(plain)
    union = columns.columns(source, True).numpy()
    fixed = columns.columns(source, True, size=len(union) + 4).numpy()
    assert len(fixed) == len(union) + 4 and list(fixed) == sorted(set(fixed))
    assert set(union) <= set(fixed)
    scored = columns.columns(source, False).numpy()
    fillers = [i for i in scored if i not in set(union)][:4]  # the lowest ids not in it
    assert sorted(set(fixed) - set(union)) == fillers
    # At least as many columns as are scored: all of them.
    np.testing.assert_array_equal(columns.columns(source, True, size=10**6).numpy(), scored)


def test_a_fixed_size_shortlist_smaller_than_the_union_keeps_the_best_ranked(plain):
    columns, table, source = _shortlist_columns(plain)
    real = source.numpy()[source.numpy() != PAD_ID]
    first_choices = set(table.candidates[real, 0])
    size = len(first_choices | {4, 5, EOS_ID})
    fixed = set(columns.columns(source, True, size=size).numpy())
    # EOS, the frequent pieces and every source piece's first candidate.
    assert fixed == first_choices | {4, 5, EOS_ID}


@pytest.fixture(scope="module")
def exports(trained_workdir):
    """(plain, XLA) serving modules with the same target vocabulary, beam 3."""
    defaults = SearchDefaults(beam_width=3)
    speedups = SearchSpeedups(target_vocab=True)
    xla = SearchSpeedups(target_vocab=True, xla=XlaBuckets(source_lengths=(4, 8)))
    return tuple(
        export.serving_module(trained_workdir, defaults=defaults, speedups=s)[0]
        for s in (speedups, xla)
    )


@pytest.mark.parametrize("beam", [1, 3])
def test_the_compiled_search_translates_as_the_plain_one(exports, beam):
    plain, compiled = exports
    args = {"inputs": tf.constant(SENTENCES), "n": tf.constant(2), "beam_width": tf.constant(beam)}
    want = plain.translate_nbest(**args)
    got = compiled.translate_nbest(**args)
    np.testing.assert_array_equal(got["translations"].numpy(), want["translations"].numpy())
    np.testing.assert_allclose(got["scores"].numpy(), want["scores"].numpy(), atol=1e-4)
    assert got["translations"].shape == (len(SENTENCES), 2)  # the beam is max(n, beam_width)


def test_the_compiled_search_is_in_the_saved_model(exports, tmp_path):
    _, compiled = exports
    path = str(tmp_path / "xla")
    tf.saved_model.save(compiled, path, signatures=compiled.signature_functions())
    loaded = tf.saved_model.load(path)
    got = loaded.signatures["serving_default"](inputs=tf.constant(SENTENCES))
    want = compiled.translate(tf.constant(SENTENCES))
    np.testing.assert_array_equal(got["translations"].numpy(), want["translations"].numpy())
    graph = loaded.signatures["serving_default"].graph.as_graph_def()
    must_compile = [f.signature.name for f in graph.library.function if f.attr["_XlaMustCompile"].b]
    assert must_compile, "no function in the export is marked for XLA"


def test_xla_on_a_language_model_is_a_clear_error(lm_workdir):
    with pytest.raises(SearchSpeedupError, match="--xla_search"):
        export.serving_module(lm_workdir, speedups=SearchSpeedups(xla=XlaBuckets()))
