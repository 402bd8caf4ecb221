"""Stacked LSTM decoder with Luong attention and input feeding.

Two entry points share one set of weights and one step body (`_advance`):
`call` runs a whole target sequence under teacher forcing (training), `step`
runs one token (search). Everything the step needs (encoder memory, its keys
and mask, the cell states, the input-feed vector) travels in the state dict,
so search can tile, gather and export it without touching the layer. The
state also carries the last step's attention weights under "alignment"
(`[batch, src_len]`), which search reads for coverage penalties and alignments.

Per step (Luong et al., 2015, with input feeding):
    x_t  = [embed(y_{t-1}); a_{t-1}]
    h_t  = LSTM stack(x_t)
    c_t  = attention(h_t, memory)
    a_t  = tanh(W_c [c_t; h_t])
    p_t  = softmax(W_o a_t)
The embedding part of x_t W for all steps is one matmul before the loop; the
output projection of all steps is one matmul after it.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from seq2seq_tf.attention import make_attention
from seq2seq_tf.cells import LSTMCell


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class AttentionDecoder(keras.layers.Layer):
    """Args:
    vocab_size: target vocabulary size.
    embedding_dim: embedding width.
    num_layers: stacked LSTM layers.
    units: units of each layer.
    attention_units: width of the attention vector a_t.
    dropout: dropout on embeddings, between layers and on a_t before the output.
    **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        num_layers: int,
        units: int,
        attention_units: int,
        attention_scaled: bool = True,
        dropout: float = 0.0,
        attention_type: str = "luong_general",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.units = units
        self.attention_units = attention_units
        self.attention_scaled = attention_scaled
        self.attention_type = attention_type
        self.dropout = dropout
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        # One attribute per cell: TF checkpoints do not see layers held in Keras lists.
        for i in range(num_layers):
            setattr(self, f"cell_{i}", LSTMCell(units, name=f"cell_{i}"))
        self.cells = tuple(getattr(self, f"cell_{i}") for i in range(num_layers))
        self.attention = make_attention(attention_type, units, attention_scaled)
        self.attention_layer = keras.layers.Dense(
            attention_units, activation="tanh", use_bias=False, name="attention_layer"
        )
        self.output_layer = keras.layers.Dense(vocab_size, name="output_layer")
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, memory_dim: int):
        """Builds all weights; `memory_dim` is the encoder output width."""
        self.embedding.build((None,))
        self.cells[0].build((None, self.embedding_dim + self.attention_units))
        for cell in self.cells[1:]:
            cell.build((None, self.units))
        self.attention.build((None, None, memory_dim))
        self.attention_layer.build((None, memory_dim + self.units))
        self.output_layer.build((None, self.attention_units))
        self.built = True

    def initial_state(self, memory, mask, cell_states) -> dict:
        """The decoder state before the first target token.

        Args:
            memory: `[batch, src_len, mem_dim]` encoder outputs.
            mask: `[batch, src_len]` bool.
            cell_states: per layer `(h, c)`, each `[batch, units]` (from the bridge).
        """
        batch = ops.shape(memory)[0]
        return {
            "cells": [tuple(s) for s in cell_states],
            "feed": ops.zeros((batch, self.attention_units), dtype=memory.dtype),
            "memory": memory,
            "keys": self.attention.prepare(memory),  # batch x src_len x units
            "mask": mask,
            "alignment": ops.zeros(ops.shape(mask), dtype=memory.dtype),  # last step's weights
        }

    def _embed_projection(self, ids, training):
        """Embedding part of the first layer's input projection: `[..., 4 * units]`."""
        emb = self.dropout_layer(self.embedding(ids), training=training)
        kernel = self.cells[0].kernel[: self.embedding_dim]
        return ops.matmul(emb, kernel) + self.cells[0].bias

    def _advance(self, embed_projection, state, training):
        """One decoder step from the embedding projection; returns (a_t, new state, weights)."""
        feed_kernel = self.cells[0].kernel[self.embedding_dim :]
        z = embed_projection + ops.matmul(state["feed"], feed_kernel)
        x, first = self.cells[0].recurrent_step(z, state["cells"][0])
        new_cells = [tuple(first)]
        for cell, cell_state in zip(self.cells[1:], state["cells"][1:]):
            x, new = cell(self.dropout_layer(x, training=training), cell_state)
            new_cells.append(tuple(new))
        context, weights = self.attention(x, state["keys"], state["memory"], state["mask"])
        feed = self.attention_layer(ops.concatenate([context, x], axis=-1))  # batch x attn_units
        new_state = {**state, "cells": new_cells, "feed": feed, "alignment": weights}
        return feed, new_state, weights

    def step(self, ids, state, training=False):
        """One token: ids `[batch]` -> logits `[batch, vocab]`, new state."""
        feed, state, _ = self._advance(self._embed_projection(ids, training), state, training)
        logits = self.output_layer(self.dropout_layer(feed, training=training))
        return logits, state

    def call(self, target_in, state, training=None):
        """Teacher forcing: target_in `[batch, tgt_len]` -> logits `[batch, tgt_len, vocab]`."""
        projected = self._embed_projection(target_in, training)  # batch x tgt_len x 4*units
        projected = tf.transpose(projected, [1, 0, 2])  # time-major for the loop
        steps = tf.shape(projected)[0]
        feeds = tf.TensorArray(projected.dtype, size=steps)

        def body(t, loop_state, feeds):
            feed, loop_state, _ = self._advance(projected[t], loop_state, training)
            return t + 1, loop_state, feeds.write(t, feed)

        _, _, feeds = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), state, feeds),
            maximum_iterations=steps,  # lets XLA size the TensorArray
        )
        feeds = tf.transpose(feeds.stack(), [1, 0, 2])  # batch x tgt_len x attn_units
        return self.output_layer(self.dropout_layer(feeds, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "num_layers": self.num_layers,
            "units": self.units,
            "attention_units": self.attention_units,
            "attention_scaled": self.attention_scaled,
            "attention_type": self.attention_type,
            "dropout": self.dropout,
        }
