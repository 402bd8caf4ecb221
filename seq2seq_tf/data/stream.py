"""A long text as `batch` contiguous rows cut into windows: truncated BPTT's input.

char-rnn's loader: the token stream of N tokens is cut into `batch` rows of
L = N // batch tokens (row b holds tokens b*L .. b*L + L - 1; the last N mod batch
are dropped), and window k holds columns k*T .. k*T + T - 1 of every row with the
next token as its target. So row b of window k + 1 continues row b of window k,
and a model that carries its final state into the next window reads each row as
one unbroken text. A training pass is the (L - 1) // T whole windows; the dataset
repeats the passes in order (no shuffling, which would break the rows) and flags
the first window of each, where the carried state resets.

Files are read with `data.text.read_lines` (plain or gzip; invalid UTF-8 names
file and line) and joined with "\\n", each file ending in one; a NUL byte is
taken for a binary file and refused, naming the line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from seq2seq_tf.data.text import DataError, read_lines


def read_text(paths: Sequence[str]) -> str:
    """The files, in order, as one text ("\\n" line ends, a final "\\n" per non-empty file).

    Raises:
        DataError: a file is missing, not UTF-8 or binary (names file and line), or all
            of them are empty.
    """
    parts = []
    for path in paths:
        lines = read_lines(path)
        for number, line in enumerate(lines, start=1):
            if "\x00" in line:
                raise DataError(f"{path}:{number}: NUL byte: a binary file, not text")
        if lines:
            parts.append("\n".join(lines) + "\n")
    text = "".join(parts)
    if not text.strip():
        raise DataError(f"no text in {', '.join(paths)}: the files are empty")
    return text


def split_paths(spec: str) -> list[str]:
    """ "a.txt,b.txt.gz" -> ["a.txt", "b.txt.gz"] (config fields name one or more files)."""
    return [p.strip() for p in spec.split(",") if p.strip()]


def tokenize_text(text: str, tokenizer, chunk_lines: int = 4096) -> np.ndarray:
    """The text's ids `[tokens]` int32, through the same in-graph tokenizer as the export.

    A character tokenizer sees every character, line ends included; SentencePiece
    sees one line at a time (it has no line-end piece: lines join at the word
    boundary its first piece carries).
    """
    from seq2seq_tf.data.vocab import CharTokenizer

    keeps_newlines = isinstance(tokenizer, CharTokenizer)
    lines = text.split("\n")
    if keeps_newlines:
        lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    else:
        lines = [line for line in lines if line.strip()]
    pieces = []
    for start in range(0, len(lines), chunk_lines):
        ids = tokenizer.tokenize(tf.constant(lines[start : start + chunk_lines]))
        pieces.append(ids.flat_values.numpy().astype(np.int32))
    return np.concatenate(pieces) if pieces else np.zeros([0], np.int32)


def contiguous_split(ids: np.ndarray, fractions: Sequence[float]) -> list[np.ndarray]:
    """Consecutive parts of `ids` with the given shares (e.g. 0.9, 0.05, 0.05), in order."""
    bounds = np.round(np.cumsum([0.0, *fractions]) * len(ids)).astype(int)
    bounds[-1] = min(bounds[-1], len(ids))
    return [ids[a:b] for a, b in zip(bounds, bounds[1:])]


def stream_rows(ids: np.ndarray, batch: int) -> np.ndarray:
    """`[batch, L]` with L = len(ids) // batch: row b is ids[b*L : (b+1)*L]."""
    length = len(ids) // batch
    return np.asarray(ids[: batch * length]).reshape(batch, length)


def check_stream(ids: np.ndarray, batch: int, window: int, what: str) -> int:
    """Windows per pass; raises DataError naming `what` when there is not one whole window."""
    length = len(ids) // batch
    windows = (length - 1) // window if length else 0
    if windows < 1:
        raise DataError(
            f"{what}: {len(ids)} tokens make rows of {length} for batch {batch}, shorter than "
            f"one window of {window} + 1; need at least {batch * (window + 1)} tokens "
            "(lower data.batch_size or lm.window, or give more text)"
        )
    return windows


def windows(ids: np.ndarray, batch: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every whole window of one pass: inputs and targets `[windows, batch, window]`.

    targets[k, b, t] = inputs[k, b, t + 1] within a window, and the last target of
    window k is the first input of window k + 1 (the same row continues).
    """
    rows = stream_rows(ids, batch)
    count = (rows.shape[1] - 1) // window
    used = rows[:, : count * window + 1]
    inputs = used[:, :-1].reshape(batch, count, window).transpose(1, 0, 2)
    targets = used[:, 1:].reshape(batch, count, window).transpose(1, 0, 2)
    return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)


def make_stream_dataset(
    ids: np.ndarray, batch: int, window: int, repeat: bool = True
) -> tf.data.Dataset:
    """Windows in stream order: `(inputs [batch, window], targets [batch, window],
    first [batch] bool)`, `first` true on the first window of a pass (state resets).

    The pass repeats forever with `repeat` (training; the iterator is checkpointable,
    so a resumed run continues at the same window), else runs once.
    """
    check_stream(ids, batch, window, "training text")
    inputs, targets = windows(ids, batch, window)
    first = np.zeros([inputs.shape[0], batch], bool)
    first[0] = True
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets, first))
    return dataset.repeat() if repeat else dataset
