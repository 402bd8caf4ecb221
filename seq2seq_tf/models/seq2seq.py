"""Seq2Seq: an encoder, a bridge and an attention decoder, composed from finished parts."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from seq2seq_tf.layers.bridges import Bridge, DenseBridge


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class Seq2Seq(keras.Model):
    """encoder(inputs) -> Memory; bridge(memory) -> the decoder's first cell states;
    the decoder attends over the memory at every step.

    Args:
        encoder: a layer `(inputs, training) -> Memory` with an `output_dim`
            (e.g. `encoders.text.BidirectionalEncoder`).
        decoder: a `decoders.rnn.RNNDecoder` with attention.
        bridge: a `layers.bridges.Bridge` for the decoder's state layout.
        pad_id: the id that pads targets (no loss, no logits there).
        **kwargs: forwarded to `keras.Model`.

    Call arguments:
        inputs: `(source_ids [batch, src_len], target_in [batch, tgt_len])`.

    Returns:
        logits `[batch, tgt_len, vocab]`.
    """

    def __init__(
        self,
        encoder: keras.layers.Layer,
        decoder: keras.layers.Layer,
        bridge: Bridge,
        pad_id: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.bridge = bridge
        self.pad_id = pad_id
        self.build()

    @property
    def vocab_size(self) -> int:
        return self.decoder.vocab_size

    @property
    def beam_invariant(self) -> tuple[str, ...]:
        """State entries beam search never reorders (memory, keys, mask)."""
        return self.decoder.beam_invariant

    def build(self, input_shape=None):
        # Parts may come built (deserialized with their build config, or built by a caller).
        if not self.encoder.built:
            self.encoder.build((None, None))
        if not self.decoder.built:
            self.decoder.build(self.encoder.output_dim)
        if isinstance(self.bridge, DenseBridge) and not self.bridge.built:
            width = self.encoder.output_dim
            if self.bridge.source == "final_states":
                width = sum(self.encoder.final_state_sizes())
            self.bridge.build(width)
        self.built = True

    def initial_state(self, source_ids, training=None) -> dict:
        """Encodes the source and returns the decoder state before the first token."""
        memory = self.encoder(source_ids, training=training)
        cell_states = self.bridge(memory)
        return self.decoder.initial_state(ops.shape(source_ids)[0], memory, cell_states)

    def step(self, ids, state):
        """The search step function: ids `[batch]` -> logits `[batch, vocab]`, state."""
        return self.decoder.step(ids, state, training=False)

    def alignment(self, state):
        """The last step's attention weights `[batch, src_len]`."""
        return self.decoder.alignment(state)

    def call(self, inputs, training=None):
        source_ids, target_in = inputs
        state = self.initial_state(source_ids, training=training)
        return self.decoder(target_in, state, training=training)

    def teacher_forced(self, source_ids, target_in, target_out, training=None):
        """Teacher forcing with the output layer on real target tokens only.

        Training's output layer and loss are about a third of a step's arithmetic,
        and on padding (about 15% of the positions in Multi30k's batches) it is wasted.

        With a decoder that scores only its `output_ids`, the logits are over those
        (`[tokens, K]`) and the labels are their columns: the loss of a full output
        layer whose other logits are -inf, at K / vocab of its cost.

        Returns:
            logits `[tokens, vocab or K]` and their labels `[tokens]`, for the positions
            where target_out is not padding, in time-major order.
        """
        state = self.initial_state(source_ids, training=training)
        features, _ = self.decoder.forward(target_in, state, training=training)
        real = tf.transpose(tf.not_equal(target_out, self.pad_id))  # tgt_len x batch
        logits = self.decoder.output_logits(tf.boolean_mask(features, real), training)
        labels = tf.boolean_mask(tf.transpose(target_out), real)
        return logits, self.decoder.output_labels(labels)

    def get_config(self):
        shared = self._shared_embedding()
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "bridge": keras.saving.serialize_keras_object(self.bridge),
            "pad_id": self.pad_id,
            # The parts' configs omit their embedding: one shared by both is kept here.
            "shared_embedding": (
                None if shared is None else keras.saving.serialize_keras_object(shared)
            ),
        }

    def _shared_embedding(self):
        embedding = getattr(self.encoder, "embedding", None)
        return embedding if embedding is getattr(self.decoder, "embedding", 0) else None

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        shared = config.pop("shared_embedding", None)
        shared = None if shared is None else keras.saving.deserialize_keras_object(shared)
        for part in ("encoder", "decoder", "bridge"):
            part_config = config[part]
            if shared is not None and part != "bridge":
                inner = {**part_config["config"], "embedding": shared}
                part_config = {**part_config, "config": inner}
            config[part] = keras.saving.deserialize_keras_object(part_config)
        return cls(**config)
