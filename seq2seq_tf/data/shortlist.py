"""Lexical shortlist: per source piece, the target pieces its translations are likely to use.

As Marian's `--shortlist`, Sockeye's `--restrict-lexicon` and CTranslate2's
vocabulary map do, beam search can score only the union of the source pieces'
candidates, the most frequent target pieces and EOS, instead of the whole
vocabulary: the output projection, nearly half of a decoder step's arithmetic,
shrinks to that union.

The score is IBM Model 1's translation probability t(target | source), trained
by EM on the training corpus with a NULL source word (Brown et al., 1993; the
lexical table fast_align starts from). Plain co-occurrence counts rank the most
frequent target pieces first for every source piece; Model 1 explains those by
the source pieces that really produce them (and by NULL), so each piece's top-k
are its own translations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from seq2seq_tf.data import vocab


def _flat(sentences: Sequence[Sequence[int]]) -> np.ndarray:
    """All ids of the sentences, `[total]` int64."""
    return np.concatenate([np.zeros(0, np.int64)] + [np.asarray(s, np.int64) for s in sentences])


class LexicalShortlist(NamedTuple):
    """candidates: `[vocab, k]` int32 target ids per source id, best first; rows of
    source ids never seen in training (and short rows) are filled with EOS.
    frequent: `[n]` int32 the most frequent target ids of the training targets.
    """

    candidates: np.ndarray
    frequent: np.ndarray


def model1_probabilities(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    iterations: int = 5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IBM Model 1 t(e | f) by EM over sentence pairs of ids.

    Returns:
        (t [source types + 1, target types] float32, the last row NULL's;
        source ids of the rows [source types]; target ids of the columns [target types]).
    """
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} source sentences but {len(targets)} targets")
    src_types = np.unique(_flat(sources))
    tgt_types = np.unique(_flat(targets))
    null = len(src_types)
    rows, cols, groups = [], [], []
    position = 0  # one group per target token: its alignment posterior sums to 1
    for source, target in zip(sources, targets):
        if len(target) == 0:
            continue
        f = np.append(np.searchsorted(src_types, np.asarray(source, np.int64)), null)
        e = np.searchsorted(tgt_types, np.asarray(target, np.int64))
        rows.append(np.tile(f, len(e)))
        cols.append(np.repeat(e, len(f)))
        groups.append(np.repeat(np.arange(position, position + len(e)), len(f)))
        position += len(e)
    if not rows:
        raise ValueError("no sentence pair with a target piece")
    width = len(tgt_types)
    key = np.concatenate(rows) * width + np.concatenate(cols)
    group = np.concatenate(groups)
    t = np.full((null + 1) * width, 1.0 / width)
    for _ in range(iterations):
        p = t[key]
        posterior = p / np.bincount(group, p, minlength=position)[group]
        counts = np.bincount(key, posterior, minlength=t.size).reshape(null + 1, width)
        totals = counts.sum(axis=1, keepdims=True)
        t = (counts / np.where(totals > 0, totals, 1.0)).reshape(-1)
    return t.reshape(null + 1, width).astype(np.float32), src_types, tgt_types


def build_shortlist(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    vocab_size: int,
    k: int,
    frequent: int,
    iterations: int = 5,
) -> LexicalShortlist:
    """The k best target ids per source id by Model 1, and the `frequent` most frequent
    target ids, from tokenized training pairs (ids without BOS/EOS)."""
    if k < 1 or frequent < 0:
        raise ValueError(f"shortlist k must be >= 1 and frequent >= 0, got {k}, {frequent}")
    t, src_types, tgt_types = model1_probabilities(sources, targets, iterations)
    k_kept = min(k, len(tgt_types))
    best = np.argsort(-t[:-1], axis=1, kind="stable")[:, :k_kept]  # NULL's row is not a piece
    candidates = np.full((vocab_size, k), vocab.EOS_ID, np.int32)
    candidates[src_types, :k_kept] = tgt_types[best]
    counts = np.bincount(_flat(targets), minlength=vocab_size)
    order = np.argsort(-counts, kind="stable")
    most = order[counts[order] > 0][:frequent].astype(np.int32)
    return LexicalShortlist(candidates, most)


def shortlist_coverage(
    shortlist: LexicalShortlist,
    sources: Sequence[Sequence[int]],
    references: Sequence[Sequence[int]],
    batch_size: int,
) -> tuple[float, float]:
    """(mean union size, share of reference pieces inside their batch's union) for
    consecutive batches, as the serving graph forms them (the union also holds EOS)."""
    sizes, covered, total = [], 0, 0
    for start in range(0, len(sources), batch_size):
        batch = sources[start : start + batch_size]
        ids = _flat(batch)
        union = set(shortlist.candidates[ids].reshape(-1).tolist())
        union |= set(shortlist.frequent.tolist()) | {vocab.EOS_ID}
        sizes.append(len(union))
        for reference in references[start : start + batch_size]:
            covered += sum(piece in union for piece in reference)
            total += len(reference)
    return float(np.mean(sizes)), covered / max(total, 1)
