"""Captioner: an image encoder, a bridge and the RNN decoder (Show, Attend and Tell).

With attention the decoder attends over the encoder's grid at every word (the
Bahdanau placement is Show, Attend and Tell's: h_{t-1} queries the grid and the
context joins the first layer's input), its initial state comes from the mean
annotation (`model.bridge` "mean"), and an optional gate scales the context.
Without attention (`caption.attend` False, the cs231n model) the decoder never
sees the grid: a dense tanh layer of the flattened grid (a feature vector when
there is one per image) sets its initial state.

`build_captioner(config, vocab_size, feature_shape)` is the only reader of the
config here.
"""

from __future__ import annotations

import keras
import ml_collections
import tensorflow as tf
from keras import ops

from seq2seq_tf.decoders.rnn import RNNDecoder
from seq2seq_tf.encoders.image import Backbone, PrecomputedFeatures, SmallCNN
from seq2seq_tf.layers.bridges import Bridge, DenseBridge, make_bridge


def attention_penalty(alignments, target_mask, memory_mask):
    """Show, Attend and Tell's doubly stochastic penalty per caption:
    sum_i (1 - sum_t alpha_ti)^2 over real positions i, the sum over real steps t.

    Args:
        alignments: `[steps, batch, positions]` attention weights.
        target_mask: `[steps, batch]` bool, the caption's real tokens (EOS included).
        memory_mask: `[batch, positions]` bool.

    Returns:
        `[batch]` float32.
    """
    weights = tf.cast(alignments, tf.float32) * tf.cast(target_mask, tf.float32)[:, :, None]
    coverage = tf.reduce_sum(weights, axis=0)  # batch x positions
    gap = tf.square(1.0 - coverage) * tf.cast(memory_mask, tf.float32)
    return tf.reduce_sum(gap, axis=1)


class Captioner(keras.Model):
    """encoder(images) -> Memory of H*W positions; bridge -> the decoder's first states.

    Args:
        encoder: `SmallCNN`, `PrecomputedFeatures` or `Backbone` (has `grid`, `output_dim`).
        decoder: an `RNNDecoder`, with attention or without.
        bridge: mean or zeros (attention), dense of the flattened grid (no attention).
        pad_id: the id that pads captions.
    """

    def __init__(
        self,
        encoder: keras.layers.Layer,
        decoder: RNNDecoder,
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
    def grid(self) -> tuple[int, int]:
        """(H, W) of the attention maps."""
        return tuple(self.encoder.grid)

    @property
    def positions(self) -> int:
        return int(self.grid[0] * self.grid[1])

    @property
    def beam_invariant(self) -> tuple[str, ...]:
        return self.decoder.beam_invariant

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        if not self.decoder.built:
            self.decoder.build(self.encoder.output_dim if self.decoder.attends else None)
        if isinstance(self.bridge, DenseBridge) and not self.bridge.built:
            width = self.encoder.output_dim
            if self.bridge.source == "final_states":  # the flattened grid
                width *= self.positions
            self.bridge.build(width)
        self.built = True

    def initial_state(self, inputs, training=None) -> dict:
        """Encodes images (or features) `[batch, ...]`; the decoder state before BOS."""
        memory = self.encoder(inputs, training=training)
        if not self.decoder.attends:  # the bridge reads the whole grid as one vector
            batch = ops.shape(memory.values)[0]
            flat = ops.reshape(memory.values, (batch, -1))
            memory = memory._replace(final_states=((flat,),))
        cell_states = self.bridge(memory)
        return self.decoder.initial_state(ops.shape(memory.values)[0], memory, cell_states)

    def step(self, ids, state):
        """The search step: ids `[batch]` -> logits `[batch, vocab]`, state."""
        return self.decoder.step(ids, state, training=False)

    def alignment(self, state):
        """The last step's attention `[batch, H*W]` (zeros without attention)."""
        if self.decoder.attends:
            return self.decoder.alignment(state)
        batch = tf.shape(state["cells"][0][0])[0]
        return tf.zeros([batch, self.positions], tf.float32)

    def alignments(self, state, target_in):
        """Every step's attention `[batch, steps, H*W]` when reading `target_in` `[batch,
        steps]` from `state` (zeros without attention): the maps of a searched caption."""
        if not self.decoder.attends:
            shape = tf.shape(target_in)
            return tf.zeros([shape[0], shape[1], self.positions], tf.float32)
        _, _, weights = self.decoder.forward(target_in, state, False, with_alignments=True)
        return tf.transpose(tf.cast(weights, tf.float32), [1, 0, 2])

    def teacher_forced(self, inputs, target_in, target_out, training=None):
        """Teacher forcing with the output layer on real caption tokens only.

        Returns:
            logits `[tokens, vocab]`, their labels `[tokens]` (time-major), and the
            attention penalty per caption `[batch]` (zeros without attention).
        """
        state = self.initial_state(inputs, training=training)
        real = tf.transpose(tf.not_equal(target_out, self.pad_id))  # steps x batch
        if self.decoder.attends:
            features, _, weights = self.decoder.forward(
                target_in, state, training=training, with_alignments=True
            )
            penalty = attention_penalty(weights, real, state["mask"])
        else:
            features, _ = self.decoder.forward(target_in, state, training=training)
            penalty = tf.zeros([tf.shape(target_in)[0]], tf.float32)
        logits = self.decoder.output_logits(tf.boolean_mask(features, real), training)
        return logits, tf.boolean_mask(tf.transpose(target_out), real), penalty

    def call(self, inputs, training=None):
        images, target_in = inputs
        state = self.initial_state(images, training=training)
        return self.decoder(target_in, state, training=training)


def make_image_encoder(caption: ml_collections.ConfigDict) -> keras.layers.Layer:
    """The encoder `caption.encoder` names."""
    if caption.encoder == "cnn":
        return SmallCNN(
            int(caption.image_size),
            tuple(caption.cnn_filters),
            int(caption.cnn_convs_per_block),
            bool(caption.position_channels),
            kernel_sizes=tuple(caption.cnn_kernel_sizes) or None,
            name="encoder",
        )
    if caption.encoder == "features":
        return PrecomputedFeatures(
            tuple(caption.feature_shape), bool(caption.position_channels), name="encoder"
        )
    return Backbone(
        caption.backbone,
        int(caption.image_size),
        caption.backbone_weights or None,
        bool(caption.backbone_trainable),
        bool(caption.position_channels),
        name="encoder",
    )


def build_captioner(config: ml_collections.ConfigDict, vocab_size: int, pad_id: int = 0):
    """The captioner of `config.caption` (encoder, attention, gate) and `config.model`
    (decoder)."""
    m, caption = config.model, config.caption
    attend = bool(caption.attend)
    decoder = RNNDecoder(
        vocab_size,
        m.embedding_dim,
        m.decoder_layers,
        m.decoder_units,
        attention_units=m.attention_units,
        attention_scaled=m.attention_scaled,
        dropout=m.dropout,
        attention_type=m.attention if attend else None,
        cell_type=m.decoder_cell,
        input_feeding=m.input_feeding and attend,
        residual=m.decoder_residual,
        tie_embeddings=m.tie_embeddings,
        placement=m.attention_placement,
        recurrent_dropout=m.recurrent_dropout,
        word_dropout=m.word_dropout,
        context_gate=bool(caption.context_gate) and attend,
        name="decoder",
    )
    if attend:
        bridge = make_bridge(m.bridge, decoder.state_sizes)
    else:
        bridge = DenseBridge(decoder.state_sizes, "final_states", name="bridge")
    return Captioner(make_image_encoder(caption), decoder, bridge, pad_id=pad_id)
