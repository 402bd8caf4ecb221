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
from seq2seq_tf.cells import (
    DeferredKernel,
    gradient_sink,
    loop_matmul,
    make_cell,
    pretransposed,
)

PLACEMENTS = ("luong", "bahdanau", "gnmt")


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class AttentionDecoder(keras.layers.Layer):
    """Args:
    vocab_size: target vocabulary size.
    embedding_dim: embedding width.
    num_layers: stacked recurrent layers.
    units: units of each layer.
    attention_units: width of the attention vector a_t.
    attention_scaled: learn a scale for dot/general scores (starts at 1/sqrt(units)).
    dropout: dropout on embeddings, between layers and on a_t before the output.
    attention_type: one of attention.ATTENTION_TYPES (scores against the top layer's h_t).
    cell_type: recurrent cell of every layer (see cells.make_cell).
    input_feeding: feed a_{t-1} to the first layer with the embedding (Luong, GNMT).
    residual: add each layer's input to its output from the second layer up (GNMT).
    tie_embeddings: the output projection reuses the target embedding matrix
        (needs attention_units == embedding_dim).
    placement: where attention sits. "luong": the top layer's h_t queries the
        memory after the stack. "bahdanau": the previous top state h_{t-1}
        queries it before the stack and the context joins the first layer's
        input. "gnmt": the bottom layer's output queries it and the context
        joins the input of every layer above (Wu et al., 2016); with input
        feeding the bottom layer also sees a_{t-1}, as in tensorflow/nmt's GNMT
        cell. "bahdanau" does not use input feeding.
    recurrent_dropout: variational dropout on h_{t-1} of every layer: one mask per
        sentence, drawn once per training call and reused at every step.
    embedding: an Embedding layer to use (shared with the encoder), or None for its own.
    **kwargs: forwarded to `keras.layers.Layer`.
    """

    # State entries that stay the same within a sentence (beam search never reorders them).
    BEAM_INVARIANT = ("memory", "keys", "mask")

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
        cell_type: str = "lstm",
        input_feeding: bool = True,
        residual: bool = False,
        tie_embeddings: bool = False,
        embedding: keras.layers.Embedding | None = None,
        placement: str = "luong",
        recurrent_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        if placement == "bahdanau" and input_feeding:
            raise ValueError(f"{placement} attention placement does not use input feeding")
        if tie_embeddings and attention_units != embedding_dim:
            raise ValueError(
                f"tie_embeddings needs attention_units ({attention_units}) == "
                f"embedding_dim ({embedding_dim})"
            )
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.units = units
        self.attention_units = attention_units
        self.attention_scaled = attention_scaled
        self.attention_type = attention_type
        self.dropout = dropout
        self.cell_type = cell_type
        self.input_feeding = input_feeding
        self.residual = residual
        self.tie_embeddings = tie_embeddings
        self.placement = placement
        self.recurrent_dropout = recurrent_dropout
        self.embedding = embedding or keras.layers.Embedding(
            vocab_size, embedding_dim, name="embedding"
        )
        # One attribute per cell: TF checkpoints do not see layers held in Keras lists.
        for i in range(num_layers):
            cell = make_cell(
                cell_type, units, recurrent_dropout=recurrent_dropout, name=f"cell_{i}"
            )
            setattr(self, f"cell_{i}", cell)
        self.cells = tuple(getattr(self, f"cell_{i}") for i in range(num_layers))
        self.attention = make_attention(attention_type, units, attention_scaled)
        self.attention_layer = keras.layers.Dense(
            attention_units, activation="tanh", use_bias=False, name="attention_layer"
        )
        if not tie_embeddings:
            self.output_layer = keras.layers.Dense(vocab_size, name="output_layer")
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, memory_dim: int):
        """Builds all weights; `memory_dim` is the encoder output width."""
        self.embedding.build((None,))
        self._memory_dim = memory_dim
        self.cells[0].build((None, self.embedding_dim + self._step_input_width()))
        upper = self.units + (memory_dim if self.placement == "gnmt" else 0)
        for cell in self.cells[1:]:
            cell.build((None, upper))
        self.attention.build((None, None, memory_dim))
        self.attention_layer.build((None, memory_dim + self.units))
        if self.tie_embeddings:
            self.output_bias = self.add_weight(
                shape=(self.vocab_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.output_layer.build((None, self.attention_units))
        self.built = True

    def initial_state(self, memory, mask, cell_states) -> dict:
        """The decoder state before the first target token.

        Args:
            memory: `[batch, src_len, mem_dim]` encoder outputs.
            mask: `[batch, src_len]` bool.
            cell_states: per layer a tuple of the cell's states, each `[batch, units]`.
        """
        batch = ops.shape(memory)[0]
        return {
            "cells": [tuple(s) for s in cell_states],
            "feed": ops.zeros((batch, self.attention_units), dtype=memory.dtype),
            "memory": memory,
            "keys": self.attention.prepare(memory),  # batch x src_len x k
            "mask": mask,
            "alignment": ops.zeros(ops.shape(mask), dtype=memory.dtype),  # last step's weights
        }

    def _hoisted(self) -> bool:
        """Whether the embedding part of the first projection can leave the loop."""
        return getattr(self.cells[0], "affine_inputs", True)

    def _embed(self, ids, training):
        """Embeddings, and their part of the first layer's input projection when hoisted.

        For cells whose input projection is affine (x W + b), [e; f] W + b splits
        into e W_e + b, computed for all steps at once, and f W_f per step.
        """
        emb = self.dropout_layer(self.embedding(ids), training=training)
        cell = self.cells[0]
        if not self._hoisted():
            return emb
        if not self._step_input_width():
            return cell.project_inputs(emb)
        kernel = ops.cast(cell.kernel[: self.embedding_dim], emb.dtype)
        return ops.matmul(emb, kernel) + ops.cast(cell.input_bias, emb.dtype)

    def _step_input_width(self) -> int:
        """Width of what joins the embedding at the first layer each step (0: nothing)."""
        if self.placement == "bahdanau":
            return self._memory_dim
        return self.attention_units if self.input_feeding else 0

    def _loop_kernels(self, dtype) -> dict:
        """Every kernel the training loop multiplies by, with its transpose, made once.

        Handed to the step body so the loop's backward pass multiplies by stored
        transposes (see `cells.matmul_pretransposed`); the step path (search)
        passes none and multiplies directly. When every product is added straight
        into a pre-activation (affine first layer, LSTM or SimpleRNN cells), each
        is a `cells.DeferredKernel`: its weight gradient is one matmul after the loop.
        """

        def pair(kernel):
            return pretransposed(ops.cast(kernel, dtype))

        first = self.cells[0]
        kernels = {
            "recurrent": [cell.loop_kernels(dtype) for cell in self.cells],
            "inputs": [pair(cell.kernel) for cell in self.cells[1:]],
            "attention_layer": pair(self.attention_layer.kernel),
        }
        if self._hoisted() and self._step_input_width():
            kernels["first_extra"] = pair(first.kernel[self.embedding_dim :])
        if self._hoisted() and all(cell.additive_recurrence for cell in self.cells):
            kernels = {
                name: [DeferredKernel(*p) for p in value]
                if isinstance(value, list)
                else DeferredKernel(*value)
                for name, value in kernels.items()
            }
        return kernels

    def _first_layer(self, embedded, extra, state, mask, kernels):
        """Runs the first layer on [embedding; extra] (extra None: embedding only)."""
        first = self.cells[0]
        if not self._hoisted():
            x = embedded if extra is None else ops.concatenate([embedded, extra], axis=-1)
            z = first.project_inputs(x)
        elif extra is not None and kernels:
            z = embedded + loop_matmul(extra, None, kernels["first_extra"])
        elif extra is not None:
            kernel = ops.cast(first.kernel[self.embedding_dim :], embedded.dtype)
            z = embedded + ops.matmul(extra, kernel)
        else:
            z = embedded
        recurrent = kernels and kernels["recurrent"][0]
        return first.recurrent_step(z, list(state["cells"][0]), mask, kernels=recurrent)

    def _attend(self, query, state):
        return self.attention(query, state["keys"], state["memory"], state["mask"])

    def _advance(self, embedded, state, training, masks=None, kernels=None, sinks=None):
        """One decoder step from `_embed`'s output; returns (a_t, new state, weights).

        `masks`: per layer a recurrent dropout mask `[batch, units]` or None.
        `kernels`: `_loop_kernels()` inside a training loop, else None.
        `sinks`: with deferred kernels, this step's zeros (`cells.gradient_sink`) to add
            to the upper layers' and the attention layer's pre-activations.
        """
        masks = masks or [None] * self.num_layers
        if self.placement == "bahdanau":
            context, weights = self._attend(state["cells"][-1][0], state)  # previous top h
            x, new = self._first_layer(embedded, context, state, masks[0], kernels)
        else:
            feed = state["feed"] if self.input_feeding else None
            x, new = self._first_layer(embedded, feed, state, masks[0], kernels)
        new_cells = [tuple(new)]
        if self.placement == "gnmt":
            context, weights = self._attend(x, state)  # bottom layer's output
        for i, (cell, cell_state, mask) in enumerate(
            zip(self.cells[1:], state["cells"][1:], masks[1:]), start=1
        ):
            inputs = self.dropout_layer(x, training=training)
            if self.placement == "gnmt":
                inputs = ops.concatenate([inputs, context], axis=-1)
            projected = cell.project_inputs(inputs, kernels and kernels["inputs"][i - 1])
            if sinks:
                projected = projected + sinks["layers"][i - 1]
            recurrent = kernels and kernels["recurrent"][i]
            out, new = cell.recurrent_step(projected, list(cell_state), mask, kernels=recurrent)
            x = out + x if self.residual else out
            new_cells.append(tuple(new))
        if self.placement == "luong":
            context, weights = self._attend(x, state)
        feed = self._attention_vector(
            ops.concatenate([context, x], axis=-1), kernels, sinks and sinks["attention"]
        )
        new_state = {**state, "cells": new_cells, "feed": feed, "alignment": weights}
        return feed, new_state, weights

    def _attention_vector(self, joined, kernels, sink=None):
        """a_t = tanh(W_c [c_t; h_t]) (the `attention_layer`, by hand inside a training loop)."""
        if kernels is None:
            return self.attention_layer(joined)
        pre = loop_matmul(joined, self.attention_layer.kernel, kernels["attention_layer"])
        return ops.tanh(pre if sink is None else pre + sink)

    def output_logits(self, feed, training=None):
        """Logits `[..., vocab]` of attention vectors `[..., attention_units]`."""
        feed = self.dropout_layer(feed, training=training)
        if self.tie_embeddings:
            matrix = ops.cast(self.embedding.embeddings, feed.dtype)
            return ops.matmul(feed, ops.transpose(matrix)) + ops.cast(self.output_bias, feed.dtype)
        return self.output_layer(feed)

    def step(self, ids, state, training=False):
        """One token: ids `[batch]` -> logits `[batch, vocab]`, new state."""
        feed, state, _ = self._advance(self._embed(ids, training), state, training)
        return self.output_logits(feed, training), state

    def call(self, target_in, state, training=None):
        """Teacher forcing: target_in `[batch, tgt_len]` -> logits `[batch, tgt_len, vocab]`."""
        feeds = tf.transpose(self.features(target_in, state, training), [1, 0, 2])
        return self.output_logits(feeds, training)

    def features(self, target_in, state, training=None):
        """Teacher forcing up to the output layer: target_in `[batch, tgt_len]` -> the
        attention vectors, time-major `[tgt_len, batch, attention_units]`.

        Training applies the output layer to the real tokens only (see
        `Seq2Seq.real_token_logits`), so the loop's time-major order is kept.
        """
        # Embedded time-major from transposed ids: transposing the (much wider)
        # projected embeddings, and back in the gradient, cost two passes.
        embedded = self._embed(tf.transpose(target_in), training)  # tgt_len x batch x gates
        steps = tf.shape(embedded)[0]
        feeds = tf.TensorArray(embedded.dtype, size=steps)
        batch = tf.shape(embedded)[1]
        masks = [cell.get_dropout_masks(batch, 1, training)[1] for cell in self.cells]
        kernels = self._loop_kernels(embedded.dtype) if training else None
        deferred = kernels is not None and isinstance(kernels["attention_layer"], DeferredKernel)
        groups, sinks = [], {}
        if deferred:
            # One gradient sink per pre-activation: the first layer's rides on the
            # hoisted embedding part, the others are read step by step.
            groups = [[kernels["recurrent"][0]]]
            if "first_extra" in kernels:
                groups[0].append(kernels["first_extra"])
            embedded = embedded + gradient_sink(groups[0], tf.shape(embedded), embedded.dtype)
            groups += [[k, r] for k, r in zip(kernels["inputs"], kernels["recurrent"][1:])]
            groups.append([kernels["attention_layer"]])

            def sink_steps(group):
                shape = [steps, batch, tf.shape(group[0].kernel)[1]]
                zeros = gradient_sink(group, shape, embedded.dtype)
                return tf.TensorArray(embedded.dtype, size=steps).unstack(zeros)

            sinks = {
                "layers": [sink_steps(g) for g in groups[1:-1]],
                "attention": sink_steps(groups[-1]),
            }
        # Read through a TensorArray: the gradient of embedded[t] would build a
        # full-size zero tensor at every step.
        inputs = tf.TensorArray(embedded.dtype, size=steps).unstack(embedded)
        recorded = [k for group in groups for k in group]
        records = [tf.TensorArray(embedded.dtype, size=steps) for _ in recorded]

        def body(t, loop_state, feeds, records):
            embedded_t = inputs.read(t)
            sinks_t = tf.nest.map_structure(lambda ta: ta.read(t), sinks) if deferred else None
            feed, loop_state, _ = self._advance(
                embedded_t, loop_state, training, masks, kernels, sinks_t
            )
            records = [ta.write(t, k.recorded) for ta, k in zip(records, recorded)]
            return t + 1, loop_state, feeds.write(t, feed), records

        _, _, feeds, records = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), state, feeds, records),
            maximum_iterations=steps,  # lets XLA size the TensorArray
        )
        for kernel, ta in zip(recorded, records):
            kernel.inputs = tf.stop_gradient(ta.stack())  # [steps, batch, in], as the sinks
        return feeds.stack()  # tgt_len x batch x attn_units

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
            "cell_type": self.cell_type,
            "input_feeding": self.input_feeding,
            "residual": self.residual,
            "tie_embeddings": self.tie_embeddings,
            "placement": self.placement,
            "recurrent_dropout": self.recurrent_dropout,
        }
