"""The lexical shortlist: IBM Model 1 on id pairs, its table, and its coverage."""

import numpy as np
import pytest

from seq2seq_tf.data import shortlist
from seq2seq_tf.data.vocab import EOS_ID

# Source words 10..14 translate to 20..24; every target also holds the filler 30 twice,
# so co-occurrence with any source word is highest for the filler.
FILLER = 30


def _corpus(seed: int = 0, pairs: int = 200):
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(pairs):
        words = rng.choice(5, size=rng.integers(1, 4), replace=False)
        sources.append(list(10 + words))
        target = list(20 + words) + [FILLER, FILLER]
        rng.shuffle(target)
        targets.append(target)
    return sources, targets


def test_model1_ranks_each_source_words_translation_first_where_cooccurrence_ranks_the_filler():
    sources, targets = _corpus()
    table = shortlist.build_shortlist(sources, targets, vocab_size=40, k=2, frequent=1)
    for word in range(5):
        assert table.candidates[10 + word, 0] == 20 + word
        together = {}  # plain co-occurrence counts of source word 10 + word
        for source, target in zip(sources, targets):
            if 10 + word in source:
                for piece in target:
                    together[piece] = together.get(piece, 0) + 1
        assert max(together, key=together.get) == FILLER
    assert list(table.frequent) == [FILLER]


def test_model1_probabilities_are_distributions_over_target_types():
    sources, targets = _corpus(1, 50)
    t, src_types, tgt_types = shortlist.model1_probabilities(sources, targets, iterations=3)
    assert t.shape == (len(src_types) + 1, len(tgt_types))  # + NULL
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=1e-5)
    assert list(src_types) == [10, 11, 12, 13, 14]


def test_unseen_source_ids_and_short_rows_are_filled_with_eos():
    table = shortlist.build_shortlist([[5], [6]], [[7], [8]], vocab_size=12, k=4, frequent=10)
    assert table.candidates.shape == (12, 4)
    assert list(table.candidates[5]) == [7, 8, EOS_ID, EOS_ID]  # only two target types
    assert np.all(table.candidates[0] == EOS_ID) and np.all(table.candidates[11] == EOS_ID)
    assert sorted(table.frequent) == [7, 8]  # no more than occur


def test_coverage_and_union_size_by_hand():
    candidates = np.full((10, 2), EOS_ID, np.int32)
    candidates[4] = [5, 6]
    candidates[7] = [8, 5]
    table = shortlist.LexicalShortlist(candidates, np.array([9], np.int32))
    # batch 1: source [4, 7] -> {5, 6, 8} + {9} + EOS = 5 ids; reference [5, 9, 7]: 2 of 3
    # batch 2: source [4] -> {5, 6, 9, EOS} = 4 ids; reference [6, 8]: 1 of 2
    size, covered = shortlist.shortlist_coverage(
        table, [[4, 7], [4]], [[5, 9, 7], [6, 8]], batch_size=1
    )
    assert size == pytest.approx(4.5)
    assert covered == pytest.approx(3 / 5)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="2 source sentences but 1 targets"):
        shortlist.model1_probabilities([[1], [2]], [[3]])
    with pytest.raises(ValueError, match="no sentence pair with a target piece"):
        shortlist.model1_probabilities([[1]], [[]])
    with pytest.raises(ValueError, match="k must be >= 1"):
        shortlist.build_shortlist([[1]], [[2]], 5, k=0, frequent=1)
