"""The language model's serving module: tokenizer + model + sampling as one tf.Module.

Raw strings in, texts and log-probabilities out; a SavedModel of it runs with
nothing but `tensorflow` imported (and `tensorflow_text` for a SentencePiece
model). Every text starts after BOS, as the training stream does: `generate`
feeds BOS, then the prime, then samples; `score` gives log p(text | BOS).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.data import vocab
from seq2seq_tf.search import samplers
from seq2seq_tf.serving.checks import check_utf8

# Signature name -> Generator method.
SIGNATURES = {"generate": "generate", "score": "score"}
MAX_LENGTH = 100_000  # most tokens one `generate` call produces per prime
_STRINGS = tf.TensorSpec([None], tf.string)
_INT = tf.TensorSpec([], tf.int32)
_FLOAT = tf.TensorSpec([], tf.float32)
_NO_END = -1  # a language model's text has no end token: it stops at `length`


def chooser(temperature, top_k, top_p, seed):
    """The next-token choice of `generate`: greedy (argmax) when temperature is 0, else a
    draw after temperature, top-k and top-p (see `search.samplers`)."""
    draw = samplers.sampler(temperature, top_k, top_p, seed)
    greedy = samplers.Greedy()
    temperature = tf.convert_to_tensor(temperature, tf.float32)

    def choose(t, log_probs):
        return tf.cond(temperature > 0, lambda: draw(t, log_probs), lambda: greedy(t, log_probs))

    return choose


class Generator(tf.Module):
    """Sampling and scoring with a `models.LanguageModel`, as one exportable module.

    Signatures (raw UTF-8 strings: bytes that are not UTF-8 fail the request with an
    InvalidArgumentError naming the rows, as in translation; unknown characters
    take the unknown id, never an error):
        generate(primes [batch], length, temperature, top_k, top_p, seed) ->
            texts [batch] (the continuation only, `length` tokens after the prime),
            log_probs [batch] (the model's log-probability of the continuation given
            the prime, over the tokens sampling may draw: the special ids, which
            are never drawn, are left out of the softmax).
            temperature 0 means greedy (argmax; top_k, top_p and seed are then unused);
            top_k 0 and top_p 1 turn those filters off; the same seed gives the same
            texts. A prime longer than `max_prime_tokens` keeps its last that many.
            Out-of-range arguments (length outside [0, MAX_LENGTH], temperature < 0,
            top_k < 0, top_p outside (0, 1]) raise InvalidArgumentError naming them.
        score(texts [batch]) -> log_prob [batch] (natural log of p(text | BOS), every
            token scored) and bits_per_char [batch] (-log_prob / ln 2 / characters of
            the text; 0 for an empty text).

    The special ids (pad, unk, bos, eos) are never sampled.

    Args:
        model: the language model.
        tokenizer: a `vocab.CharTokenizer` or tensorflow_text SentencepieceTokenizer.
        max_prime_tokens: the longest prime kept (its end).
        spm_model_path: the SentencePiece model file, kept as an asset (None for characters).
    """

    def __init__(
        self,
        model: keras.Model,
        tokenizer,
        max_prime_tokens: int = 2000,
        spm_model_path: str | None = None,
    ):
        super().__init__(name="generator")
        self.model = model
        self.tokenizer = tokenizer
        if spm_model_path:
            self.spm_model = tf.saved_model.Asset(spm_model_path)  # travels in assets/
        self._max_prime = int(max_prime_tokens)
        special = tf.range(model.vocab_size) < vocab.CHAR_SPECIALS
        self._never = tf.where(special, -1e9, 0.0)  # added to the logits when sampling

    def _step(self, ids, state):
        logits, state = self.model.step(ids, state)
        return tf.cast(logits, tf.float32) + self._never, state

    def encode_primes(self, primes):
        """Strings `[batch]` -> ids `[batch, len]` (the last max_prime_tokens), PAD after."""
        ids = self.tokenizer.tokenize(primes)
        return ids[:, -self._max_prime :].to_tensor(vocab.PAD_ID)

    @staticmethod
    def _check_arguments(length, temperature, top_k, top_p):
        return [
            tf.debugging.assert_greater_equal(length, 0, message="generate: length must be >= 0"),
            tf.debugging.assert_less_equal(
                length, MAX_LENGTH, message=f"generate: length must be <= {MAX_LENGTH}"
            ),
            tf.debugging.assert_greater_equal(
                temperature, 0.0, message="generate: temperature must be >= 0 (0 = greedy)"
            ),
            tf.debugging.assert_greater_equal(
                top_k, 0, message="generate: top_k must be >= 0 (0 = no top-k filter)"
            ),
            tf.debugging.assert_greater(
                top_p, 0.0, message="generate: top_p must be in (0, 1] (1 = no top-p filter)"
            ),
            tf.debugging.assert_less_equal(
                top_p, 1.0, message="generate: top_p must be in (0, 1] (1 = no top-p filter)"
            ),
        ]

    @tf.function(input_signature=[_STRINGS, _INT, _FLOAT, _INT, _FLOAT, _INT])
    def generate(self, primes, length, temperature, top_k, top_p, seed):
        checks = self._check_arguments(length, temperature, top_k, top_p)
        with tf.control_dependencies([*checks, check_utf8(primes, "primes")]):
            primes = tf.identity(primes)
        empty = {"texts": tf.zeros([0], tf.string), "log_probs": tf.zeros([0], tf.float32)}
        return tf.cond(  # search cannot size its buffers for an empty batch
            tf.size(primes) > 0,
            lambda: self._generate(primes, length, temperature, top_k, top_p, seed),
            lambda: empty,
        )

    def _generate(self, primes, length, temperature, top_k, top_p, seed):
        prompt = self.encode_primes(primes)
        batch = tf.shape(primes)[0]
        hyps = search.decode(
            self._step,
            self.model.initial_state(batch),
            tf.fill([batch], length),
            chooser(temperature, top_k, top_p, seed),
            start_id=vocab.BOS_ID,
            end_id=_NO_END,
            pad_id=vocab.PAD_ID,
            prompt=prompt,
        )
        ids = hyps.ids[:, 0]  # batch x steps: the prime's tokens, then the continuation
        prompted = tf.reduce_sum(tf.cast(prompt != vocab.PAD_ID, tf.int32), axis=1)
        position = tf.range(tf.shape(ids)[1])[None]
        new = (position >= prompted[:, None]) & (position < (prompted + length)[:, None])
        texts = self.tokenizer.detokenize(tf.ragged.boolean_mask(ids, new))
        return {"texts": tf.reshape(texts, [batch]), "log_probs": hyps.log_probs[:, 0]}

    @tf.function(input_signature=[_STRINGS])
    def score(self, texts):
        with tf.control_dependencies([check_utf8(texts, "texts")]):
            texts = tf.identity(texts)
        tokens = self.tokenizer.tokenize(texts)
        rows = tokens.nrows()
        inputs = tf.concat([tf.fill([rows, 1], vocab.BOS_ID), tokens], axis=1)
        inputs = inputs.to_tensor(vocab.PAD_ID)[:, :-1]  # BOS + all but the last token
        targets = tokens.to_tensor(vocab.PAD_ID, shape=tf.shape(inputs))

        def model_log_prob():
            logits = self.model(inputs, training=False)
            log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
            token = tf.gather(log_probs, targets, batch_dims=2)  # batch x len
            real = tf.sequence_mask(tokens.row_lengths(), tf.shape(inputs)[1])
            return tf.reduce_sum(tf.where(real, token, 0.0), axis=1)

        # No token in the whole batch (empty texts or batch): nothing to score, and the
        # model's loop cannot stack zero steps.
        log_prob = tf.cond(
            tf.size(inputs) > 0, model_log_prob, lambda: tf.zeros([rows], tf.float32)
        )
        chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace").row_lengths()
        chars = tf.cast(chars, tf.float32)
        bits = tf.where(chars > 0, -log_prob / math.log(2.0) / tf.maximum(chars, 1.0), 0.0)
        return {"log_prob": log_prob, "bits_per_char": bits}

    def signature_functions(self) -> dict:
        """Signature name -> tf.function, callable in process with the signature's keywords."""
        return {name: getattr(self, method) for name, method in SIGNATURES.items()}
