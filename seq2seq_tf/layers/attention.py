"""Attention mechanisms: Luong dot/general/concat and Bahdanau (plain or normalized).

Every mechanism splits its work the same way: `prepare(memory)` projects the
encoder memory once per source into keys, and each decoder step scores one
query against those keys, so a step costs a batched matvec (multiplicative
scores) or one `[batch, src_len, units]` tanh (additive scores). The masked
softmax and the weighted sum are shared: padding gets the dtype's lowest score
before the softmax (finite in float16/bfloat16) and the weights are multiplied
by the mask after it, so padding weights are exactly 0.

Where attention sits (after the top layer, Luong; or from the previous state,
Bahdanau) is the decoder's choice, not the mechanism's.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

ATTENTION_TYPES = ("luong_dot", "luong_general", "luong_concat", "bahdanau", "bahdanau_normalized")


class _Attention(keras.layers.Layer):
    """Shared masked softmax and context; subclasses define `prepare` and `score`."""

    def prepare(self, memory):
        """Keys for all source positions: `[batch, src_len, mem_dim]` -> `[batch, src_len, k]`."""
        raise NotImplementedError

    def score(self, query, keys):
        """Scores `[batch, src_len]` of a query `[batch, query_dim]` against the keys."""
        raise NotImplementedError

    def call(self, query, keys, memory, mask):
        """One attention read.

        Args:
            query: `[batch, query_dim]`.
            keys: `[batch, src_len, k]` from `prepare`.
            memory: `[batch, src_len, mem_dim]`.
            mask: `[batch, src_len]` bool, True on real tokens.

        Returns:
            context `[batch, mem_dim]` and weights `[batch, src_len]`.
        """
        scores = self.score(query, keys)  # batch x src_len
        weights = _masked_softmax(scores, mask, memory.dtype)
        # Batched matmuls, not einsum: TF's einsum and its gradient transpose
        # their operands at every decoder step (measured 1.3-1.6x slower here).
        context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), memory), 1)
        return context, weights

    def grouped_score(self, queries, keys):
        """Scores `[batch, G, src_len]` of G queries `[batch, G, query_dim]` per memory."""
        raise NotImplementedError

    def call_grouped(self, query, keys, memory, mask):
        """`call` where G consecutive queries share one memory (beam search keeps a
        sentence's memory once for its G beams): one `[G, query_dim] x [query_dim,
        src_len]` product per memory instead of G matrix-vector ones.

        Args:
            query: `[batch * G, query_dim]`, the rows of each memory together.
            keys, memory, mask: `[batch, ...]` as in `call`.

        Returns:
            context `[batch * G, mem_dim]` and weights `[batch * G, src_len]`.
        """
        batch = ops.shape(keys)[0]
        queries = ops.reshape(query, (batch, -1, ops.shape(query)[-1]))  # batch x G x q
        scores = self.grouped_score(queries, keys)  # batch x G x src_len
        weights = _masked_softmax(scores, mask[:, None, :], memory.dtype)
        context = ops.matmul(weights, memory)  # batch x G x mem_dim
        return (
            ops.reshape(context, (-1, ops.shape(memory)[-1])),
            ops.reshape(weights, (-1, ops.shape(keys)[1])),
        )


def _masked_softmax(scores, mask, dtype):
    """Softmax over the last axis with padding at exactly 0 (see the module docstring)."""
    lowest = ops.convert_to_tensor(-1e9 if scores.dtype == "float32" else -3e4, scores.dtype)
    scores = ops.where(mask, scores, lowest)
    weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
    return ops.cast(weights * ops.cast(mask, "float32"), dtype)


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class LuongAttention(_Attention):
    """Luong et al. (2015) scores of the decoder state h_t against encoder states h_s.

    dot:     score = g * h_t . h_s                (memory width must equal query_dim)
    general: score = g * h_t . (W_a h_s)
    concat:  score = v . tanh(W_a h_s + U_a h_t)

    With `scaled`, g is a learned scalar that starts at 1/sqrt(query_dim), so the
    softmax starts soft and sharpens as alignments form (otherwise g = 1).
    Unscaled, scores over a few hundred dimensions reach tens early in
    training, the weights go one-hot on a summary position (the final "." or
    EOS) and get too little gradient to move: on the toy corpus that run
    stalled at 17% exact match, against 99.9% scaled.

    Args:
        query_dim: size of the decoder state h_t.
        score_type: "dot", "general" or "concat".
        scaled: learn the scale g (dot and general only).
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, query_dim: int, score_type: str = "general", scaled: bool = True, **kwargs):
        super().__init__(**kwargs)
        if score_type not in ("dot", "general", "concat"):
            raise ValueError(f"LuongAttention score_type must be dot, general or concat, "
                             f"got {score_type!r}")  # fmt: skip
        self.query_dim = query_dim
        self.score_type = score_type
        self.scaled = scaled
        if score_type != "dot":
            self.memory_layer = keras.layers.Dense(
                query_dim, use_bias=False, dtype=self.dtype_policy, name="memory_layer"
            )
        if score_type == "concat":
            self.query_layer = keras.layers.Dense(
                query_dim, use_bias=False, dtype=self.dtype_policy, name="query_layer"
            )

    def build(self, memory_shape):
        if self.score_type == "dot" and memory_shape[-1] != self.query_dim:
            raise ValueError(
                f"dot attention needs memory width {memory_shape[-1]} == query width "
                f"{self.query_dim}; use general or concat"
            )
        if self.score_type != "dot":
            self.memory_layer.build(memory_shape)
        if self.score_type == "concat":
            self.query_layer.build((None, self.query_dim))
            self.v = self.add_weight(shape=(self.query_dim,), name="v")
        elif self.scaled:
            self.score_scale = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(self.query_dim**-0.5),
                name="score_scale",
            )
        self.built = True

    def prepare(self, memory):
        return memory if self.score_type == "dot" else self.memory_layer(memory)

    def score(self, query, keys):
        if self.score_type == "concat":
            hidden = ops.tanh(keys + ops.expand_dims(self.query_layer(query), 1))
            return ops.einsum("bsd,d->bs", hidden, ops.cast(self.v, hidden.dtype))
        scores = ops.squeeze(ops.matmul(keys, ops.expand_dims(query, -1)), -1)  # batch x src_len
        if self.scaled:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        return scores

    def grouped_score(self, queries, keys):
        if self.score_type == "concat":
            hidden = ops.tanh(ops.expand_dims(keys, 1) + self.query_layer(queries)[:, :, None])
            return ops.einsum("bgsd,d->bgs", hidden, ops.cast(self.v, hidden.dtype))
        scores = tf.linalg.matmul(queries, keys, transpose_b=True)  # batch x G x src_len
        if self.scaled:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        return scores

    def get_config(self):
        return {
            **super().get_config(),
            "query_dim": self.query_dim,
            "score_type": self.score_type,
            "scaled": self.scaled,
        }


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class BahdanauAttention(_Attention):
    """Additive attention (Bahdanau et al., 2015): score = v . tanh(W h_s + U q + b).

    With `normalized` (weight normalization, Salimans & Kingma 2016, as tfa's
    `normalize=True`): v is replaced by g * v / ||v|| with a learned scalar g
    starting at sqrt(1 / units), and the tanh gets a bias b.

    Args:
        units: width of the additive hidden layer.
        normalized: weight-normalize v and add the bias.
        query_dim: width of the query (default: units).
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(
        self, units: int, normalized: bool = False, query_dim: int | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.units = units
        self.normalized = normalized
        self.query_dim = query_dim or units
        self.memory_layer = keras.layers.Dense(
            units, use_bias=False, dtype=self.dtype_policy, name="memory_layer"
        )
        self.query_layer = keras.layers.Dense(
            units, use_bias=False, dtype=self.dtype_policy, name="query_layer"
        )

    def build(self, memory_shape):
        self.memory_layer.build(memory_shape)
        self.query_layer.build((None, self.query_dim))
        self.v = self.add_weight(shape=(self.units,), name="v")
        if self.normalized:
            self.g = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant((1.0 / self.units) ** 0.5),
                name="g",
            )
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")
        self.built = True

    def prepare(self, memory):
        keys = self.memory_layer(memory)
        return keys + ops.cast(self.b, keys.dtype) if self.normalized else keys

    def score(self, query, keys):
        hidden = ops.tanh(keys + ops.expand_dims(self.query_layer(query), 1))
        return ops.einsum("bsd,d->bs", hidden, self._v(hidden.dtype))

    def grouped_score(self, queries, keys):
        hidden = ops.tanh(ops.expand_dims(keys, 1) + self.query_layer(queries)[:, :, None])
        return ops.einsum("bgsd,d->bgs", hidden, self._v(hidden.dtype))

    def _v(self, dtype):
        v = self.v
        if self.normalized:
            v = self.g * v / ops.sqrt(ops.sum(ops.square(v)))
        return ops.cast(v, dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "normalized": self.normalized,
            "query_dim": self.query_dim,
        }


def make_attention(
    attention_type: str, query_dim: int, scaled: bool = True, **kwargs
) -> _Attention:
    """The mechanism named in `model.attention` (one of ATTENTION_TYPES).

    `kwargs` go to the layer (for example a dtype policy such as "mixed_bfloat16").
    """
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(f"unknown attention {attention_type!r}; expected one of {ATTENTION_TYPES}")
    kwargs.setdefault("name", "attention")
    if attention_type.startswith("luong_"):
        return LuongAttention(query_dim, attention_type[6:], scaled, **kwargs)
    return BahdanauAttention(
        query_dim, normalized=attention_type == "bahdanau_normalized", **kwargs
    )
