"""What beam search scores in a SavedModel: fewer output columns, and a table for the inputs.

Per hypothesis-token the output projection is the largest product of a decoder
step (4.1 of 9.3 M multiply-adds for rnn-base with 8k pieces). Two export-time
cuts make it smaller, and a third removes the embedding's matmul:

- target vocabulary: only pieces that occur in the training targets (the rest
  of a joint vocabulary is source-only) are scored;
- lexical shortlist (`data.shortlist`): per request, only the union of the
  source pieces' candidates, the most frequent target pieces and EOS;
- input table: the embedding times the first layer's input kernel, for every
  id, so each step gathers a row instead of multiplying.

The search then runs over positions in the request's columns: a position maps
to its vocabulary id before it is embedded and after the search ends, so the
search itself is unchanged. Scores are log-probabilities normalized over the
scored columns.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from seq2seq_tf.data import vocab
from seq2seq_tf.data.shortlist import LexicalShortlist
from seq2seq_tf.errors import UserError
from seq2seq_tf.serving.xla_search import XlaBuckets


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchSpeedups:
    """Export-time choices (flags of the export command) of what beam search scores.

    target_vocab: score only pieces of the training targets (and EOS).
    shortlist_k: candidates per source piece of a lexical shortlist (0: none).
    shortlist_frequent: the most frequent target pieces every union holds.
    input_table: gather the embedding's first-layer projection from a table.
    xla: compile the search with XLA, over requests padded to these buckets.
    """

    target_vocab: bool = False
    shortlist_k: int = 0
    shortlist_frequent: int = 300
    input_table: bool = False
    xla: XlaBuckets | None = None

    def __post_init__(self):
        for name in ("shortlist_k", "shortlist_frequent"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise SearchSpeedupError(f"--{name} must be an integer >= 0, got {value}")

    @property
    def any(self) -> bool:
        return self.changes_columns or self.xla is not None

    @property
    def changes_columns(self) -> bool:
        """What the search scores or feeds differs from the model's own step."""
        return self.target_vocab or self.shortlist_k > 0 or self.input_table


class SearchSpeedupError(UserError, ValueError):
    """An export-time speed-up cannot be built; the message names the flag or file."""


