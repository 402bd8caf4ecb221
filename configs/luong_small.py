"""Luong et al. (2015) at a small size: 2-layer bidirectional LSTM encoder, 2-layer
LSTM decoder, general attention after the top layer, input feeding.

Points at the toy corpus of `make demo`; override data.* for your own text:
    python -m seq2seq_tf.train --config=configs/luong_small.py --workdir=runs/luong_small
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

    config.train.num_steps = 2500
    config.train.learning_rate = 3e-3
    config.train.lr_schedule = "cosine"
    config.train.warmup_steps = 100
    config.train.checkpoint_every = 500
    return config
