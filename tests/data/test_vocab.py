"""SentencePiece: the in-graph op agrees with the library, special ids are checked."""

import pytest
import sentencepiece as spm
import tensorflow as tf

from seq2seq_tf.data import vocab
from seq2seq_tf.errors import UserError


def test_in_graph_tokenizer_matches_sentencepiece(toy_data):
    proto = vocab.read_model_proto(toy_data["spm_model"])
    processor = spm.SentencePieceProcessor(model_file=toy_data["spm_model"])
    lines = open(toy_data["test_src"], encoding="utf-8").read().splitlines()[:20]
    ours = vocab.make_tokenizer(proto).tokenize(tf.constant(lines)).to_list()
    assert ours == [processor.encode(line) for line in lines]
    assert processor.pad_id() == vocab.PAD_ID and processor.eos_id() == vocab.EOS_ID


def test_model_with_other_special_ids_is_rejected(toy_data, tmp_path):
    prefix = str(tmp_path / "other")  # the library's default special ids
    vocab.run_trainer(input=toy_data["train_src"], model_prefix=prefix, vocab_size=100)
    with pytest.raises(ValueError, match="other.model: special ids"):
        vocab.read_model_proto(prefix + ".model")


def test_missing_or_garbage_model_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.model"):
        vocab.read_model_proto(str(tmp_path / "nope.model"))
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="garbage.model is not a SentencePiece model"):
        vocab.read_model_proto(str(garbage))


def test_training_runs_apart_from_tensorflow_and_a_failure_is_one_line(toy_data, tmp_path):
    model = vocab.train_sentencepiece([toy_data["train_src"]], str(tmp_path / "sp"), 50)
    assert vocab.vocab_size_of(model) == 50
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(UserError, match="SentencePiece training on .*empty.txt failed: "):
        vocab.train_sentencepiece([str(empty)], str(tmp_path / "none"), 50)
