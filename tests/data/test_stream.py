"""data.stream and the character vocabulary: rows that continue across windows, the
first-window flag, files read as one stream, and clear errors for bad text."""

import gzip

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.data import stream, vocab
from seq2seq_tf.data.text import DataError


def test_row_b_of_window_k_plus_1_continues_row_b_of_window_k():
    ids = np.arange(103, dtype=np.int32)  # 103 // 4 = 25 per row, 3 dropped
    inputs, targets = stream.windows(ids, batch=4, window=6)
    assert inputs.shape == targets.shape == (4, 4, 6)  # (25 - 1) // 6 = 4 windows
    for k in range(4):
        for b in range(4):
            start = b * 25 + k * 6  # row b holds ids[b*25 : b*25 + 25]
            np.testing.assert_array_equal(inputs[k, b], np.arange(start, start + 6))
            np.testing.assert_array_equal(targets[k, b], np.arange(start + 1, start + 7))
            if k:
                assert inputs[k, b, 0] == targets[k - 1, b, -1]


def test_dataset_repeats_passes_in_order_and_flags_each_first_window():
    ids = np.arange(2 * 13, dtype=np.int32)
    dataset = stream.make_stream_dataset(ids, batch=2, window=4)
    got = [tuple(x.numpy() for x in element) for element in dataset.take(7)]
    inputs, _ = stream.windows(ids, 2, 4)  # 3 windows per pass
    for i, (window_inputs, _, first) in enumerate(got):
        np.testing.assert_array_equal(window_inputs, inputs[i % 3])
        assert first.tolist() == [i % 3 == 0] * 2


def test_files_plain_and_gzip_are_one_stream(tmp_path):
    (tmp_path / "a.txt").write_text("one\r\ntwo\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("thrée")
    paths = stream.split_paths(f"{tmp_path / 'a.txt'}, {tmp_path / 'b.txt.gz'}")
    assert stream.read_text(paths) == "one\ntwo\nthrée\n"


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nfine\nbad \xff here\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: invalid UTF-8"):
        stream.read_text([str(path)])


def test_a_binary_file_and_an_empty_file_are_refused(tmp_path):
    binary = tmp_path / "image.bin"
    binary.write_bytes(bytes(range(0, 128)) * 4)  # valid UTF-8 but full of NULs
    with pytest.raises(DataError, match=r"image\.bin:1: NUL byte: a binary file"):
        stream.read_text([str(binary)])
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match=r"noise\.bin:\d+: invalid UTF-8"):
        stream.read_text([str(noise)])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no text in .*empty.txt"):
        stream.read_text([str(empty)])


def test_text_shorter_than_one_window_names_what_is_needed():
    with pytest.raises(DataError, match=r"train\.txt: 40 tokens .* need at least 132 tokens"):
        stream.check_stream(np.zeros(40, np.int32), 4, 32, "train.txt")
    assert stream.check_stream(np.zeros(132, np.int32), 4, 32, "train.txt") == 1


def test_contiguous_split_keeps_order_and_shares():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, valid, test = stream.contiguous_split(text, [0.9, 0.05, 0.05])
    assert (len(train), len(valid), len(test)) == (900, 50, 50)
    assert train + valid + test == text


def test_character_tokenizer_round_trip_unknowns_and_bad_bytes():
    tokenizer = vocab.CharTokenizer(vocab.characters_of("abc\n é"))
    assert tokenizer.vocab_size == vocab.CHAR_SPECIALS + 6
    ids = tokenizer.tokenize(tf.constant(["abc\né", "", "aXb", b"a\xffb"])).to_list()
    order = sorted("abc\n é")
    assert ids[0] == [vocab.CHAR_SPECIALS + order.index(c) for c in "abc\né"]
    assert ids[1] == []
    assert ids[2][1] == ids[3][1] == vocab.UNK_ID  # unknown and invalid bytes
    back = tokenizer.detokenize(tf.ragged.constant(ids)).numpy().tolist()
    assert back == ["abc\né".encode(), b"", b"ab", b"ab"]  # special ids are dropped
    dense = tokenizer.detokenize(tf.constant([[vocab.BOS_ID, ids[0][0], vocab.PAD_ID]]))
    assert dense.numpy().tolist() == [b"a"]


def test_tokenize_text_keeps_every_character_and_line_end():
    text = "First Citizen:\nBefore we proceed\n\nany further\n"
    tokenizer = vocab.CharTokenizer(vocab.characters_of(text))
    ids = stream.tokenize_text(text, tokenizer, chunk_lines=2)
    assert len(ids) == len(text)
    assert tokenizer.detokenize(tf.constant(ids[None])).numpy()[0].decode() == text


def test_piece_char_lengths_count_characters_not_tokens(tmp_path):
    chars = vocab.piece_char_lengths(vocab.CharTokenizer("ab"))
    assert chars.tolist() == [0, 1, 0, 0, 1, 1]
    lines = [f"the {w} sat on the mat" for w in ("cat", "dog", "bird", "fish")] * 50
    (tmp_path / "t.txt").write_text("\n".join(lines))
    model = vocab.train_sentencepiece([str(tmp_path / "t.txt")], str(tmp_path / "sp"), 40)
    sp = vocab.make_tokenizer(vocab.read_model_proto(model))
    lengths = vocab.piece_char_lengths(sp)
    ids = sp.tokenize(tf.constant(["the cat sat"])).to_list()[0]
    # Pieces cover the text and the word-boundary mark before each word, as spaces.
    assert sum(lengths[i] for i in ids) == len(" the cat sat")
