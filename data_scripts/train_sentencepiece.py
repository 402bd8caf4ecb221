"""Trains the joint SentencePiece model that source and target share.

    python data_scripts/train_sentencepiece.py --inputs=data/toy/train.src,data/toy/train.tgt \
        --model_prefix=data/toy/spm --vocab_size=400
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from seq2seq_tf import tokenizer  # noqa: E402

_INPUTS = flags.DEFINE_list("inputs", None, "Plain-text files to learn pieces from.", required=True)
_PREFIX = flags.DEFINE_string("model_prefix", None, "Writes PREFIX.model/.vocab.", required=True)
_VOCAB = flags.DEFINE_integer("vocab_size", 8000, "Pieces in the vocabulary.")
_TYPE = flags.DEFINE_enum("model_type", "unigram", ["unigram", "bpe"], "Segmentation algorithm.")
_COVERAGE = flags.DEFINE_float("character_coverage", 1.0, "Share of characters covered.")


def main(argv):
    del argv
    path = tokenizer.train_sentencepiece(
        _INPUTS.value, _PREFIX.value, _VOCAB.value, _TYPE.value, _COVERAGE.value
    )
    print(f"SentencePiece model: {path} ({tokenizer.vocab_size_of(path)} pieces)")


if __name__ == "__main__":
    app.run(main)
