"""The translation serving module: SentencePiece + model + search as one tf.Module.

Raw strings in, translations and log-probabilities out; a SavedModel of it runs
with nothing but `tensorflow` and `tensorflow_text` imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import keras
import ml_collections
import sentencepiece as spm
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.data import vocab
from seq2seq_tf.errors import UserError
from seq2seq_tf.layers import fused_lstm
from seq2seq_tf.serving.checks import check_utf8
from seq2seq_tf.serving.search_columns import SearchColumns
from seq2seq_tf.serving.xla_search import XlaBuckets, pad_request


class SearchSettingsError(UserError, ValueError):
    """An export-time search setting is out of range; the message names the flag."""


class VocabularyMismatchError(UserError, ValueError):
    """The SentencePiece model and the model's embeddings disagree on vocabulary size."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchDefaults:
    """Decoding choices fixed at export time (flags of the export command).

    Keyword-only: three numbers in a row are easy to pass in the wrong order.
    """

    beam_width: int = 4
    length_penalty: float = 0.6
    coverage_penalty: float = 0.0
    use_shortlist: bool = False  # serving_default and translate_nbest (with a shortlist)

    def __post_init__(self):
        # Checked here, not in the graph: a NaN penalty exports a model that
        # translates everything to "", and a beam of 0 fails deep in tracing.
        if not (isinstance(self.beam_width, int) and self.beam_width >= 1):
            raise SearchSettingsError(
                f"--beam_width must be an integer >= 1, got {self.beam_width}"
            )
        for name in ("length_penalty", "coverage_penalty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SearchSettingsError(f"--{name} must be a finite number >= 0, got {value}")


# Signature name -> Translator method.
SIGNATURES = {
    "serving_default": "translate",
    "translate_nbest": "translate_nbest",
    "sample": "sample",
    "score": "score",
    "align": "align",
}
SHORTLIST_SIGNATURES = {"translate_options": "translate_options"}  # with a shortlist only
_IDS = {"start_id": vocab.BOS_ID, "end_id": vocab.EOS_ID, "pad_id": vocab.PAD_ID}
_STRINGS = tf.TensorSpec([None], tf.string)
_INT = tf.TensorSpec([], tf.int32)
_FLOAT = tf.TensorSpec([], tf.float32)
_BOOL = tf.TensorSpec([], tf.bool)


def _at_least(value, bound, name: str):
    """An InvalidArgumentError naming `name` unless value >= bound."""
    return tf.debugging.assert_greater_equal(value, bound, message=f"{name} must be >= {bound}")


def check_sampling_arguments(signature: str, temperature, top_k, top_p) -> list:
    """Assertions that fail a request with an argument out of range (NaN included)."""
    return [
        _at_least(temperature, 0.0, f"{signature}: temperature (0 = greedy)"),
        _at_least(top_k, 0, f"{signature}: top_k (0 = no limit)"),
        tf.debugging.assert_greater(top_p, 0.0, message=f"{signature}: top_p must be in (0, 1]"),
        tf.debugging.assert_less_equal(top_p, 1.0, message=f"{signature}: top_p must be in (0, 1]"),
    ]


def _checked_batch(strings, name: str):
    """Checks UTF-8 and stands one "" in for an empty batch (the search needs a row).

    Returns:
        (strings [max(batch, 1)], batch): outputs are cut back to `[:batch]`.
    """
    with tf.control_dependencies([check_utf8(strings, name)]):
        batch = tf.size(strings)
    strings = tf.cond(batch > 0, lambda: strings, lambda: tf.constant([""]))
    return strings, batch


class Translator(tf.Module):
    """Tokenizer + model + search, as one exportable module.

    Signatures (all take raw UTF-8 strings):
        serving_default(inputs) -> translations [batch], scores [batch]: the best
            beam hypothesis and its score (log-probability / GNMT length penalty
            + coverage penalty, as set at export).
        translate_nbest(inputs, n, beam_width) -> translations [batch, n],
            scores [batch, n], best first; the beam is max(n, beam_width) wide.
        sample(inputs, temperature, top_k, top_p, seed) -> translations, scores
            (model log-probabilities of the samples).
        score(sources, targets) -> scores [batch]: log p(target | source), EOS
            included (force decoding, for reranking and filtering).
        align(inputs) -> translations, source_pieces [batch, src_len],
            target_pieces [batch, steps], alignments [batch, steps, src_len] (greedy).
        translate_options(inputs, n, beam_width, shortlist) -> as translate_nbest, with
            the lexical shortlist on or off for this request (exported with one only).

    With `columns` (`serving.search_columns`), the beam search of serving_default,
    translate_nbest and translate_options scores only its columns (the target
    vocabulary, the shortlist's union when on); sample, score and align always
    use the model's whole output layer.

    Sources longer than `max_source_pieces` are cut to that many pieces, and
    targets to score to `decode.max_length` (the documented rule), so no input
    fails deep inside the graph. A source with no known piece (empty, all
    spaces, or only characters the vocabulary lacks) translates to "" with score 0
    in every signature but `score`, which reports what the model does. An empty
    batch gives empty outputs. Bytes that are not UTF-8, and arguments out of
    range (n or beam_width < 1, temperature < 0, top_k < 0, top_p outside (0, 1]),
    fail the request with an InvalidArgumentError that names the input or argument.
    Temperature 0 samples the argmax (greedy, up to exact ties).

    With `xla` the beam search of those three signatures (the encoder with it) runs
    compiled by XLA, over requests padded to its buckets (`serving.xla_search`).

    With `portable` (what export writes) every encoder layer is traced with our
    step loop, never cuDNN's fused LSTM, so the SavedModel runs on any device
    (the same weights and results; see `layers.fused_lstm`).
    """

    def __init__(
        self,
        model: keras.Model,
        spm_model_path: str,
        decode: ml_collections.ConfigDict,
        max_source_pieces: int,
        defaults: SearchDefaults = SearchDefaults(),
        portable: bool = False,
        columns: SearchColumns | None = None,
        xla: XlaBuckets | None = None,
    ):
        super().__init__(name="translator")
        self.columns = columns
        if columns is not None and columns.has_shortlist:
            # Only here: `save` traces every tf.function attribute, signature or not.
            self.translate_options = tf.function(
                self._translate_options, input_signature=[_STRINGS, _INT, _INT, _BOOL]
            )
        self._xla = None if xla is None else xla.up_to(max_source_pieces)
        self._compiled_search = None
        if self._xla is not None:
            self._compiled_search = tf.function(self._search, jit_compile=True)
        self._portable = bool(portable)
        proto = vocab.read_model_proto(spm_model_path)
        pieces = vocab.vocab_size_of(spm_model_path)
        if pieces != model.vocab_size:
            raise VocabularyMismatchError(
                f"{spm_model_path} has {pieces} pieces but the model was built for "
                f"{model.vocab_size}; export with the SentencePiece model it was trained with"
            )
        self.model = model
        self.spm_model = tf.saved_model.Asset(spm_model_path)  # travels in assets/
        processor = spm.SentencePieceProcessor()
        processor.LoadFromSerializedProto(proto)
        # Ids that carry no content: what a source of only unknown characters becomes.
        self._contentless = sorted(
            {vocab.PAD_ID, vocab.UNK_ID, vocab.EOS_ID, processor.PieceToId("\u2581")}
        )
        self.tokenizer = vocab.make_tokenizer(proto)
        self._ratio = float(decode.max_length_ratio)
        self._offset = int(decode.max_length_offset)
        self._cap = int(decode.max_length)
        self._max_source_pieces = int(max_source_pieces)
        self._defaults = defaults

    def encode_sources(self, sources):
        """Raw strings `[batch]` -> ids `[batch, src_len]` (pieces + EOS, PAD after)."""
        pieces = self.tokenizer.tokenize(sources)[:, : self._max_source_pieces - 1]
        eos = tf.fill([pieces.nrows(), 1], vocab.EOS_ID)
        return tf.concat([pieces, eos], axis=1).to_tensor(vocab.PAD_ID)

    def decode_ids(self, ids, lengths):
        """Ids `[batch, n, steps]` with lengths `[batch, n]` -> strings `[batch, n]`."""
        shape = tf.shape(lengths)
        flat_ids = tf.reshape(ids, [shape[0] * shape[1], -1])
        ragged = tf.RaggedTensor.from_tensor(flat_ids, lengths=tf.reshape(lengths, [-1]))
        return tf.reshape(self.tokenizer.detokenize(ragged), shape)

    def _blank_unknown(self, source, *outputs):
        """Sources with no known piece get "" (strings) and 0 (numbers) in every output.

        Args:
            source: ids `[batch, src_len]`; outputs: tensors `[batch, ...]`.
        """
        contentless = tf.reduce_any(source[:, :, None] == self._contentless, axis=2)
        blank = tf.reduce_all(contentless, axis=1)
        blanked = []
        for output in outputs:
            rank = tf.rank(output)
            mask = tf.reshape(blank, tf.concat([[-1], tf.ones([rank - 1], tf.int32)], 0))
            mask = tf.broadcast_to(mask, tf.shape(output))
            empty = "" if output.dtype == tf.string else tf.zeros([], output.dtype)
            blanked.append(tf.where(mask, empty, output))
        return blanked

    def _start(self, inputs):
        """Source ids, per-sentence target budgets and the decoder's first state."""
        source = self.encode_sources(inputs)
        return (source, *self._encoded(source))

    def _encoded(self, source):
        """Per-sentence target budgets `[batch]` and the decoder's first state."""
        with self._encoder_scope():
            state = self.model.initial_state(source, training=False)
        return self._budgets(source), state

    def _budgets(self, source, longest: bool = False):
        """Target budgets `[batch]` of source ids `[batch, src_len]` (the decode config's
        rule); with `longest`, `[1]`: the budget of a source src_len pieces long."""
        if longest:
            lengths = tf.shape(source)[1:2]
        else:
            lengths = tf.reduce_sum(tf.cast(source != vocab.PAD_ID, tf.int32), axis=1)
        return search.max_target_lengths(lengths, self._ratio, self._offset, self._cap)

    def _encoder_scope(self):
        """Where the encoder is traced: our loop only in a portable (exported) module."""
        return fused_lstm.loop_only() if self._portable else contextlib.nullcontext()

    def beam(
        self, inputs, beam_width, n_best, use_shortlist=None
    ) -> tuple[tf.Tensor, search.Hypotheses]:
        """Source ids and the beam search with the export-time penalties (greedy at width 1).

        Args:
            use_shortlist: scalar bool, or None for the export-time default.
        """
        source = self.encode_sources(inputs)
        columns = None
        if self.columns is not None:
            if use_shortlist is None:
                use_shortlist = self._defaults.use_shortlist
            size = None if self._xla is None else self._xla.shortlist_size
            columns = self.columns.columns(source, use_shortlist, size)
        if self._xla is None:
            hyps = self._search(source, columns, beam_width, n_best)
        else:
            rows = tf.shape(source)[0]
            padded = pad_request(source, self._xla.source_lengths)
            hyps = self._compiled_search(padded, columns, beam_width, n_best, static=True)
            hyps = search.Hypotheses(*(None if t is None else t[:rows] for t in hyps))
        if columns is not None:
            hyps = hyps._replace(ids=self.columns.to_ids(columns, hyps.ids))
        return source, hyps

    def _search(self, source, columns, beam_width, n_best, static=False) -> search.Hypotheses:
        """Encoder and beam search over source ids `[batch, src_len]`; with `static` the
        loop runs to a bound set by src_len (XLA: static shapes)."""
        budget, state = self._encoded(source)
        # With `static`, the largest budget a source this long can get.
        max_steps = self._budgets(source, longest=True)[0] if static else None
        step, ids = self.model.step, _IDS
        if columns is not None:
            step, ids = self.columns.step_fn(columns), self.columns.search_ids(columns)
        return search.beam_search(
            step,
            state,
            budget,
            beam_width,
            self._defaults.length_penalty,
            self._defaults.coverage_penalty,
            n_best=n_best,
            max_steps=max_steps,
            beam_invariant=self.model.beam_invariant,
            alignment_fn=self.model.alignment,
            source_mask=state["mask"],
            **ids,
        )

    @tf.function(input_signature=[_STRINGS])
    def translate(self, inputs):
        inputs, n = _checked_batch(inputs, "inputs")
        source, hyps = self.beam(inputs, self._defaults.beam_width, 1)
        texts = self.decode_ids(hyps.ids, hyps.lengths)[:, 0]
        texts, scores = self._blank_unknown(source, texts, hyps.scores[:, 0])
        return {"translations": texts[:n], "scores": scores[:n]}

    @tf.function(input_signature=[_STRINGS, _INT, _INT])
    def translate_nbest(self, inputs, n, beam_width):
        with tf.control_dependencies(
            [
                _at_least(n, 1, "translate_nbest: n"),
                _at_least(beam_width, 1, "translate_nbest: beam_width"),
            ]
        ):
            inputs, rows = _checked_batch(inputs, "inputs")
        return self._nbest(inputs, rows, n, beam_width)

    def _nbest(self, inputs, rows, n, beam_width, use_shortlist=None) -> dict:
        source, hyps = self.beam(inputs, tf.maximum(n, beam_width), n, use_shortlist)
        texts = self.decode_ids(hyps.ids, hyps.lengths)
        texts, scores = self._blank_unknown(source, texts, hyps.scores)
        return {"translations": texts[:rows], "scores": scores[:rows]}

    def _translate_options(self, inputs, n, beam_width, shortlist):
        """`translate_options` (exports with a shortlist): `translate_nbest` with the
        shortlist switched per request."""
        with tf.control_dependencies(
            [
                _at_least(n, 1, "translate_options: n"),
                _at_least(beam_width, 1, "translate_options: beam_width"),
            ]
        ):
            inputs, rows = _checked_batch(inputs, "inputs")
        return self._nbest(inputs, rows, n, beam_width, shortlist)

    @tf.function(input_signature=[_STRINGS, _FLOAT, _INT, _FLOAT, _INT])
    def sample(self, inputs, temperature, top_k, top_p, seed):
        with tf.control_dependencies(check_sampling_arguments("sample", temperature, top_k, top_p)):
            inputs, n = _checked_batch(inputs, "inputs")
        source, budget, state = self._start(inputs)
        hyps = search.sample_search(
            self.model.step, state, budget, temperature, top_k, top_p, seed, **_IDS
        )
        texts = self.decode_ids(hyps.ids, hyps.lengths)[:, 0]
        texts, scores = self._blank_unknown(source, texts, hyps.log_probs[:, 0])
        return {"translations": texts[:n], "scores": scores[:n]}

    @tf.function(input_signature=[_STRINGS, _STRINGS])
    def score(self, sources, targets):
        same = tf.debugging.assert_equal(
            tf.size(sources),
            tf.size(targets),
            message="score: sources and targets must have the same number of strings",
        )
        with tf.control_dependencies([same]):
            sources, n = _checked_batch(sources, "sources")
            targets, _ = _checked_batch(targets, "targets")
        source = self.encode_sources(sources)
        pieces = self.tokenizer.tokenize(targets)[:, : self._cap - 1]
        rows = pieces.nrows()
        target_in = tf.concat([tf.fill([rows, 1], vocab.BOS_ID), pieces], 1)
        target_out = tf.concat([pieces, tf.fill([rows, 1], vocab.EOS_ID)], 1)
        target_in = target_in.to_tensor(vocab.PAD_ID)
        target_out = target_out.to_tensor(vocab.PAD_ID)
        with self._encoder_scope():
            logits = self.model((source, target_in), training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        token = tf.gather(log_probs, target_out, batch_dims=2)  # batch x tgt_len
        mask = target_out != vocab.PAD_ID
        return {"scores": tf.reduce_sum(tf.where(mask, token, 0.0), axis=1)[:n]}

    @tf.function(input_signature=[_STRINGS])
    def align(self, inputs):
        inputs, n = _checked_batch(inputs, "inputs")
        source, budget, state = self._start(inputs)
        hyps = search.greedy_search(
            self.model.step, state, budget, alignment_fn=self.model.alignment, **_IDS
        )
        ids, lengths = hyps.ids[:, 0], hyps.lengths[:, 0]
        target_mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        source_mask = source != vocab.PAD_ID
        alignments = hyps.alignments[:, 0] * tf.cast(target_mask[:, :, None], tf.float32)
        texts, target_pieces, alignments = self._blank_unknown(
            source,
            self.decode_ids(hyps.ids, hyps.lengths)[:, 0],
            self._pieces(ids, target_mask),
            alignments,
        )
        return {
            "translations": texts[:n],
            "source_pieces": self._pieces(source, source_mask)[:n],
            "target_pieces": target_pieces[:n],
            "alignments": alignments[:n],
        }

    def _pieces(self, ids, mask):
        """Piece strings for ids `[batch, len]`, "" where the mask is off."""
        pieces = self.tokenizer.id_to_string(ids)
        return tf.where(mask, pieces, "")

    def signature_functions(self) -> dict:
        """Signature name -> tf.function, callable in process with the signature's
        keyword arguments (what training's dev evaluation and `evaluate --workdir` use)."""
        names = dict(SIGNATURES)
        if hasattr(self, "translate_options"):
            names.update(SHORTLIST_SIGNATURES)
        return {name: getattr(self, method) for name, method in names.items()}
