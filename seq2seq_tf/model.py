"""Seq2Seq: encoder + bridge + attention decoder, and the training loss.

`build_model` is the only function that reads the model config; the parts
take plain arguments.
"""

from __future__ import annotations

import keras
import ml_collections
import tensorflow as tf
from keras import ops

from seq2seq_tf.decoder import AttentionDecoder
from seq2seq_tf.encoder import BidirectionalEncoder
from seq2seq_tf.tokenizer import PAD_ID


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class Seq2Seq(keras.Model):
    """Bidirectional LSTM encoder, LSTM decoder with Luong attention.

    Args:
        vocab_size: size of the (joint) vocabulary.
        embedding_dim, encoder_layers, encoder_units, decoder_layers,
        decoder_units, attention_units, attention_scaled, dropout, attention_type,
            encoder_cell, decoder_cell, input_feeding, encoder_residual,
            decoder_residual, tie_embeddings, share_embeddings, attention_placement,
            encoder_uni_layers, encoder_merge, recurrent_dropout: see seq2seq_tf/config.py
            (attention_type is `model.attention` there).
        bridge: how the decoder starts from the encoder's final states:
            "zeros" (it does not), "copy" (layer i gets encoder layer i's
            concatenated fw/bw states; layers, cell states and sizes must match)
            or "dense" (one learned tanh projection of all encoder final states
            to all decoder states, for any cells and sizes).
        **kwargs: forwarded to `keras.Model`.

    Call arguments:
        inputs: `(source_ids [batch, src_len], target_in [batch, tgt_len])`.

    Returns:
        logits `[batch, tgt_len, vocab]`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        encoder_layers: int,
        encoder_units: int,
        decoder_layers: int,
        decoder_units: int,
        attention_units: int,
        bridge: str = "copy",
        attention_scaled: bool = True,
        dropout: float = 0.0,
        attention_type: str = "luong_general",
        encoder_cell: str = "lstm",
        decoder_cell: str = "lstm",
        input_feeding: bool = True,
        encoder_residual: bool = False,
        decoder_residual: bool = False,
        tie_embeddings: bool = False,
        share_embeddings: bool = False,
        attention_placement: str = "luong",
        encoder_uni_layers: int = 0,
        encoder_merge: str = "concat",
        recurrent_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_layers = encoder_layers
        self.encoder_units = encoder_units
        self.decoder_layers = decoder_layers
        self.decoder_units = decoder_units
        self.attention_units = attention_units
        self.bridge = bridge
        self.attention_scaled = attention_scaled
        self.attention_type = attention_type
        self.dropout = dropout
        self.encoder_cell = encoder_cell
        self.decoder_cell = decoder_cell
        self.input_feeding = input_feeding
        self.encoder_residual = encoder_residual
        self.decoder_residual = decoder_residual
        self.tie_embeddings = tie_embeddings
        self.share_embeddings = share_embeddings
        self.attention_placement = attention_placement
        self.encoder_uni_layers = encoder_uni_layers
        self.encoder_merge = encoder_merge
        self.recurrent_dropout = recurrent_dropout
        shared = None
        if share_embeddings:  # one matrix for source and target (joint vocabulary)
            shared = keras.layers.Embedding(vocab_size, embedding_dim, name="shared_embedding")
        self.encoder = BidirectionalEncoder(
            vocab_size,
            embedding_dim,
            encoder_layers,
            encoder_units,
            dropout,
            cell_type=encoder_cell,
            residual=encoder_residual,
            embedding=shared,
            uni_layers=encoder_uni_layers,
            merge=encoder_merge,
            recurrent_dropout=recurrent_dropout,
            name="encoder",
        )
        self.decoder = AttentionDecoder(
            vocab_size,
            embedding_dim,
            decoder_layers,
            decoder_units,
            attention_units,
            attention_scaled,
            dropout,
            attention_type,
            cell_type=decoder_cell,
            input_feeding=input_feeding,
            residual=decoder_residual,
            tie_embeddings=tie_embeddings,
            embedding=shared,
            placement=attention_placement,
            recurrent_dropout=recurrent_dropout,
            name="decoder",
        )
        decoder_sizes = [size for cell in self.decoder.cells for size in cell.state_size]
        self._decoder_state_sizes = decoder_sizes
        if bridge == "dense":
            self.bridge_layer = keras.layers.Dense(
                sum(decoder_sizes), activation="tanh", name="bridge"
            )
        self.build()

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        self.decoder.build(self.encoder.output_dim)
        if self.bridge == "dense":
            self.bridge_layer.build((None, sum(self.encoder.final_state_sizes())))
        self.built = True

    def _bridge(self, final_states, batch):
        """Decoder initial cell states from the encoder's final ones (see `bridge`)."""
        if self.bridge == "copy":
            return final_states
        if self.bridge == "dense":
            flat = ops.concatenate([t for layer in final_states for t in layer], axis=-1)
            projected = self.bridge_layer(flat)
            offsets = list(_offsets(self._decoder_state_sizes))
            parts = ops.split(projected, offsets, axis=-1) if offsets else [projected]
        else:
            parts = [
                ops.zeros((batch, size), self.compute_dtype) for size in self._decoder_state_sizes
            ]
        grouped, start = [], 0
        for cell in self.decoder.cells:
            grouped.append(tuple(parts[start : start + len(cell.state_size)]))
            start += len(cell.state_size)
        return grouped

    def initial_state(self, source_ids, training=None) -> dict:
        """Encodes the source and returns the decoder state before the first token."""
        memory, mask, final_states = self.encoder(source_ids, training=training)
        cell_states = self._bridge(final_states, ops.shape(source_ids)[0])
        return self.decoder.initial_state(memory, mask, cell_states)

    def step(self, ids, state):
        """The search step function: ids `[batch]` -> logits `[batch, vocab]`, state."""
        return self.decoder.step(ids, state, training=False)

    def call(self, inputs, training=None):
        source_ids, target_in = inputs
        state = self.initial_state(source_ids, training=training)
        return self.decoder(target_in, state, training=training)

    def real_token_logits(self, source_ids, target_in, target_out, training=None):
        """Teacher forcing with the output layer on real target tokens only.

        Training's output layer and loss are about a third of a step's arithmetic,
        and on padding (about 15% of the positions in Multi30k's batches) it is wasted.

        Returns:
            logits `[tokens, vocab]` and their labels `[tokens]`, for the positions where
            target_out is not PAD_ID, in time-major order.
        """
        state = self.initial_state(source_ids, training=training)
        features = self.decoder.features(target_in, state, training=training)
        real = tf.transpose(tf.not_equal(target_out, PAD_ID))  # tgt_len x batch
        logits = self.decoder.output_logits(tf.boolean_mask(features, real), training)
        return logits, tf.boolean_mask(tf.transpose(target_out), real)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "encoder_layers": self.encoder_layers,
            "encoder_units": self.encoder_units,
            "decoder_layers": self.decoder_layers,
            "decoder_units": self.decoder_units,
            "attention_units": self.attention_units,
            "bridge": self.bridge,
            "attention_scaled": self.attention_scaled,
            "attention_type": self.attention_type,
            "dropout": self.dropout,
            "encoder_cell": self.encoder_cell,
            "decoder_cell": self.decoder_cell,
            "input_feeding": self.input_feeding,
            "encoder_residual": self.encoder_residual,
            "decoder_residual": self.decoder_residual,
            "tie_embeddings": self.tie_embeddings,
            "share_embeddings": self.share_embeddings,
            "attention_placement": self.attention_placement,
            "encoder_uni_layers": self.encoder_uni_layers,
            "encoder_merge": self.encoder_merge,
            "recurrent_dropout": self.recurrent_dropout,
        }


