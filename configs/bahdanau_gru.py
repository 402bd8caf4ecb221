"""Bahdanau et al. (2015): bidirectional GRU encoder, GRU decoder whose previous state
queries additive (normalized) attention before the cell; no input feeding.

Points at the toy corpus of `make demo`; override data.* for your own text:
    python -m seq2seq_tf.train --config=configs/bahdanau_gru.py --workdir=runs/bahdanau_gru
"""

from seq2seq_tf.config import default_config


def get_config():
    config = default_config()
    config.data.train_src = "data/toy/train.src"
    config.data.train_tgt = "data/toy/train.tgt"
    config.data.spm_model = "data/toy/spm.model"
    config.data.max_src_len = 64
    config.data.max_tgt_len = 64
    config.data.bucket_boundaries = (8, 11, 14, 17, 20, 24, 28)

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

    config.train.num_steps = 2500
    config.train.learning_rate = 3e-3
    config.train.lr_schedule = "cosine"
    config.train.warmup_steps = 100
    config.train.checkpoint_every = 500
    return config
