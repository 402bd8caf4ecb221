"""LanguageModel: embedding + a stacked RNN without memory + output layer (char-rnn).

All three are the `decoders.rnn.RNNDecoder` with `attention_type=None`, so the
cells, their fast loop, dropout, variational recurrent dropout and tied
embeddings are the translation decoder's. The state comes in and goes out of
every call, which is what truncated backpropagation through time needs: the
final state of one window is the initial state of the next.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from seq2seq_tf.decoders.rnn import RNNDecoder


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class LanguageModel(keras.Model):
    """p(x_t | x_<t) by a stacked RNN over the tokens.

    Args:
        decoder: an `RNNDecoder` built without attention.
        **kwargs: forwarded to `keras.Model`.

    Call arguments:
        ids: `[batch, steps]` int.

    Returns:
        logits `[batch, steps, vocab]` from the zero state.
    """

    def __init__(self, decoder: RNNDecoder, **kwargs):
        super().__init__(**kwargs)
        if decoder.attends:
            raise ValueError("a language model's decoder has no attention (attention_type=None)")
        self.decoder = decoder
        self.build()

    @property
    def vocab_size(self) -> int:
        return self.decoder.vocab_size

    @property
    def beam_invariant(self) -> tuple[str, ...]:
        return ()

    @property
    def state_sizes(self) -> list[list[int]]:
        """Per layer the widths of its cell's states."""
        return self.decoder.state_sizes

    def build(self, input_shape=None):
        if not self.decoder.built:
            self.decoder.build(None)
        self.built = True

    def initial_state(self, batch, cell_states=None) -> dict:
        """The state before the first token: zeros, or per layer the given cell states."""
        return self.decoder.initial_state(batch, cell_states=cell_states)

    def step(self, ids, state):
        """The search step: ids `[batch]` -> logits `[batch, vocab]`, new state."""
        return self.decoder.step(ids, state, training=False)

    def forward(self, ids, state, training=None):
        """ids `[batch, steps]` from `state` -> (features `[steps, batch, units]`, final state)."""
        return self.decoder.forward(ids, state, training=training)

    def output_logits(self, features, training=None):
        """Logits `[..., vocab]` of features `[..., units]`."""
        return self.decoder.output_logits(features, training)

    def call(self, ids, training=None):
        state = self.initial_state(tf.shape(ids)[0])
        return self.decoder(ids, state, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def build_language_model(model_config, vocab_size: int) -> LanguageModel:
    """The language model of `config.model`: decoder_layers x decoder_units of
    decoder_cell, embedding_dim, dropout, recurrent_dropout, decoder_residual and
    tie_embeddings (which needs decoder_units == embedding_dim)."""
    decoder = RNNDecoder(
        vocab_size,
        model_config.embedding_dim,
        model_config.decoder_layers,
        model_config.decoder_units,
        dropout=model_config.dropout,
        attention_type=None,
        cell_type=model_config.decoder_cell,
        input_feeding=False,
        residual=model_config.decoder_residual,
        tie_embeddings=model_config.tie_embeddings,
        recurrent_dropout=model_config.recurrent_dropout,
        word_dropout=model_config.word_dropout,
        name="decoder",
    )
    return LanguageModel(decoder, name="language_model")
