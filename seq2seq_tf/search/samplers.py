"""How one next token is chosen from log-probabilities: small pieces that compose.

A sampler is `sampler(t, log_probs [batch, vocab]) -> ids [batch]`. `Greedy`
takes the argmax; `Random` draws from the distribution its filters leave
(temperature, top-k, top-p, applied in order), keyed by a seed and the step, so
the same seed gives the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from seq2seq_tf.search.common import NEG_INF


class Greedy:
    """The most likely token."""

    def __call__(self, t, log_probs):
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


class Temperature:
    """logits / T; towards 0 it approaches greedy, above 1 it flattens."""

    def __init__(self, temperature):
        self.temperature = tf.maximum(tf.cast(temperature, tf.float32), 1e-8)

    def __call__(self, logits):
        return logits / self.temperature


class TopK:
    """Keeps the k most likely tokens (ties at the k-th kept); k <= 0 keeps all."""

    def __init__(self, k):
        self.k = tf.cast(k, tf.int32)

    def __call__(self, logits):
        vocab = tf.shape(logits)[-1]
        k = tf.where(self.k > 0, tf.minimum(self.k, vocab), vocab)
        sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
        kth = tf.gather(sorted_logits, k - 1, axis=-1)[:, None]
        return tf.where(logits < kth, NEG_INF, logits)


class TopP:
    """Nucleus: the smallest set of most likely tokens whose probability reaches p."""

    def __init__(self, p):
        self.p = tf.cast(p, tf.float32)

    def __call__(self, logits):
        # Drop tokens once the mass before them already reaches p; the most likely
        # token always stays (at p <= 0 this is greedy, never an empty set).
        sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
        probs = tf.nn.softmax(sorted_logits, axis=-1)
        mass_before = tf.cumsum(probs, axis=-1, exclusive=True)
        first = tf.range(tf.shape(logits)[-1]) == 0
        kept = tf.where((mass_before < self.p) | first, sorted_logits, -NEG_INF)
        threshold = tf.reduce_min(kept, axis=-1, keepdims=True)
        return tf.where(logits < threshold, NEG_INF, logits)


class Random:
    """A draw from the filtered distribution (stateless, keyed by seed and step)."""

    def __init__(self, filters: Sequence = (), seed=0):
        self.filters = tuple(filters)
        self.seed = tf.cast(seed, tf.int32)

    def __call__(self, t, log_probs):
        logits = log_probs
        for keep in self.filters:
            logits = keep(logits)
        step_seed = tf.stack([self.seed, t])
        return tf.random.stateless_categorical(logits, 1, seed=step_seed, dtype=tf.int32)[:, 0]


def sampler(temperature=1.0, top_k=0, top_p=1.0, seed=0) -> Random:
    """Temperature, then top-k, then top-p: the usual ancestral sampler."""
    return Random([Temperature(temperature), TopK(top_k), TopP(top_p)], seed)
