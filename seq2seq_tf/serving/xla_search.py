"""Beam search compiled by XLA inside a SavedModel, over requests padded to a few shapes.

XLA compiles a function once per input shape and per value of its compile-time
constants (beam width, n), and caches the result. A request's shapes vary (rows,
source pieces, the shortlist's union), so each is padded to a bucket before the
compiled search: rows to the next power of two, source pieces to the next of a
few lengths, and the shortlist to a fixed number of columns
(`SearchColumns.columns(size=...)`). Then a server compiles a handful of programs,
each once, the first time a request of that shape arrives.

Inside the compiled function every shape is static, so the search runs the
whole padded batch to the end (`beam_search` with `max_steps`): finished
sentences do not leave the batch as they do without XLA. TF Serving runs the
compiled function only when started with `--xla_cpu_compilation_enabled=true`
(on CPU); TensorFlow in Python runs it as is.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from seq2seq_tf.data import vocab
from seq2seq_tf.errors import UserError

# Row buckets: 1, 2, 4, ... (a request is padded up to the next one).
_ROW_BUCKETS = tuple(2**i for i in range(21))


class XlaSearchError(UserError, ValueError):
    """An XLA export setting is out of range; the message names the flag."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class XlaBuckets:
    """The shapes an XLA export pads requests to.

    source_lengths: increasing source lengths in pieces (EOS included); the
        export appends its max_source_pieces, so every source fits one.
    shortlist_size: columns the search scores when the shortlist is on.
    """

    source_lengths: tuple[int, ...] = (16, 32, 48, 64)
    shortlist_size: int = 1024

    def __post_init__(self):
        lengths = self.source_lengths
        if not lengths or any(not isinstance(n, int) or n < 2 for n in lengths):
            raise XlaSearchError(f"--xla_source_buckets must be integers >= 2, got {lengths}")
        if list(lengths) != sorted(set(lengths)):
            raise XlaSearchError(f"--xla_source_buckets must increase, got {lengths}")
        if not (isinstance(self.shortlist_size, int) and self.shortlist_size >= 2):
            raise XlaSearchError(
                f"--xla_shortlist_size must be an integer >= 2, got {self.shortlist_size}"
            )

    def up_to(self, max_source_pieces: int) -> XlaBuckets:
        """These buckets cut at, and ending with, max_source_pieces."""
        kept = tuple(n for n in self.source_lengths if n < max_source_pieces)
        return dataclasses.replace(self, source_lengths=kept + (int(max_source_pieces),))


def _bucket(size, buckets) -> tf.Tensor:
    """The smallest bucket >= size (size must fit the largest)."""
    buckets = tf.constant(buckets, tf.int32)
    return tf.gather(buckets, tf.searchsorted(buckets, [size], side="left"))[0]


def pad_request(source, source_lengths: tuple[int, ...]) -> tf.Tensor:
    """Source ids `[batch, src_len]` -> `[rows, length]`: rows the next power of two,
    length the next bucket. Added rows are empty sentences (EOS then PAD), added
    positions PAD, so the real rows' searches are unchanged."""
    shape = tf.shape(source)
    rows = _bucket(shape[0], _ROW_BUCKETS)
    length = _bucket(shape[1], source_lengths)
    padded = tf.pad(source, [[0, 0], [0, length - shape[1]]], constant_values=vocab.PAD_ID)
    empty = tf.one_hot(
        tf.zeros([rows - shape[0]], tf.int32),
        length,
        on_value=vocab.EOS_ID,
        off_value=vocab.PAD_ID,
        dtype=tf.int32,
    )
    return tf.concat([padded, empty], 0)
