"""Cleans raw parallel text into the corpus training reads, with a report of what it did.

From a directory of `<split>.<lang>[.gz]` files (the Multi30k layout):
    python data_scripts/prepare_corpus.py --raw_dir=../shared/data/multi30k \
        --splits=train,val,test_2016_flickr --src_lang=en --tgt_lang=de --out_dir=data/m30k
From any two parallel files (one split, named by --splits, default "train"):
    python data_scripts/prepare_corpus.py --src=my.en --tgt=my.de --out_dir=data/mine
From the internet (downloaded once, checked against the sha256, unpacked, then as --raw_dir):
    python data_scripts/prepare_corpus.py --url=https://.../corpus.tar.gz --sha256=<hex> ...

Each line is decoded as UTF-8 (an invalid byte is an error naming file and line), a
BOM and CR line ends are dropped, Unicode is normalized (NFKC) and runs of whitespace
become one space. Pairs with an empty side are dropped and counted. Writes
`<out_dir>/<split>.<lang>` and `<out_dir>/report.json` (counts, length statistics).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import statistics
import tarfile
import tempfile
import unicodedata
import urllib.request
import zipfile

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

from seq2seq_tf.data.text import DataError, read_lines  # noqa: E402

_SPACES = re.compile(r"\s+")


def normalize(line: str) -> str:
    """NFKC, every whitespace run (tabs, NBSP, ...) to one space, no edge spaces."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", line)).strip()


def _length_stats(lines: list[str]) -> dict:
    lengths = sorted(len(line.split()) for line in lines) or [0]
    return {
        "mean_words": round(statistics.fmean(lengths), 2),
        "median_words": lengths[len(lengths) // 2],
        "p95_words": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        "max_words": lengths[-1],
    }


def prepare_pair(src_path: str, tgt_path: str, src_out: str, tgt_out: str) -> dict:
    """Cleans one parallel split; returns its report entry.

    Raises:
        DataError: a file is missing, not UTF-8 (file:line named) or the line counts differ.
    """
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"parallel files differ in length: {src_path} has {len(src)} lines, "
            f"{tgt_path} has {len(tgt)} lines"
        )
    kept_src, kept_tgt, empty_lines = [], [], []
    for number, (s, t) in enumerate(zip(src, tgt), start=1):
        s, t = normalize(s), normalize(t)
        if not s or not t:
            empty_lines.append(number)
            continue
        kept_src.append(s)
        kept_tgt.append(t)
    for path, lines in ((src_out, kept_src), (tgt_out, kept_tgt)):
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            out.writelines(line + "\n" for line in lines)
    return {
        "source": src_path,
        "target": tgt_path,
        "pairs": len(src),
        "kept": len(kept_src),
        "dropped_empty": len(empty_lines),
        "dropped_empty_lines": empty_lines[:20],
        "source_lengths": _length_stats(kept_src),
        "target_lengths": _length_stats(kept_tgt),
    }


def find_split(raw_dir: str, split: str, lang: str) -> str:
    """`<raw_dir>/<split>.<lang>` or its .gz."""
    for name in (f"{split}.{lang}", f"{split}.{lang}.gz"):
        path = os.path.join(raw_dir, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"no {split}.{lang} or {split}.{lang}.gz in {raw_dir}")


def prepare_directory(
    raw_dir: str, splits: list[str], src_lang: str, tgt_lang: str, out_dir: str
) -> dict:
    """Cleans every split of a raw directory; writes and returns the report."""
    report = {}
    for split in splits:
        report[split] = prepare_pair(
            find_split(raw_dir, split, src_lang),
            find_split(raw_dir, split, tgt_lang),
            os.path.join(out_dir, f"{split}.{src_lang}"),
            os.path.join(out_dir, f"{split}.{tgt_lang}"),
        )
    write_report(report, out_dir)
    return report


def write_report(report: dict, out_dir: str) -> str:
    path = os.path.join(out_dir, "report.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
    return path


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, sha256: str, dest_dir: str) -> str:
    """Downloads `url` (or copies a local path / file:// URL), checks its sha256, unpacks.

    Returns the directory the archive unpacked to (or holding the single file).
    """
    os.makedirs(dest_dir, exist_ok=True)
    name = os.path.basename(url.rstrip("/")) or "download"
    archive = os.path.join(dest_dir, name)
    if not os.path.exists(archive):
        with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as partial:
            if os.path.exists(url):
                with open(url, "rb") as source:
                    shutil.copyfileobj(source, partial)
            else:
                with urllib.request.urlopen(url) as response:  # noqa: S310 (user-given URL)
                    shutil.copyfileobj(response, partial)
        os.replace(partial.name, archive)
    actual = sha256_of(archive)
    if actual != sha256.lower():
        raise DataError(f"{archive}: sha256 is {actual}, expected {sha256}; delete it and retry")
    unpacked = os.path.join(dest_dir, "raw")
    os.makedirs(unpacked, exist_ok=True)
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked)
    else:
        shutil.copy(archive, unpacked)
    return unpacked


_RAW_DIR = flags.DEFINE_string("raw_dir", None, "Directory of <split>.<lang>[.gz] files.")
_SRC = flags.DEFINE_string("src", None, "Source file (plain or .gz), with --tgt.")
_TGT = flags.DEFINE_string("tgt", None, "Target file (plain or .gz), with --src.")
_URL = flags.DEFINE_string("url", None, "Archive to download (or a local path), with --sha256.")
_SHA256 = flags.DEFINE_string("sha256", None, "Expected sha256 of --url.")
_SPLITS = flags.DEFINE_list("splits", ["train"], "Split names (file stems).")
_SRC_LANG = flags.DEFINE_string("src_lang", "src", "Source language suffix.")
_TGT_LANG = flags.DEFINE_string("tgt_lang", "tgt", "Target language suffix.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where the clean corpus goes.", required=True)


def main(argv):
    out_dir = _OUT_DIR.value
    if _SRC.value or _TGT.value:
        if not (_SRC.value and _TGT.value) or len(_SPLITS.value) != 1:
            raise app.UsageError("--src and --tgt go together, with one --splits name")
        split = _SPLITS.value[0]
        report = {
            split: prepare_pair(
                _SRC.value,
                _TGT.value,
                os.path.join(out_dir, f"{split}.{_SRC_LANG.value}"),
                os.path.join(out_dir, f"{split}.{_TGT_LANG.value}"),
            )
        }
        write_report(report, out_dir)
    else:
        raw_dir = _RAW_DIR.value
        if _URL.value:
            if not _SHA256.value:
                raise app.UsageError("--url needs --sha256")
            unpacked = fetch(_URL.value, _SHA256.value, os.path.join(out_dir, "download"))
            raw_dir = os.path.join(unpacked, raw_dir) if raw_dir else unpacked
        if not raw_dir:
            raise app.UsageError("give --raw_dir, --src/--tgt or --url/--sha256")
        splits, langs = _SPLITS.value, (_SRC_LANG.value, _TGT_LANG.value)
        report = prepare_directory(raw_dir, splits, *langs, out_dir)
    for split, entry in report.items():
        print(
            f"{split}: {entry['pairs']} pairs, {entry['kept']} kept, {entry['dropped_empty']} "
            f"dropped as empty; mean words {entry['source_lengths']['mean_words']} / "
            f"{entry['target_lengths']['mean_words']}"
        )
    print(f"report: {os.path.join(out_dir, 'report.json')}")


if __name__ == "__main__":
    cli.run(main)
