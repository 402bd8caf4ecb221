"""The one reader of text files: plain, gzip or stdin, UTF-8, errors naming file and line."""

import gzip
import io
import sys

import pytest

from seq2seq_tf.data import text
from seq2seq_tf.data.text import DataError


def test_invalid_utf8_names_file_and_line(tmp_path):
    (tmp_path / "bad.src").write_bytes(b"fine\nalso fine\nbroken \xff\xfe here\n")
    with pytest.raises(DataError, match=r"bad\.src:3: invalid UTF-8"):
        text.read_lines(str(tmp_path / "bad.src"))


def test_bad_utf8_input_names_the_line_and_is_a_value_error(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"ok\n\xc3\x28\n")
    with pytest.raises(ValueError, match=r"in\.txt:2: invalid UTF-8"):
        text.read_lines(str(tmp_path / "in.txt"))
    assert issubclass(DataError, ValueError)


def test_invalid_utf8_in_gzip_names_file_and_line(tmp_path):
    with gzip.open(tmp_path / "bad.txt.gz", "wb") as f:
        f.write(b"eins\nzwei\ndrei\nvier \xc3\n")
    with pytest.raises(DataError, match=r"bad\.txt\.gz:4: invalid UTF-8"):
        text.read_lines(str(tmp_path / "bad.txt.gz"))


def test_gzip_and_plain_read_the_same(tmp_path):
    content = "ein satz\nnoch einer\r\n"
    (tmp_path / "x.txt").write_text(content, encoding="utf-8", newline="")
    with gzip.open(tmp_path / "x.txt.gz", "wt", encoding="utf-8", newline="") as f:
        f.write(content)
    assert text.read_lines(str(tmp_path / "x.txt")) == ["ein satz", "noch einer"]
    assert text.read_lines(str(tmp_path / "x.txt.gz")) == ["ein satz", "noch einer"]


def test_missing_file_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match="file not found: .*nope.txt"):
        text.read_lines(str(tmp_path / "nope.txt"))


def test_a_leading_bom_is_dropped_plain_and_gzip(tmp_path):
    content = "\ufefferste zeile\nzweite \ufeff bleibt\n"
    (tmp_path / "bom.txt").write_text(content, encoding="utf-8")
    with gzip.open(tmp_path / "bom.txt.gz", "wt", encoding="utf-8") as f:
        f.write(content)
    expected = ["erste zeile", "zweite \ufeff bleibt"]  # only the file's first BOM goes
    assert text.read_lines(str(tmp_path / "bom.txt")) == expected
    assert text.read_lines(str(tmp_path / "bom.txt.gz")) == expected


def test_empty_lines_and_a_missing_final_newline_are_kept_as_lines(tmp_path):
    (tmp_path / "e.txt").write_bytes(b"a\n\nb")
    assert text.read_lines(str(tmp_path / "e.txt")) == ["a", "", "b"]
    (tmp_path / "none.txt").write_bytes(b"")
    assert text.read_lines(str(tmp_path / "none.txt")) == []


def test_dash_reads_stdin(monkeypatch):
    raw = "\ufeffvon der\r\nstandardeingabe\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    assert text.read_lines("-") == ["von der", "standardeingabe"]


def test_dash_with_invalid_utf8_names_stdin_and_line(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"gut\n\xff\n")))
    with pytest.raises(DataError, match=r"^-:2: invalid UTF-8"):
        text.read_lines("-")


def test_open_output_refuses_an_input_and_names_an_unwritable_path(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(text.DataError, match="--output .* is the input file .*overwritten"):
        text.open_output(str(tmp_path / "." / "in.txt"), "-", str(source))
    with pytest.raises(text.DataError, match=r"cannot write --hyp .*in.txt/x"):
        text.open_output(str(source / "x"), flag="--hyp")
    assert source.read_text(encoding="utf-8") == "keep me\n"
    with text.open_output(str(tmp_path / "new" / "dir" / "out.txt"), str(source)) as out:
        out.write("ok\n")  # missing directories are made
    assert (tmp_path / "new" / "dir" / "out.txt").read_text() == "ok\n"
