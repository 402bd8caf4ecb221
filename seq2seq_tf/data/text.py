"""The one reader of text files (plain or gzip, UTF-8, errors that name file and line),
and the opener of the files commands write."""

from __future__ import annotations

import contextlib
import gzip
import os
import sys

import tensorflow as tf

from seq2seq_tf.errors import UserError


class DataError(UserError, ValueError):
    """Bad input text; the message names the file and line."""


def _open_lines(path: str):
    if path == "-":  # read, not closed: the process may read stdin again
        return contextlib.nullcontext(sys.stdin.buffer)
    if not tf.io.gfile.exists(path):
        raise DataError(f"file not found: {path}")
    raw = tf.io.gfile.GFile(path, "rb")
    return gzip.open(raw) if path.endswith(".gz") else raw


def read_lines(path: str) -> list[str]:
    """All lines of a plain or gzip UTF-8 file ("-": stdin), without line ends (CRLF)
    or a leading BOM.

    Raises:
        DataError: the file is missing or a line is not valid UTF-8 (names the line).
    """
    lines = []
    with _open_lines(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{number}: invalid UTF-8 ({err.reason})") from err
            lines.append(line[1:] if number == 1 and line.startswith("\ufeff") else line)
    return lines


def open_output(path: str, *inputs: str, flag: str = "--output"):
    """Opens `path` ("-" = stdout) for writing before any work, so a bad path fails at once.

    Raises:
        DataError: `path` is one of `inputs` (it would be overwritten) or cannot be written.
    """
    if path == "-":
        return contextlib.nullcontext(sys.stdout)
    for source in inputs:
        if source and source != "-" and os.path.exists(path) and os.path.samefile(path, source):
            raise DataError(f"{flag} {path} is the input file {source}; it would be overwritten")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot write {flag} {path}: {err.strerror or err}") from err
