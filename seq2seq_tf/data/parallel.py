"""Sentence pairs for translation: check, tokenize in-graph, filter, bucket, batch.

Elements are `(source_ids, target_in, target_out)`:
    source_ids  pieces + EOS           [batch, src_len]
    target_in   BOS + pieces           [batch, tgt_len]
    target_out  pieces + EOS           [batch, tgt_len]
padded with PAD_ID. Files are checked once in Python before training (line
counts, UTF-8) so bad input fails at start with the file and line named, not
deep inside a tf.data iterator.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tensorflow_text as tf_text
from absl import logging

from seq2seq_tf.data.text import DataError, read_lines
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID

_TOKENIZE_BATCH = 256


@dataclasses.dataclass(frozen=True)
class CorpusStats:
    """What the up-front pass over a parallel corpus found."""

    pairs: int
    kept: int
    empty: int
    overlong: int
    lengths: tuple[int, ...] = ()  # of kept pairs: max(source + EOS, target + EOS) in pieces


def check_parallel(src_path: str, tgt_path: str) -> tuple[list[str], list[str]]:
    """Reads both sides and checks they pair up line by line."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"parallel files differ in length: {src_path} has {len(src)} lines, "
            f"{tgt_path} has {len(tgt)} lines"
        )
    if not src:
        raise DataError(f"no lines in {src_path}")
    return src, tgt


def _text_dataset(path: str) -> tf.data.Dataset:
    return tf.data.TextLineDataset(path, compression_type="GZIP" if path.endswith(".gz") else "")


def _tokenize_pairs(tokenizer: tf_text.SentencepieceTokenizer):
    """Maps batches of raw (src, tgt) strings to ragged piece ids with EOS/BOS added."""

    def tokenize(src, tgt):
        src_ids = tokenizer.tokenize(src)  # ragged batch x pieces
        tgt_ids = tokenizer.tokenize(tgt)
        rows = src_ids.nrows()
        eos = tf.fill([rows, 1], EOS_ID)
        bos = tf.fill([rows, 1], BOS_ID)
        return (
            tf.concat([src_ids, eos], axis=1),
            tf.concat([bos, tgt_ids], axis=1),
            tf.concat([tgt_ids, eos], axis=1),
        )

    return tokenize


def corpus_stats(
    src_lines: list[str],
    tgt_lines: list[str],
    tokenizer: tf_text.SentencepieceTokenizer,
    max_src_len: int,
    max_tgt_len: int,
    name: str,
) -> CorpusStats:
    """Counts empty and overlong pairs (the pipeline drops them) and logs the counts."""
    empty = overlong = 0
    lengths = []
    for start in range(0, len(src_lines), 4096):
        src = tf.constant(src_lines[start : start + 4096])
        tgt = tf.constant(tgt_lines[start : start + 4096])
        src_len = tokenizer.tokenize(src).row_lengths().numpy()
        tgt_len = tokenizer.tokenize(tgt).row_lengths().numpy()
        for s, t in zip(src_len, tgt_len):
            if s == 0 or t == 0:
                empty += 1
            elif s + 1 > max_src_len or t + 1 > max_tgt_len:
                overlong += 1
            else:
                lengths.append(int(max(s, t)) + 1)
    pairs = len(src_lines)
    stats = CorpusStats(pairs, pairs - empty - overlong, empty, overlong, tuple(lengths))
    logging.info(
        "%s: %d pairs, %d kept, %d dropped as empty, %d dropped as longer than %d/%d pieces",
        name,
        stats.pairs,
        stats.kept,
        stats.empty,
        stats.overlong,
        max_src_len,
        max_tgt_len,
    )
    if stats.kept == 0:
        raise DataError(f"{name}: every pair is empty or overlong; nothing to train on")
    return stats


def derive_bucket_boundaries(lengths: tuple[int, ...], buckets: int = 10) -> tuple[int, ...]:
    """Bucket edges at the length quantiles, so each bucket holds about as many pairs."""
    if not lengths:
        return ()
    ordered = sorted(lengths)
    last = len(ordered) - 1
    edges = {ordered[min(last, len(ordered) * i // buckets)] + 1 for i in range(1, buckets)}
    return tuple(sorted(e for e in edges if e > 1))


def bucket_batch_sizes(
    boundaries: tuple[int, ...], batch_size: int, batch_tokens: int, max_len: int
) -> list[int]:
    """Sentences per batch in each bucket: fixed, or batch_tokens over the bucket's longest."""
    if not batch_tokens:
        return [batch_size] * (len(boundaries) + 1)
    longest = [int(b) - 1 for b in boundaries] + [max_len]
    return [max(1, batch_tokens // max(n, 1)) for n in longest]


def make_train_dataset(
    src_path: str,
    tgt_path: str,
    tokenizer: tf_text.SentencepieceTokenizer,
    *,
    batch_size: int,
    max_src_len: int,
    max_tgt_len: int,
    bucket_boundaries: tuple[int, ...],
    shuffle_buffer: int,
    seed: int,
    repeat: bool = True,
    batch_tokens: int = 0,
) -> tf.data.Dataset:
    """Shuffled, repeated, length-bucketed batches; deterministic for a seed.

    Pairs longer than the limits (counting the added EOS/BOS) or with an empty side
    are dropped; `corpus_stats` reports how many. With `batch_tokens`, batches hold
    about that many padded tokens (longest side) instead of `batch_size` sentences.
    """
    ds = tf.data.Dataset.zip(_text_dataset(src_path), _text_dataset(tgt_path))
    if shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(_TOKENIZE_BATCH).map(_tokenize_pairs(tokenizer)).unbatch()
    ds = ds.map(lambda *ids: tuple(tf.convert_to_tensor(t) for t in ids))  # ragged rows -> dense

    def keep(src, tgt_in, tgt_out):
        src_len, tgt_len = tf.shape(src)[0], tf.shape(tgt_out)[0]
        return (src_len > 1) & (tgt_len > 1) & (src_len <= max_src_len) & (tgt_len <= max_tgt_len)

    ds = ds.filter(keep)
    boundaries = [int(b) for b in bucket_boundaries]
    ds = ds.bucket_by_sequence_length(
        lambda src, tgt_in, tgt_out: tf.maximum(tf.shape(src)[0], tf.shape(tgt_out)[0]),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=bucket_batch_sizes(
            tuple(boundaries), batch_size, batch_tokens, max(max_src_len, max_tgt_len)
        ),
        padding_values=(PAD_ID, PAD_ID, PAD_ID),
    )
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