def _offsets(sizes):
    """Split points of a concatenation of pieces of the given sizes."""
    total = 0
    for size in sizes[:-1]:
        total += size
        yield total


def build_model(config: ml_collections.ConfigDict, vocab_size: int) -> Seq2Seq:
    """The model described by `config.model`."""
    return Seq2Seq(
        vocab_size=vocab_size,
        embedding_dim=config.embedding_dim,
        encoder_layers=config.encoder_layers,
        encoder_units=config.encoder_units,
        decoder_layers=config.decoder_layers,
        decoder_units=config.decoder_units,
        attention_units=config.attention_units,
        bridge=config.bridge,
        attention_scaled=config.attention_scaled,
        dropout=config.dropout,
        attention_type=config.attention,
        encoder_cell=config.encoder_cell,
        decoder_cell=config.decoder_cell,
        input_feeding=config.input_feeding,
        encoder_residual=config.encoder_residual,
        decoder_residual=config.decoder_residual,
        tie_embeddings=config.tie_embeddings,
        share_embeddings=config.share_embeddings,
        attention_placement=config.attention_placement,
        encoder_uni_layers=config.encoder_uni_layers,
        encoder_merge=config.encoder_merge,
        recurrent_dropout=config.recurrent_dropout,
    )


def sequence_loss(logits, target_out, label_smoothing: float):
    """Masked cross entropy over real target tokens.

    Args:
        logits: `[batch, tgt_len, vocab]`.
        target_out: `[batch, tgt_len]` int, PAD_ID on padding.
        label_smoothing: epsilon of the smoothed targets.

    Returns:
        (smoothed loss summed over tokens, plain NLL summed over tokens, token count);
        the NLL gives an honest perplexity.
    """
    mask = tf.cast(tf.not_equal(target_out, PAD_ID), tf.float32)
    smoothed, nll = token_cross_entropy(logits, target_out, label_smoothing)
    return tf.reduce_sum(smoothed * mask), tf.reduce_sum(nll * mask), tf.reduce_sum(mask)


