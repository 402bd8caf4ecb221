"""The `make demo` run: a small model on the generated toy corpus (data/toy).

python -m seq2seq_tf.train --config=configs/quickstart.py --workdir=runs/demo
"""

from seq2seq_tf.config import toy_config


def get_config():
    config = toy_config()
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
    # Stop once it has learned: dev BLEU every 250 steps, and the first evaluation
    # that improves on the best by less than 0.5 BLEU ends the run (dev BLEU is
    # 99.9-100 from step ~1,250 on; the step budget stays as the upper bound).
    config.train.eval_every = 250
    config.train.early_stopping_patience = 1
    config.train.early_stopping_min_delta = 0.5

    return config
