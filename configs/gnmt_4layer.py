"""GNMT (Wu et al., 2016) at a small size: 1 bidirectional + 3 unidirectional encoder
layers, 4 decoder layers, residual connections (from the second layer up; GNMT starts
at the third), normalized Bahdanau attention computed from the bottom decoder layer
and fed to all layers above it.

Points at the toy corpus of `make demo`; override data.* for your own text:
    python -m seq2seq_tf.train --config=configs/gnmt_4layer.py --workdir=runs/gnmt_4layer
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

    config.train.num_steps = 2500
    config.train.learning_rate = 3e-3
    config.train.lr_schedule = "cosine"
    config.train.warmup_steps = 100
    config.train.checkpoint_every = 500
    return config
