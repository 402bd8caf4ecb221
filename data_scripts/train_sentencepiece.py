"""Trains SentencePiece models: one joint model (what training uses), or one per language.

    # joint (source and target share pieces; `data.spm_model` of the config)
    python data_scripts/train_sentencepiece.py --inputs=data/m30k/train.en,data/m30k/train.de \
        --model_prefix=data/m30k/spm --vocab_size=8000
    # separate: writes PREFIX.en.model and PREFIX.de.model (named by each file's suffix)
    python data_scripts/train_sentencepiece.py --inputs=data/m30k/train.en,data/m30k/train.de \
        --model_prefix=data/m30k/spm --separate

The model and its .vocab are written next to the data (at the prefix).
"""

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

from seq2seq_tf.data import vocab as tokenizer  # noqa: E402

_INPUTS = flags.DEFINE_list("inputs", None, "Plain-text files to learn pieces from.", required=True)
_PREFIX = flags.DEFINE_string("model_prefix", None, "Writes PREFIX.model/.vocab.", required=True)
_VOCAB = flags.DEFINE_integer("vocab_size", 8000, "Pieces in the vocabulary.")
_TYPE = flags.DEFINE_enum("model_type", "unigram", ["unigram", "bpe"], "Segmentation algorithm.")
_COVERAGE = flags.DEFINE_float("character_coverage", 1.0, "Share of characters covered.")
_SEPARATE = flags.DEFINE_bool(
    "separate", False, "One model per input file, PREFIX.<file suffix>.model, instead of one joint."
)
_SYMBOLS = flags.DEFINE_list("user_defined_symbols", [], "Pieces never split (e.g. <sep>,<2de>).")


def main(argv):
    if _SEPARATE.value:
        jobs = [([path], f"{_PREFIX.value}.{path.rsplit('.', 1)[-1]}") for path in _INPUTS.value]
        suffixes = [prefix for _, prefix in jobs]
        if len(set(suffixes)) != len(suffixes):
            raise app.UsageError("--separate needs inputs with different suffixes (.en, .de)")
    else:
        jobs = [(_INPUTS.value, _PREFIX.value)]
    for inputs, prefix in jobs:
        path = tokenizer.train_sentencepiece(
            inputs,
            prefix,
            _VOCAB.value,
            _TYPE.value,
            _COVERAGE.value,
            user_defined_symbols=_SYMBOLS.value,
        )
        print(f"SentencePiece model: {path} ({tokenizer.vocab_size_of(path)} pieces)")


if __name__ == "__main__":
    cli.run(main)
