"""Text encoder: embedding + deep bidirectional recurrent layers (+ unidirectional on top)."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_tf.layers.memory import Memory
from seq2seq_tf.layers.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class BidirectionalEncoder(keras.layers.Layer):
    """Each layer runs a forward and a backward recurrent layer and concatenates them.

    Args:
        vocab_size: source vocabulary size.
        embedding_dim: embedding width.
        num_layers: stacked bidirectional layers.
        units: units per direction; outputs are `2 * units` wide.
        dropout: dropout on the embeddings and between layers.
        cell_type: recurrent cell, see `seq2seq_tf.cells.make_cell`.
        residual: add each layer's input to its output from the second layer up (GNMT).
        uni_layers: unidirectional layers on top of the bidirectional ones (GNMT:
            1 bidirectional + N unidirectional), each as wide as the output.
        merge: how the two directions combine: "concat" (2 * units wide) or "sum" (units).
        recurrent_dropout: variational dropout on h_{t-1} in every layer (training only).
        embedding: an Embedding layer to use (shared with the decoder), or None for its own.
        pad_id: the id that pads sources (masked out everywhere).
        implementation: how every recurrent layer runs: "loop", "fused" (cuDNN's
            LSTM on a GPU, see `layers.fused_lstm`) or "auto"; see `Recurrent`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        source_ids: `[batch, src_len]` int, right-padded with `pad_id`.

    Returns:
        A `Memory`: values `[batch, src_len, output_dim]` (zeros on padding), mask
        `[batch, src_len]` bool, and per layer a tuple of the final states in
        the cell's order, each `[batch, output_dim]` (the two directions
        merged like the outputs): `(h, c)` for the LSTM cells, `(h,)` for single-state
        cells such as GRU.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        num_layers: int,
        units: int,
        dropout: float = 0.0,
        cell_type: str = "lstm",
        residual: bool = False,
        embedding: keras.layers.Embedding | None = None,
        uni_layers: int = 0,
        merge: str = "concat",
        recurrent_dropout: float = 0.0,
        pad_id: int = 0,
        implementation: str = "loop",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.units = units
        self.dropout = dropout
        self.cell_type = cell_type
        self.residual = residual
        if merge not in ("concat", "sum"):
            raise ValueError(f"merge must be 'concat' or 'sum', got {merge!r}")
        self.uni_layers = uni_layers
        self.recurrent_dropout = recurrent_dropout
        self.pad_id = pad_id
        self.implementation = implementation
        rd = {"recurrent_dropout": recurrent_dropout, "implementation": implementation}
        self.merge = merge
        self.output_dim = 2 * units if merge == "concat" else units
        self.embedding = embedding or keras.layers.Embedding(
            vocab_size, embedding_dim, name="embedding"
        )
        # One attribute per layer: TF checkpoints do not see layers held in Keras lists.
        for i in range(num_layers):
            setattr(
                self,
                f"forward_{i}",
                Recurrent(units, cell_type=cell_type, name=f"forward_{i}", **rd),
            )
            setattr(
                self,
                f"backward_{i}",
                Recurrent(
                    units, go_backwards=True, cell_type=cell_type, name=f"backward_{i}", **rd
                ),
            )
        self.forward_layers = tuple(getattr(self, f"forward_{i}") for i in range(num_layers))
        self.backward_layers = tuple(getattr(self, f"backward_{i}") for i in range(num_layers))
        for j in range(uni_layers):
            setattr(
                self,
                f"uni_{j}",
                Recurrent(self.output_dim, cell_type=cell_type, name=f"uni_{j}", **rd),
            )
        self.uni = tuple(getattr(self, f"uni_{j}") for j in range(uni_layers))
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, source_shape):
        self.embedding.build(source_shape)
        width = self.embedding_dim
        for fw, bw in zip(self.forward_layers, self.backward_layers):
            fw.build((None, None, width))
            bw.build((None, None, width))
            width = self.output_dim
        for layer in self.uni:
            layer.build((None, None, width))
        self.built = True

    def final_state_sizes(self) -> list[int]:
        """Widths of every tensor in the final states, layer by layer."""
        per_layer = len(self.forward_layers[0].cell.state_size)
        return [self.output_dim] * per_layer * (self.num_layers + self.uni_layers)

    def call(self, source_ids, training=None):
        mask = ops.not_equal(source_ids, self.pad_id)  # batch x src_len
        x = self.dropout_layer(self.embedding(source_ids), training=training)
        final_states = []
        for i, (fw, bw) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i > 0:
                x = self.dropout_layer(x, training=training)
            fw_out, *fw_states = fw(x, mask=mask, training=training)
            bw_out, *bw_states = bw(x, mask=mask, training=training)
            if self.merge == "concat":
                out = ops.concatenate([fw_out, bw_out], axis=-1)  # batch x src_len x 2*units
                states = [ops.concatenate([f, b], axis=-1) for f, b in zip(fw_states, bw_states)]
            else:
                out = fw_out + bw_out  # batch x src_len x units
                states = [f + b for f, b in zip(fw_states, bw_states)]
            x = out + x if self.residual and i > 0 else out
            final_states.append(tuple(states))
        for layer in self.uni:
            inputs = self.dropout_layer(x, training=training)
            out, *states = layer(inputs, mask=mask, training=training)
            x = out + x if self.residual else out
            final_states.append(tuple(states))
        return Memory(x, mask, tuple(final_states))

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "num_layers": self.num_layers,
            "units": self.units,
            "dropout": self.dropout,
            "cell_type": self.cell_type,
            "residual": self.residual,
            "uni_layers": self.uni_layers,
            "merge": self.merge,
            "recurrent_dropout": self.recurrent_dropout,
            "pad_id": self.pad_id,
            "implementation": self.implementation,
        }
