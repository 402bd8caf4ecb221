"""Stacked RNN decoder: attention over a `Memory` when there is one, a plain RNN when not.

One step body (`_advance`) serves both entry points: `step` runs one token
(search), `forward` runs a whole sequence under teacher forcing from a given
state and returns the final one (training; a language model carries it into
the next window). Everything a step needs (the memory, its keys and mask, the
cell states, the input-feed vector) travels in the state dict, so search can
tile, gather and export it without touching the layer. With attention the
state also carries the last step's weights under "alignment" `[batch, src_len]`.

Per step, Luong placement with input feeding (Luong et al., 2015):
    x_t  = [embed(y_{t-1}); a_{t-1}]
    h_t  = RNN stack(x_t)
    c_t  = attention(h_t, memory)
    a_t  = tanh(W_c [c_t; h_t])
    p_t  = softmax(W_o a_t)
Without a memory: h_t = RNN stack(embed(y_{t-1})), p_t = softmax(W_o h_t).
The embedding part of x_t W for all steps is one matmul before the loop; the
output projection of all steps is one matmul after it. The loop's products go
through `layers.loop_ops.LoopKernels`, which makes them fast in training.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from seq2seq_tf.layers.attention import make_attention
from seq2seq_tf.layers.cells import make_cell
from seq2seq_tf.layers.loop_ops import LoopKernels
from seq2seq_tf.layers.memory import Memory

PLACEMENTS = ("luong", "bahdanau", "gnmt")
UNK_ID = 1  # data.vocab's; the column unscored labels map to (kept in every output_ids)


def _output_ids(ids, vocab_size: int) -> tuple[int, ...] | None:
    if ids is None or len(ids) == 0:
        return None
    ids = tuple(sorted({int(i) for i in ids}))
    if ids[0] < 0 or ids[-1] >= vocab_size or UNK_ID not in ids:
        raise ValueError(f"output_ids must be ids in [0, {vocab_size}) including UNK {UNK_ID}")
    return ids


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class RNNDecoder(keras.layers.Layer):
    """Args:
    vocab_size: target vocabulary size.
    embedding_dim: embedding width.
    num_layers: stacked recurrent layers.
    units: units of each layer.
    attention_type: one of attention.ATTENTION_TYPES (scores against the top
        layer's h_t), or None: no memory, a plain stacked RNN (language model).
    attention_units: width of the attention vector a_t.
    attention_scaled: learn a scale for dot/general scores (starts at 1/sqrt(units)).
    dropout: dropout on embeddings, between layers and on the output features.
    cell_type: recurrent cell of every layer (see cells.make_cell).
    input_feeding: feed a_{t-1} to the first layer with the embedding (Luong, GNMT).
    residual: add each layer's input to its output from the second layer up (GNMT).
    tie_embeddings: the output projection reuses the embedding matrix (needs the
        output features, attention_units or units without attention, ==
        embedding_dim).
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
    output_ids: the vocabulary ids the output layer scores (sorted; the pieces of
        the training targets and the specials), or None for all. Logits of the
        others are -inf (`full_logits`), so search and scores are exactly those
        of a full output layer with them masked, at K / vocab of its cost.
    context_gate: multiply the attention context by sigmoid(W q + b), q the query
        (Show, Attend and Tell's gate beta_t, here one gate per memory channel).
    word_dropout: in training, each input token of `forward` becomes UNK with this
        probability (Bowman et al., 2016), so predictions cannot lean on the previous
        word alone.
    **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        num_layers: int,
        units: int,
        attention_units: int = 0,
        attention_scaled: bool = True,
        dropout: float = 0.0,
        attention_type: str | None = "luong_general",
        cell_type: str = "lstm",
        input_feeding: bool = True,
        residual: bool = False,
        tie_embeddings: bool = False,
        embedding: keras.layers.Embedding | None = None,
        placement: str = "luong",
        recurrent_dropout: float = 0.0,
        context_gate: bool = False,
        output_ids: tuple[int, ...] | None = None,
        word_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        attends = attention_type is not None
        if attends and placement == "bahdanau" and input_feeding:
            raise ValueError(f"{placement} attention placement does not use input feeding")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.units = units
        self.attention_units = attention_units
        self.attention_scaled = attention_scaled
        self.attention_type = attention_type
        self.dropout = dropout
        self.cell_type = cell_type
        self.input_feeding = input_feeding and attends
        self.residual = residual
        self.tie_embeddings = tie_embeddings
        self.placement = placement
        self.recurrent_dropout = recurrent_dropout
        self.context_gate = context_gate and attends
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}")
        self.word_dropout = float(word_dropout)
        if self.word_dropout > 0:  # only then: dropout-free decoders keep their variables
            self.word_seed = keras.random.SeedGenerator(name="word_dropout_seed")
        self.output_dim = attention_units if attends else units  # width of the features
        if tie_embeddings and self.output_dim != embedding_dim:
            raise ValueError(
                f"tie_embeddings needs the output features ({self.output_dim}) == "
                f"embedding_dim ({embedding_dim})"
            )
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
        if attends:
            self.attention = make_attention(attention_type, units, attention_scaled)
            self.attention_layer = keras.layers.Dense(
                attention_units, activation="tanh", use_bias=False, name="attention_layer"
            )
        self.output_ids = _output_ids(output_ids, vocab_size)
        self.output_size = vocab_size if self.output_ids is None else len(self.output_ids)
        if not tie_embeddings:
            self.output_layer = keras.layers.Dense(self.output_size, name="output_layer")
        self.dropout_layer = keras.layers.Dropout(dropout)

    @property
    def attends(self) -> bool:
        return self.attention_type is not None

    @property
    def state_sizes(self) -> list[list[int]]:
        """Per layer the widths of its cell's states (what a bridge must produce)."""
        return [list(cell.state_size) for cell in self.cells]

    @property
    def beam_invariant(self) -> tuple[str, ...]:
        """State entries that never change within a sentence (search never reorders them)."""
        return ("memory", "keys", "mask") if self.attends else ()

    def build(self, memory_dim: int | None = None):
        """Builds all weights; `memory_dim` is the memory's width (None without attention)."""
        if self.attends and not memory_dim:
            raise ValueError("an attention decoder needs the memory width to build")
        self.embedding.build((None,))
        self._memory_dim = memory_dim if self.attends else 0
        self.cells[0].build((None, self.embedding_dim + self._step_input_width()))
        upper = self.units + (self._memory_dim if self.placement == "gnmt" else 0)
        for cell in self.cells[1:]:
            cell.build((None, upper))
        if self.attends:
            self.attention.build((None, None, memory_dim))
            self.attention_layer.build((None, memory_dim + self.units))
        if self.context_gate:  # its width is the memory's, known only now
            self.gate_layer = keras.layers.Dense(
                memory_dim, activation="sigmoid", dtype=self.dtype_policy, name="context_gate"
            )
            self.gate_layer.build((None, self.units))
        if self.tie_embeddings:
            self.output_bias = self.add_weight(
                shape=(self.output_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.output_layer.build((None, self.output_dim))
        self.built = True

    def initial_state(self, batch, memory: Memory | None = None, cell_states=None) -> dict:
        """The decoder state before the first token.

        Args:
            batch: batch size (int or scalar tensor).
            memory: what to attend over (required with attention, ignored without).
            cell_states: per layer a tuple of the cell's states, each `[batch, units]`
                (from a bridge, or a language model's previous window); None: zeros.
        """
        if cell_states is None:
            cell_states = [tuple(cell.get_initial_state(batch)) for cell in self.cells]
        state = {"cells": [tuple(s) for s in cell_states]}
        if not self.attends:
            return state
        values = memory.values
        return {
            **state,
            "feed": ops.zeros((batch, self.attention_units), dtype=values.dtype),
            "memory": values,
            "keys": self.attention.prepare(values),  # batch x src_len x k
            "mask": memory.mask,
            "alignment": ops.zeros(ops.shape(memory.mask), dtype=values.dtype),
        }

    @staticmethod
    def alignment(state: dict):
        """The last step's attention weights `[batch, src_len]` (search's coverage, plots)."""
        return state["alignment"]

    def _hoisted(self) -> bool:
        """Whether the embedding part of the first projection can leave the loop."""
        return self.cells[0].affine_inputs

    def _step_input_width(self) -> int:
        """Width of what joins the embedding at the first layer each step (0: nothing)."""
        if not self.attends:
            return 0
        if self.placement == "bahdanau":
            return self._memory_dim
        return self.attention_units if self.input_feeding else 0

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

    def _loop_kernels(self, dtype, training: bool) -> LoopKernels:
        """Every kernel the step body multiplies by, and which add into one pre-activation."""
        first = self.cells[0]
        kernels = {f"recurrent_{i}": cell.recurrent_kernel for i, cell in enumerate(self.cells)}
        kernels.update({f"input_{i}": self.cells[i].kernel for i in range(1, self.num_layers)})
        groups = {"layer_0": ("recurrent_0",)}
        groups.update(
            {f"layer_{i}": (f"input_{i}", f"recurrent_{i}") for i in range(1, self.num_layers)}
        )
        if self.attends:
            kernels["attention_layer"] = self.attention_layer.kernel
            groups["attention"] = ("attention_layer",)
        if self._hoisted() and self._step_input_width():
            kernels["first_extra"] = first.kernel[self.embedding_dim :]
            groups["layer_0"] += ("first_extra",)
        additive = self._hoisted() and all(cell.additive_recurrence for cell in self.cells)
        return LoopKernels(kernels, dtype, training, groups if additive else None)

    def _first_layer(self, embedded, extra, states, mask, kernels):
        """Runs the first layer on [embedding; extra] (extra None: embedding only)."""
        first = self.cells[0]
        if not self._hoisted():
            x = embedded if extra is None else ops.concatenate([embedded, extra], axis=-1)
            z = first.project_inputs(x)
        elif extra is not None:
            z = embedded + kernels.matmul("first_extra", extra)
        else:
            z = embedded
        return first.recurrent_step(z, list(states), mask, kernels.product("recurrent_0"))

    def _attend(self, query, state, grouped: bool = False):
        """Context and weights for `query`; `grouped`: the memory entries are per sentence
        and the query's rows are each sentence's beams together (search)."""
        attend = self.attention.call_grouped if grouped else self.attention
        context, weights = attend(query, state["keys"], state["memory"], state["mask"])
        if self.context_gate:
            context = context * self.gate_layer(query)
        return context, weights

    def _advance(self, embedded, state, training, masks, kernels, grouped=False):
        """One step from `_embed`'s output; returns (features, new state).

        Args:
            embedded: `[batch, gates]` or `[batch, embedding_dim]`, see `_embed`.
            masks: per layer a recurrent dropout mask `[batch, units]` or None.
            kernels: a step view of `_loop_kernels` (`matmul`, `product`, `sink`).
            grouped: see `_attend`.
        """
        cells = state["cells"]
        if self.attends and self.placement == "bahdanau":
            context, weights = self._attend(cells[-1][0], state, grouped)  # previous top h
            x, new = self._first_layer(embedded, context, cells[0], masks[0], kernels)
        else:
            feed = state["feed"] if self.input_feeding else None
            x, new = self._first_layer(embedded, feed, cells[0], masks[0], kernels)
        new_cells = [tuple(new)]
        if self.attends and self.placement == "gnmt":
            context, weights = self._attend(x, state, grouped)  # bottom layer's output
        for i in range(1, self.num_layers):
            inputs = self.dropout_layer(x, training=training)
            if self.attends and self.placement == "gnmt":
                inputs = ops.concatenate([inputs, context], axis=-1)
            cell = self.cells[i]
            projected = cell.project_inputs(inputs, kernels.product(f"input_{i}"))
            projected = kernels.sink(f"layer_{i}", projected)
            out, new = cell.recurrent_step(
                projected, list(cells[i]), masks[i], kernels.product(f"recurrent_{i}")
            )
            x = out + x if self.residual else out
            new_cells.append(tuple(new))
        if not self.attends:
            return x, {**state, "cells": new_cells}
        if self.placement == "luong":
            context, weights = self._attend(x, state, grouped)
        joined = ops.concatenate([context, x], axis=-1)  # [c_t; h_t]
        feed = ops.tanh(kernels.sink("attention", kernels.matmul("attention_layer", joined)))
        return feed, {**state, "cells": new_cells, "feed": feed, "alignment": weights}

    def output_logits(self, features, training=None):
        """Logits `[..., output_size]` (over `output_ids`, else the vocabulary) of
        features `[..., output_dim]`; `full_logits` maps them to the vocabulary."""
        features = self.dropout_layer(features, training=training)
        if self.tie_embeddings:
            matrix = ops.cast(self.embedding.embeddings, features.dtype)
            if self.output_ids is not None:
                matrix = ops.take(matrix, self.output_ids, axis=0)
            logits = ops.matmul(features, ops.transpose(matrix))
            return logits + ops.cast(self.output_bias, features.dtype)
        return self.output_layer(features)

    def full_logits(self, logits):
        """`output_logits` `[..., output_size]` -> `[..., vocab]`, -inf off `output_ids`."""
        if self.output_ids is None:
            return logits
        unscored = ops.full(ops.shape(logits)[:-1] + (1,), float("-inf"), logits.dtype)
        return ops.take(ops.concatenate([logits, unscored], -1), self._full_index(), axis=-1)

    def output_labels(self, labels):
        """Vocabulary ids `[...]` -> columns of `output_logits` (UNK's for unscored ids)."""
        if self.output_ids is None:
            return labels
        column = np.full(self.vocab_size, self.output_ids.index(UNK_ID), np.int32)
        column[list(self.output_ids)] = np.arange(len(self.output_ids))
        return ops.take(column, labels)

    def _full_index(self):
        index = np.full(self.vocab_size, len(self.output_ids), np.int32)  # the -inf column
        index[list(self.output_ids)] = np.arange(len(self.output_ids))
        return index

    def step(self, ids, state, training=False):
        """One token: ids `[batch]` -> logits `[batch, vocab]`, new state.

        The beam-invariant entries (`memory`, `keys`, `mask`) may hold one row per
        sentence while the rest hold `batch = sentences * G` rows, each sentence's G
        rows together: beam search keeps the memory once per sentence (G = beam)."""
        features, state = self.step_features(ids, state, training=training)
        return self.full_logits(self.output_logits(features, training)), state

    def step_features(self, ids, state, embedded=None, training=False):
        """One token up to the output layer: ids `[batch]` -> features `[batch, output_dim]`,
        new state. A search that scores its own columns applies the output weights itself.

        Args:
            embedded: `_embed(ids)` when the caller has it (rows of `input_table`): the
                step then starts with one gather instead of the embedding's matmul.
        """
        if embedded is None:
            embedded = self._embed(ids, training)
        kernels = self._loop_kernels(embedded.dtype, training=False).view()
        masks = [None] * self.num_layers
        return self._advance(embedded, state, training, masks, kernels, grouped=True)

    def input_table(self):
        """`_embed` of every id at inference, `[vocab, gates]`: the embedding times the first
        layer's input kernel plus its bias, or None where that product does not leave the
        loop (a cell whose input projection is not affine). A search that holds it does one
        gather per step instead of a `[batch, embedding_dim] x [embedding_dim, gates]` matmul.
        """
        if not self._hoisted():
            return None
        return self._embed(ops.arange(self.vocab_size, dtype="int32"), training=False)

    def output_weights(self):
        """`(kernel [output_dim, output_size], bias [output_size])` of the output layer,
        whose columns are `output_ids` (or the vocabulary)."""
        if self.tie_embeddings:
            matrix = self.embedding.embeddings
            if self.output_ids is not None:
                matrix = ops.take(matrix, self.output_ids, axis=0)
            return ops.transpose(matrix), self.output_bias
        return self.output_layer.kernel, self.output_layer.bias

    def forward(self, ids, state, training=None, with_alignments: bool = False):
        """Teacher forcing up to the output layer, from `state`.

        Args:
            ids: `[batch, steps]` input tokens (BOS + target, or a text window).
            state: from `initial_state`, or a previous call's final state.
            with_alignments: also return every step's attention weights (an attention
                decoder only; the captioning penalty needs them).

        Returns:
            `(features [steps, batch, output_dim], final state)`: time-major, as the
            loop makes them (training applies the output layer to real tokens only);
            with alignments a third item, the weights `[steps, batch, src_len]`.
            Padded steps advance the state like real ones; a caller that carries
            the state across windows feeds unpadded windows.
        """
        if training and self.word_dropout > 0:
            drop = keras.random.uniform(ops.shape(ids), seed=self.word_seed) < self.word_dropout
            ids = ops.where(drop, ops.cast(UNK_ID, ids.dtype), ids)
        # Embedded time-major from transposed ids: transposing the (much wider)
        # projected embeddings, and back in the gradient, cost two passes.
        embedded = self._embed(tf.transpose(ids), training)  # steps x batch x gates
        batch = tf.shape(embedded)[1]
        masks = [cell.get_dropout_masks(batch, 1, training)[1] for cell in self.cells]
        kernels = self._loop_kernels(embedded.dtype, bool(training))
        embedded = kernels.add_sink("layer_0", embedded)

        def step(embedded_t, loop_state, view):
            features, new = self._advance(embedded_t, loop_state, training, masks, view)
            if with_alignments:  # one loop output: the weights ride beside the features
                weights = ops.cast(new["alignment"], features.dtype)
                features = ops.concatenate([features, weights], axis=-1)
            return features, new

        outputs, final = kernels.scan(step, embedded, state)
        if not with_alignments:
            return outputs, final
        return outputs[..., : self.output_dim], final, outputs[..., self.output_dim :]

    def call(self, ids, state, training=None):
        """Teacher forcing: ids `[batch, steps]` -> logits `[batch, steps, vocab]`."""
        features, _ = self.forward(ids, state, training)
        logits = self.output_logits(tf.transpose(features, [1, 0, 2]), training)
        return self.full_logits(logits)

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
            "output_ids": self.output_ids,
            "context_gate": self.context_gate,
            "word_dropout": self.word_dropout,
        }
