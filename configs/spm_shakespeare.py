"""Subword (SentencePiece) language model on tiny-shakespeare: char_shakespeare's recipe
over pieces instead of characters.

Train a SentencePiece model on the training part only (the first 90%), e.g. with
    python benchmarks/lm_shakespeare.py --spm_vocab_size=1000 --workdir=runs/spm
or by hand (data_scripts/train_sentencepiece.py reads plain text), then
    python -m seq2seq_tf.train --config=configs/spm_shakespeare.py --workdir=runs/spm \
        --config.data.spm_model=data/shakespeare/spm.model

SentencePiece has no line-end piece, so the stream is the text's lines joined at
word boundaries. Bits per character divide the nats by the characters the pieces
cover, so the figure compares with the character model's.
"""

import importlib.util
import os


def _char_config():
    """configs/char_shakespeare.py's config (loaded by path: configs/ is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "char_shakespeare.py")
    spec = importlib.util.spec_from_file_location("char_shakespeare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    config = _char_config()
    config.data.spm_model = "data/shakespeare/spm.model"
    config.lm.window = 48  # pieces: about 3.5 characters each at 1,000 pieces
    config.lm.sample_length = 100
    return config
