"""GNMT (Wu et al., 2016) at a small size: 1 bidirectional + 3 unidirectional encoder
layers, 4 decoder layers, residual connections (from the second layer up; GNMT starts
at the third), normalized Bahdanau attention computed from the bottom decoder layer
and fed to all layers above it.

Points at the toy corpus of `make demo`; override data.* for your own text:
    python -m seq2seq_tf.train --config=configs/gnmt_4layer.py --workdir=runs/gnmt_4layer
"""

from seq2seq_tf.config import toy_config


def get_config():
    config = toy_config()
    config.model.embedding_dim = 64
    config.model.encoder_layers = 1
    config.model.encoder_uni_layers = 3
    config.model.encoder_units = 64  # per direction; the uni layers are 128 wide
    config.model.encoder_residual = True
    config.model.decoder_layers = 4
    config.model.decoder_units = 128
    config.model.decoder_residual = True
    config.model.attention_units = 128
    config.model.attention = "bahdanau_normalized"
    config.model.attention_placement = "gnmt"
    config.model.input_feeding = False
    config.model.bridge = "zeros"
    config.model.dropout = 0.2

    return config
