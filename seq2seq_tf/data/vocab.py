"""SentencePiece: trained with the `sentencepiece` library, applied in-graph.

Training and the exported model both tokenize with tensorflow_text's
SentencepieceTokenizer op over the same model bytes, so there is no train/serve
skew. Ids are fixed: 0 pad, 1 unk, 2 bos, 3 eos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from seq2seq_tf.errors import MissingFileError, UserError

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3


_TRAIN_IN_CHILD = (
    "import json, sys\n"
    "import sentencepiece\n"
    "sentencepiece.SentencePieceTrainer.train(**json.loads(sys.argv[1]))\n"
)


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
            raise MissingFileError(f"SentencePiece training input not found: {path}")
    os.makedirs(os.path.dirname(os.path.abspath(model_prefix)), exist_ok=True)
    run_trainer(
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


def run_trainer(**options) -> None:
    """`SentencePieceTrainer.train(**options)` in a child process that never imports
    TensorFlow: trained in a process that has TensorFlow loaded it is known to crash
    (google/sentencepiece#813), and a training run of ours that had trained its
    vocabulary in-process later aborted in malloc ("mismatching next->prev_size").

    Raises UserError with the trainer's last message when it fails.
    """
    child = subprocess.run(
        [sys.executable, "-c", _TRAIN_IN_CHILD, json.dumps(options)],
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        lines = [line for line in child.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {child.returncode}"
        raise UserError(f"SentencePiece training on {options.get('input')} failed: {reason}")


def read_model_proto(path: str) -> bytes:
    """Reads a .model file, checking it is a SentencePiece model with our special ids."""
    if not tf.io.gfile.exists(path):
        raise MissingFileError(f"SentencePiece model not found: {path}")
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


# --- Character vocabularies (the language model's default) ---------------------------------

CHAR_SPECIALS = 4  # ids 0-3 are pad, unk, bos, eos, as in our SentencePiece models


def characters_of(text: str) -> str:
    """The sorted distinct characters of `text`: a character vocabulary, stored as a string.

    Id of the i-th character is `CHAR_SPECIALS + i`; a character not in it maps to
    `UNK_ID`, so new text with new characters is never an error.
    """
    return "".join(sorted(set(text)))


class CharTokenizer(tf.Module):
    """Characters <-> ids in-graph, with the `tokenize`/`detokenize` of tensorflow_text's
    SentencepieceTokenizer, so the language model's data, export and search use either.

    Input bytes that are not valid UTF-8 decode to U+FFFD (unknown unless it is in the
    vocabulary), never an error. Detokenizing drops the special ids (pad, unk, bos, eos).

    Args:
        characters: the vocabulary (`characters_of`), each character once.
    """

    def __init__(self, characters: str, name: str = "char_tokenizer"):
        super().__init__(name=name)
        if len(set(characters)) != len(characters):
            raise ValueError("a character vocabulary lists each character once")
        self.characters = characters
        codepoints = [ord(c) for c in characters]
        self.vocab_size = CHAR_SPECIALS + len(codepoints)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(codepoints or [-1], tf.int32),
                tf.range(CHAR_SPECIALS, CHAR_SPECIALS + max(len(codepoints), 1), dtype=tf.int32),
            ),
            default_value=UNK_ID,
        )
        # id -> codepoint; specials get 0 and are dropped on the way back.
        self.codepoints = tf.constant([0] * CHAR_SPECIALS + codepoints, tf.int32)

    def tokenize(self, strings) -> tf.RaggedTensor:
        """UTF-8 strings `[batch]` -> ids `[batch, (chars)]` int32 (ragged)."""
        chars = tf.strings.unicode_decode(
            strings, "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        return chars.with_flat_values(self.table.lookup(chars.flat_values))

    def detokenize(self, ids) -> tf.Tensor:
        """Ids `[batch, (steps)]` (ragged or dense) -> UTF-8 strings `[batch]`."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.ragged.boolean_mask(ids, ids >= CHAR_SPECIALS)
        flat = tf.gather(self.codepoints, tf.minimum(ids.flat_values, self.vocab_size - 1))
        return tf.strings.unicode_encode(ids.with_flat_values(flat), "UTF-8")


def piece_char_lengths(tokenizer) -> np.ndarray:
    """Characters each id stands for `[vocab]` float64 (0 for pad, bos, eos; 1 for unk):
    what bits per character divide by, so character and subword models compare.

    For SentencePiece the word-boundary mark counts as the space it stands for.
    """
    if isinstance(tokenizer, CharTokenizer):
        lengths = np.ones(tokenizer.vocab_size)
    else:
        size = int(tokenizer.vocab_size())
        pieces = tokenizer.id_to_string(tf.range(size)).numpy()
        lengths = np.array([len(p.decode("utf-8").replace("\u2581", " ")) for p in pieces], float)
    lengths[[PAD_ID, BOS_ID, EOS_ID]] = 0.0
    lengths[UNK_ID] = 1.0
    return lengths
