"""Bahdanau et al. (2015): bidirectional GRU encoder, GRU decoder whose previous state
queries additive (normalized) attention before the cell; no input feeding.

Points at the toy corpus of `make demo`; override data.* for your own text:
    python -m seq2seq_tf.train --config=configs/bahdanau_gru.py --workdir=runs/bahdanau_gru
"""

from seq2seq_tf.config import toy_config


def get_config():
    config = toy_config()
    config.model.embedding_dim = 64
    config.model.encoder_cell = "gru"
    config.model.decoder_cell = "gru"
    config.model.encoder_layers = 1
    config.model.encoder_units = 128
    config.model.decoder_layers = 1
    config.model.decoder_units = 256
    config.model.attention_units = 256
    config.model.attention = "bahdanau_normalized"
    config.model.attention_placement = "bahdanau"
    config.model.input_feeding = False
    config.model.bridge = "dense"  # as in the paper: tanh of a projection of the encoder state
    config.model.dropout = 0.3

    return config