def token_cross_entropy(logits, labels, label_smoothing: float):
    """Per-token label-smoothed cross entropy and plain NLL, with one fused gradient.

    Smoothed targets q = (1 - eps) one_hot + eps / V give
        -sum q log p = (1 - eps) nll + eps (logsumexp - mean logits)
                     = nll + eps (logit_target - mean logits),
    since logsumexp = nll + logit_target: one softmax pass and no `[..., vocab]`
    one-hot, the same value as keras' smoothed loss. The gradient,
    softmax - one_hot + eps (one_hot - 1 / V), is built from the softmax that the
    cross-entropy kernel already returns; autodiff of the formula above would add
    a scattered and a broadcast `[..., vocab]` tensor to it.

    Args:
        logits: `[..., vocab]`, any float dtype (the loss is float32).
        labels: `[...]` int, each in [0, vocab).
        label_smoothing: eps.

    Returns:
        (smoothed loss, NLL), each `[...]` float32.
    """
    eps = float(label_smoothing)
    vocab = tf.shape(logits)[-1]
    flat_labels = tf.reshape(labels, [-1])

    @tf.custom_gradient
    def fused(flat_logits):
        nll, softmax_minus_one_hot = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(
            features=flat_logits, labels=flat_labels
        )
        smoothed = nll
        if eps:
            target_logit = tf.gather(flat_logits, flat_labels, batch_dims=1)
            smoothed = nll + eps * (target_logit - tf.reduce_mean(flat_logits, axis=-1))

        def grad(d_smoothed, d_nll):
            d_logits = softmax_minus_one_hot * (d_smoothed + d_nll)[:, None]
            if not eps:
                return d_logits
            d_logits -= (eps / tf.cast(vocab, tf.float32)) * d_smoothed[:, None]
            rows = tf.range(tf.shape(flat_labels)[0], dtype=flat_labels.dtype)
            at_labels = tf.stack([rows, flat_labels], axis=1)
            return tf.tensor_scatter_nd_add(d_logits, at_labels, eps * d_smoothed)

        return (smoothed, nll), grad

    smoothed, nll = fused(tf.reshape(tf.cast(logits, tf.float32), [-1, vocab]))
    shape = tf.shape(labels)
    return tf.reshape(smoothed, shape), tf.reshape(nll, shape)
