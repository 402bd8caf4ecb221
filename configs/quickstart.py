"""The `make demo` run: a small model on the generated toy corpus (data/toy).

python -m seq2seq_tf.train --config=configs/quickstart.py --workdir=runs/demo
"""

from seq2seq_tf.config import default_config


def get_config():
    config = default_config()
    config.data.train_src = "data/toy/train.src"
    config.data.train_tgt = "data/toy/train.tgt"
    config.data.dev_src = "data/toy/dev.src"
    config.data.dev_tgt = "data/toy/dev.tgt"
    config.data.spm_model = "data/toy/spm.model"
    config.data.max_src_len = 64
    config.data.max_tgt_len = 64
    config.data.batch_size = 64
    config.data.bucket_boundaries = (8, 11, 14, 17, 20, 24, 28)

    config.model.embedding_dim = 64
    config.model.encoder_layers = 1
    config.model.encoder_units = 128
    config.model.decoder_layers = 1
    config.model.decoder_units = 256
    config.model.attention_units = 256
    # No bridge: with "copy" the decoder starts from a summary of the whole source and
    # leans on it instead of attention (measured: 50% exact match, attention stuck on EOS).
    config.model.bridge = "zeros"
    # Dropout 0.3 is what makes attention form early here: 99.9% exact match in 2,500
    # steps, against 73% with 0.1 and 52% with none (same seed, same steps).
    config.model.dropout = 0.3

    config.train.num_steps = 2500
    config.train.learning_rate = 3e-3
    config.train.lr_schedule = "cosine"
    config.train.warmup_steps = 100
    config.train.label_smoothing = 0.1
    config.train.log_every = 100
    config.train.checkpoint_every = 500
    return config
