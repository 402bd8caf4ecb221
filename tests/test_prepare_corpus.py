"""Tests for data_scripts/prepare_corpus.py: cleaning, errors that name file and line, fetch."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile

import pytest
from support import load_script

from seq2seq_tf.data.text import DataError

pc = load_script("prepare_corpus")


def _write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def test_cleans_bom_crlf_nfkc_whitespace_and_drops_empty_pairs(tmp_path):
    src = _write(tmp_path / "a.en", "\ufeffA  dog\t runs .\r\n\r\nﬁne ① cat\r\nx\n".encode())
    tgt_text = "Ein Hund läuft .\r\nleer\r\nfeine Katze\r\n \u00a0 \n"
    tgt = _write(tmp_path / "a.de", tgt_text.encode())
    report = pc.prepare_pair(src, tgt, str(tmp_path / "o.en"), str(tmp_path / "o.de"))
    assert (tmp_path / "o.en").read_text(encoding="utf-8") == "A dog runs .\nfine 1 cat\n"
    assert (tmp_path / "o.de").read_text(encoding="utf-8") == "Ein Hund läuft .\nfeine Katze\n"
    assert report["pairs"] == 4 and report["kept"] == 2 and report["dropped_empty"] == 2
    assert report["dropped_empty_lines"] == [2, 4]
    assert report["source_lengths"]["max_words"] == 4  # "A dog runs ."


def test_mismatched_line_counts_name_both_files(tmp_path):
    src = _write(tmp_path / "a.en", b"one\ntwo\n")
    tgt = _write(tmp_path / "a.de", b"eins\n")
    with pytest.raises(DataError, match=r"a\.en has 2 lines.*a\.de has 1 lines"):
        pc.prepare_pair(src, tgt, str(tmp_path / "o.en"), str(tmp_path / "o.de"))


def test_invalid_utf8_names_file_and_line(tmp_path):
    src = _write(tmp_path / "a.en", b"one\ntwo\nbad \xff byte\n")
    tgt = _write(tmp_path / "a.de", b"eins\nzwei\ndrei\n")
    with pytest.raises(DataError, match=r"a\.en:3: invalid UTF-8"):
        pc.prepare_pair(src, tgt, str(tmp_path / "o.en"), str(tmp_path / "o.de"))


def _raw_dir(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for split, n in (("train", 5), ("val", 2)):
        for lang in ("en", "de"):
            lines = "".join(f"{split} {lang} {i}\n" for i in range(n)).encode()
            (raw / f"{split}.{lang}.gz").write_bytes(gzip.compress(lines))
    return raw


def test_directory_of_gzip_splits_and_report(tmp_path):
    raw = _raw_dir(tmp_path)
    out = tmp_path / "out"
    report = pc.prepare_directory(str(raw), ["train", "val"], "en", "de", str(out))
    assert (out / "val.de").read_text() == "val de 0\nval de 1\n"
    stored = json.loads((out / "report.json").read_text())
    assert stored == report and stored["train"]["kept"] == 5
    with pytest.raises(DataError, match=r"no test\.en or test\.en\.gz in"):
        pc.prepare_directory(str(raw), ["test"], "en", "de", str(out))


def test_fetch_checks_sha256_and_unpacks(tmp_path):
    raw = _raw_dir(tmp_path)
    archive = tmp_path / "corpus.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(raw, arcname="corpus")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="sha256 is"):
        pc.fetch(str(archive), "0" * 64, str(tmp_path / "bad"))
    unpacked = pc.fetch(str(archive), digest, str(tmp_path / "dl"))
    report = pc.prepare_directory(f"{unpacked}/corpus", ["train"], "en", "de", str(tmp_path / "o"))
    assert report["train"]["kept"] == 5


def test_command_line_on_a_file_pair(tmp_path):
    import subprocess
    import sys

    from support import ROOT

    src = _write(tmp_path / "s.txt", b"a b\nc\n")
    tgt = _write(tmp_path / "t.txt", b"x\ny z\n")
    out = tmp_path / "o"
    result = subprocess.run(
        [sys.executable, str(ROOT / "data_scripts/prepare_corpus.py"), f"--src={src}",
         f"--tgt={tgt}", "--src_lang=en", "--tgt_lang=de", f"--out_dir={out}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "train: 2 pairs, 2 kept" in result.stdout
    assert (out / "train.en").read_text() == "a b\nc\n"
