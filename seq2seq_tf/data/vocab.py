"""SentencePiece: trained with the `sentencepiece` library, applied in-graph.

Training and the exported model both tokenize with tensorflow_text's
SentencepieceTokenizer op over the same model bytes, so there is no train/serve
skew. Ids are fixed: 0 pad, 1 unk, 2 bos, 3 eos.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3


def train_sentencepiece(
    inputs: Sequence[str],
    model_prefix: str,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    input_sentence_size: int = 1_000_000,
    user_defined_symbols: Sequence[str] = (),
) -> str:
    """Trains one model on all the given plain-text files; returns the .model path.

    Ids 0-3 are fixed (pad, unk, bos, eos) because the model and the exported
    graph rely on them; `user_defined_symbols` are never split (tags, placeholders).
    """
    for path in inputs:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SentencePiece training input not found: {path}")
    os.makedirs(os.path.dirname(os.path.abspath(model_prefix)), exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=",".join(inputs),
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        input_sentence_size=input_sentence_size,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        user_defined_symbols=list(user_defined_symbols),
        minloglevel=2,
    )
    return model_prefix + ".model"


def read_model_proto(path: str) -> bytes:
    """Reads a .model file, checking it is a SentencePiece model with our special ids."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"SentencePiece model not found: {path}")
    proto = tf.io.gfile.GFile(path, "rb").read()
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(proto)
    except Exception as err:  # sentencepiece raises a bare RuntimeError/OSError
        raise ValueError(f"{path} is not a SentencePiece model: {err}") from err
    ids = (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id())
    if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
        raise ValueError(
            f"{path}: special ids (pad, unk, bos, eos) are {ids}, expected "
            f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}; train it with data_scripts/train_sentencepiece.py"
        )
    return proto


def vocab_size_of(path: str) -> int:
    """Number of pieces in a SentencePiece model file."""
    processor = spm.SentencePieceProcessor()
    processor.LoadFromSerializedProto(read_model_proto(path))
    return processor.GetPieceSize()


def make_tokenizer(proto: bytes) -> tf_text.SentencepieceTokenizer:
    """The in-graph tokenizer used by the input pipeline and the export."""
    return tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)
