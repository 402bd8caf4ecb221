"""Luong et al. (2015) at a small size: 2-layer bidirectional LSTM encoder, 2-layer
LSTM decoder, general attention after the top layer, input feeding.

Points at the toy corpus of `make demo`; override data.* for your own text:
    python -m seq2seq_tf.train --config=configs/luong_small.py --workdir=runs/luong_small
"""

from seq2seq_tf.config import toy_config


def get_config():
    config = toy_config()
    config.model.embedding_dim = 64
    config.model.encoder_layers = 2
    config.model.encoder_units = 128
    config.model.decoder_layers = 2
    config.model.decoder_units = 256
    config.model.attention_units = 256
    config.model.attention = "luong_general"
    config.model.attention_placement = "luong"
    config.model.input_feeding = True
    config.model.bridge = "zeros"  # a copied final state made attention lazy on the toy task
    config.model.dropout = 0.3

    return config