class SearchColumns(tf.Module):
    """The columns a request's beam search scores, and its step function over them.

    Args:
        decoder: the model's `decoders.rnn.RNNDecoder`.
        scored_ids: vocabulary ids the search may produce (the target vocabulary), or
            None for every id the decoder's output layer scores.
        shortlist: a lexical shortlist, or None.
        input_table: keep `decoder.input_table()` (vocab x gates floats in the
            SavedModel) and gather from it each step.
    """

    def __init__(
        self,
        decoder,
        scored_ids: tuple[int, ...] | None = None,
        shortlist: LexicalShortlist | None = None,
        input_table: bool = False,
    ):
        super().__init__(name="search_columns")
        self._decoder = decoder
        allowed = np.zeros(decoder.vocab_size, bool)
        allowed[list(decoder.output_ids or range(decoder.vocab_size))] = True
        if scored_ids is not None:
            kept = np.zeros_like(allowed)
            kept[list(scored_ids)] = True
            allowed &= kept
        allowed[[vocab.PAD_ID, vocab.BOS_ID]] = False  # never produced
        allowed[vocab.EOS_ID] = True
        self._allowed = tf.constant(allowed)
        self.num_scored = int(allowed.sum())
        self.shortlist_candidates = None
        if shortlist is not None:
            # Variables, so a loaded SavedModel shows them (`.columns.shortlist_candidates`).
            self.shortlist_candidates = tf.Variable(
                shortlist.candidates, trainable=False, name="shortlist_candidates"
            )
            self.shortlist_frequent = tf.Variable(
                shortlist.frequent, trainable=False, name="shortlist_frequent"
            )
        self.input_table = None
        if input_table:
            table = decoder.input_table()
            if table is None:
                raise SearchSpeedupError(
                    f"the decoder's {decoder.cell_type} first layer has no affine input "
                    "projection: --input_table does not apply"
                )
            self.input_table = tf.Variable(table, trainable=False, name="input_table")

    @property
    def has_shortlist(self) -> bool:
        return self.shortlist_candidates is not None

    def columns(self, source_ids, use_shortlist, size: int | None = None) -> tf.Tensor:
        """Sorted vocabulary ids `[columns]` a batch's search scores.

        Args:
            source_ids: `[batch, src_len]` (PAD after the end).
            use_shortlist: scalar bool; ignored without a shortlist.
            size: with the shortlist on, exactly min(size, num_scored) columns (XLA
                compiles per shape): a smaller union is filled with other scored
                pieces in id order; a larger one keeps EOS, the frequent pieces and
                then each candidate by its best rank for any source piece.
        """
        allowed = self._allowed
        if self.has_shortlist:

            def union():
                candidates = self._candidates(source_ids)
                ids = tf.concat(
                    [tf.reshape(candidates, [-1]), self.shortlist_frequent, [vocab.EOS_ID]], 0
                )
                present = tf.math.bincount(ids, minlength=allowed.shape[0]) > 0
                return tf.cast(tf.where(present[: allowed.shape[0]] & allowed)[:, 0], tf.int32)

            def fixed_union():
                candidates = self._candidates(source_ids)
                k = self.shortlist_candidates.shape[1]
                rank_score = tf.broadcast_to(tf.range(k + 1, 1, -1), tf.shape(candidates))
                always = tf.concat([self.shortlist_frequent, [vocab.EOS_ID]], 0)
                priority = tf.tensor_scatter_nd_max(
                    tf.ones(allowed.shape, tf.int32),  # 1: a filler
                    tf.concat([tf.reshape(candidates, [-1, 1]), always[:, None]], 0),
                    tf.concat([tf.reshape(rank_score, [-1]), tf.fill(tf.shape(always), k + 2)], 0),
                )
                priority = tf.where(allowed, priority, 0)  # never a piece not scored
                _, top = tf.math.top_k(priority, min(size, self.num_scored))
                return tf.sort(top)

            if size is not None and size >= self.num_scored:
                return self._scored()  # the union can only be smaller
            chosen = union if size is None else fixed_union
            return tf.cond(tf.cast(use_shortlist, tf.bool), chosen, self._scored)
        return self._scored()

    def _candidates(self, source_ids) -> tf.Tensor:
        """The shortlist's candidates `[real source pieces, k]`, best first, of a batch."""
        real = tf.boolean_mask(source_ids, source_ids != vocab.PAD_ID)
        return tf.gather(self.shortlist_candidates, real)

    def _scored(self) -> tf.Tensor:
        """Every column the search may score `[num_scored]`."""
        return tf.cast(tf.where(self._allowed)[:, 0], tf.int32)

    def search_ids(self, columns) -> dict:
        """start/end/pad as positions: start is one past the columns (BOS is fed, never
        scored), end is EOS's column."""
        end = tf.cast(tf.where(tf.equal(columns, vocab.EOS_ID))[0, 0], tf.int32)
        return {"start_id": tf.size(columns), "end_id": end, "pad_id": vocab.PAD_ID}

    def step_fn(self, columns):
        """`step(positions [rows], state) -> (logits [rows, columns], state)`."""
        decoder = self._decoder
        inputs = tf.concat([columns, [vocab.BOS_ID]], 0)  # position -> the id it feeds
        kernel, bias = decoder.output_weights()
        scored = decoder.output_labels(columns)
        kernel = tf.gather(kernel, scored, axis=1)
        bias = tf.gather(bias, scored)
        rows = None if self.input_table is None else tf.gather(self.input_table, inputs)

        def step(positions, state):
            ids = tf.gather(inputs, positions)
            embedded = None if rows is None else tf.gather(rows, positions)
            features, state = decoder.step_features(ids, state, embedded)
            logits = tf.matmul(features, tf.cast(kernel, features.dtype))
            return logits + tf.cast(bias, features.dtype), state

        return step

    @staticmethod
    def to_ids(columns, positions):
        """Positions `[...]` -> vocabulary ids (the search's ids back to pieces)."""
        return tf.gather(tf.concat([columns, [vocab.BOS_ID]], 0), positions)
