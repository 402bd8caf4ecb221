"""The translation serving module: SentencePiece + model + search as one tf.Module.

Raw strings in, translations and log-probabilities out; a SavedModel of it runs
with nothing but `tensorflow` and `tensorflow_text` imported.
"""

from __future__ import annotations

import dataclasses

import keras
import ml_collections
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.data import vocab


class VocabularyMismatchError(ValueError):
    """The SentencePiece model and the model's embeddings disagree on vocabulary size."""


@dataclasses.dataclass(frozen=True)
class SearchDefaults:
    """Decoding choices fixed at export time (flags of the export command)."""

    beam_width: int = 4
    length_penalty: float = 0.6
    coverage_penalty: float = 0.0


# Signature name -> Translator method.
SIGNATURES = {
    "serving_default": "translate",
    "translate_nbest": "translate_nbest",
    "sample": "sample",
    "score": "score",
    "align": "align",
}
_IDS = {"start_id": vocab.BOS_ID, "end_id": vocab.EOS_ID, "pad_id": vocab.PAD_ID}
_STRINGS = tf.TensorSpec([None], tf.string)
_INT = tf.TensorSpec([], tf.int32)
_FLOAT = tf.TensorSpec([], tf.float32)


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

    Sources longer than `max_source_pieces` are cut to that many pieces, and
    targets to score to `decode.max_length` (the documented rule), so no input
    fails deep inside the graph. An empty (or all-space) string translates to ""
    with score 0 (except in `score` and `align`, which report what the model does).
    """

    def __init__(
        self,
        model: keras.Model,
        spm_model_path: str,
        decode: ml_collections.ConfigDict,
        max_source_pieces: int,
        defaults: SearchDefaults = SearchDefaults(),
    ):
        super().__init__(name="translator")
        proto = vocab.read_model_proto(spm_model_path)
        pieces = vocab.vocab_size_of(spm_model_path)
        if pieces != model.vocab_size:
            raise VocabularyMismatchError(
                f"{spm_model_path} has {pieces} pieces but the model was built for "
                f"{model.vocab_size}; export with the SentencePiece model it was trained with"
            )
        self.model = model
        self.spm_model = tf.saved_model.Asset(spm_model_path)  # travels in assets/
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

    @staticmethod
    def _blank_empty(inputs, translations, scores):
        """Empty (or all-space) sources translate to "" with score 0, whatever the model says."""
        empty = tf.equal(tf.strings.length(tf.strings.strip(inputs)), 0)
        shape = tf.shape(translations)
        empty = tf.reshape(empty, tf.concat([[-1], tf.ones_like(shape[1:])], 0))
        empty = tf.broadcast_to(empty, shape)
        return tf.where(empty, "", translations), tf.where(empty, 0.0, scores)

    def _start(self, inputs):
        """Source ids, per-sentence target budgets and the decoder's first state."""
        source = self.encode_sources(inputs)
        source_lengths = tf.reduce_sum(tf.cast(source != vocab.PAD_ID, tf.int32), axis=1)
        budget = search.max_target_lengths(source_lengths, self._ratio, self._offset, self._cap)
        return source, budget, self.model.initial_state(source, training=False)

    def beam(self, inputs, beam_width, n_best) -> search.Hypotheses:
        """Beam search with the export-time penalties (greedy when the beam is 1)."""
        _, budget, state = self._start(inputs)
        return search.beam_search(
            self.model.step,
            state,
            budget,
            beam_width,
            self._defaults.length_penalty,
            self._defaults.coverage_penalty,
            n_best=n_best,
            beam_invariant=self.model.beam_invariant,
            alignment_fn=self.model.alignment,
            source_mask=state["mask"],
            **_IDS,
        )

    @tf.function(input_signature=[_STRINGS])
    def translate(self, inputs):
        hyps = self.beam(inputs, self._defaults.beam_width, 1)
        texts = self.decode_ids(hyps.ids, hyps.lengths)[:, 0]
        texts, scores = self._blank_empty(inputs, texts, hyps.scores[:, 0])
        return {"translations": texts, "scores": scores}

    @tf.function(input_signature=[_STRINGS, _INT, _INT])
    def translate_nbest(self, inputs, n, beam_width):
        n = tf.maximum(n, 1)
        hyps = self.beam(inputs, tf.maximum(n, beam_width), n)
        texts = self.decode_ids(hyps.ids, hyps.lengths)
        texts, scores = self._blank_empty(inputs, texts, hyps.scores)
        return {"translations": texts, "scores": scores}

    @tf.function(input_signature=[_STRINGS, _FLOAT, _INT, _FLOAT, _INT])
    def sample(self, inputs, temperature, top_k, top_p, seed):
        _, budget, state = self._start(inputs)
        hyps = search.sample_search(
            self.model.step, state, budget, temperature, top_k, top_p, seed, **_IDS
        )
        texts = self.decode_ids(hyps.ids, hyps.lengths)[:, 0]
        texts, scores = self._blank_empty(inputs, texts, hyps.log_probs[:, 0])
        return {"translations": texts, "scores": scores}

    @tf.function(input_signature=[_STRINGS, _STRINGS])
    def score(self, sources, targets):
        source = self.encode_sources(sources)
        pieces = self.tokenizer.tokenize(targets)[:, : self._cap - 1]
        rows = pieces.nrows()
        target_in = tf.concat([tf.fill([rows, 1], vocab.BOS_ID), pieces], 1)
        target_out = tf.concat([pieces, tf.fill([rows, 1], vocab.EOS_ID)], 1)
        target_in = target_in.to_tensor(vocab.PAD_ID)
        target_out = target_out.to_tensor(vocab.PAD_ID)
        logits = self.model((source, target_in), training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        token = tf.gather(log_probs, target_out, batch_dims=2)  # batch x tgt_len
        mask = target_out != vocab.PAD_ID
        return {"scores": tf.reduce_sum(tf.where(mask, token, 0.0), axis=1)}

    @tf.function(input_signature=[_STRINGS])
    def align(self, inputs):
        source, budget, state = self._start(inputs)
        hyps = search.greedy_search(
            self.model.step, state, budget, alignment_fn=self.model.alignment, **_IDS
        )
        ids, lengths = hyps.ids[:, 0], hyps.lengths[:, 0]
        target_mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        source_mask = source != vocab.PAD_ID
        return {
            "translations": self.decode_ids(hyps.ids, hyps.lengths)[:, 0],
            "source_pieces": self._pieces(source, source_mask),
            "target_pieces": self._pieces(ids, target_mask),
            "alignments": hyps.alignments[:, 0] * tf.cast(target_mask[:, :, None], tf.float32),
        }

    def _pieces(self, ids, mask):
        """Piece strings for ids `[batch, len]`, "" where the mask is off."""
        pieces = self.tokenizer.id_to_string(ids)
        return tf.where(mask, pieces, "")

    def signature_functions(self) -> dict:
        """Signature name -> tf.function, callable in process with the signature's
        keyword arguments (what training's dev evaluation and `evaluate --workdir` use)."""
        return {name: getattr(self, method) for name, method in SIGNATURES.items()}

    def export_signatures(self) -> dict:
        """The concrete functions exported as SavedModel signatures."""
        return {
            name: function.get_concrete_function()
            for name, function in self.signature_functions().items()
        }
