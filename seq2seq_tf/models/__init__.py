"""Models composed from parts; `build_model` is the only reader of `config.model`."""

from __future__ import annotations

import keras
import ml_collections

from seq2seq_tf.decoders.rnn import RNNDecoder
from seq2seq_tf.encoders.text import BidirectionalEncoder
from seq2seq_tf.layers.bridges import make_bridge
from seq2seq_tf.models.language_model import LanguageModel, build_language_model
from seq2seq_tf.models.seq2seq import Seq2Seq


def build_model(
    config: ml_collections.ConfigDict,
    vocab_size: int,
    pad_id: int = 0,
    output_ids: tuple[int, ...] | None = None,
) -> Seq2Seq:
    """The translation model described by `config` (the `model` group).

    Args:
        config: `config.model` (see seq2seq_tf/config.py for each field).
        vocab_size: size of the (joint) vocabulary.
        pad_id: the padding id of the vocabulary.
        output_ids: the ids the output layer scores (`data.target_vocab`, set by
            training with `model.target_vocab_only`); None or () for all.
    """
    shared = None
    if config.share_embeddings:  # one matrix for source and target (joint vocabulary)
        shared = keras.layers.Embedding(vocab_size, config.embedding_dim, name="shared_embedding")
    encoder = BidirectionalEncoder(
        vocab_size,
        config.embedding_dim,
        config.encoder_layers,
        config.encoder_units,
        config.dropout,
        cell_type=config.encoder_cell,
        residual=config.encoder_residual,
        embedding=shared,
        uni_layers=config.encoder_uni_layers,
        merge=config.encoder_merge,
        recurrent_dropout=config.recurrent_dropout,
        pad_id=pad_id,
        implementation=config.encoder_kernel,
        name="encoder",
    )
    decoder = RNNDecoder(
        vocab_size,
        config.embedding_dim,
        config.decoder_layers,
        config.decoder_units,
        attention_units=config.attention_units,
        attention_scaled=config.attention_scaled,
        dropout=config.dropout,
        attention_type=config.attention,
        cell_type=config.decoder_cell,
        input_feeding=config.input_feeding,
        residual=config.decoder_residual,
        tie_embeddings=config.tie_embeddings,
        embedding=shared,
        placement=config.attention_placement,
        recurrent_dropout=config.recurrent_dropout,
        word_dropout=config.word_dropout,
        output_ids=tuple(output_ids or ()) or None,
        name="decoder",
    )
    bridge = make_bridge(config.bridge, decoder.state_sizes)
    return Seq2Seq(encoder, decoder, bridge, pad_id=pad_id)


__all__ = ["LanguageModel", "Seq2Seq", "build_language_model", "build_model"]
