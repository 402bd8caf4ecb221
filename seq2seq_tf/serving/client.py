"""Calling a translation model: a SavedModel (or its in-process twin) from Python.

`make_request` picks the signature for the decoding flags and `translate_lines`
batches sentences by length and returns them in input order; both take a
mapping of signature name -> callable (a loaded SavedModel's `.signatures`, or
`Translator.signature_functions()` in process).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import tensorflow as tf
from absl import logging

from seq2seq_tf.errors import MissingFileError


def resolve_saved_model(model_dir: str) -> str:
    """A SavedModel directory, or the highest numeric version under a base path."""
    if tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    if tf.io.gfile.isdir(model_dir):
        versions = [v.rstrip("/") for v in tf.io.gfile.listdir(model_dir)]
        versions = sorted((int(v) for v in versions if v.isdigit()), reverse=True)
        for version in versions:
            path = os.path.join(model_dir, str(version))
            if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
                return path
    raise MissingFileError(f"no SavedModel at {model_dir} (nor in a numeric version below it)")


def make_request(
    signatures: Mapping,
    beam_width: int | None = None,
    nbest: int = 1,
    temperature: float | None = None,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
):
    """Picks the signature for the flags; returns `call(strings) -> (texts [b][n], scores [b][n])`.

    Sampling when a temperature is given, `translate_nbest` for an n-best list or
    a beam width other than the export default, `serving_default` otherwise.
    """
    if temperature is not None:
        fn = signatures["sample"]
        args = {
            "temperature": tf.constant(float(temperature)),
            "top_k": tf.constant(int(top_k)),
            "top_p": tf.constant(float(top_p)),
            "seed": tf.constant(int(seed)),
        }
    elif nbest > 1 or beam_width is not None:
        fn = signatures["translate_nbest"]
        width = beam_width if beam_width is not None else nbest
        args = {"n": tf.constant(int(nbest)), "beam_width": tf.constant(int(width))}
    else:
        fn, args = signatures["serving_default"], {}

    def call(batch: list[str]):
        result = fn(inputs=tf.constant(batch), **args)
        texts = result["translations"].numpy().reshape(len(batch), -1)
        scores = result["scores"].numpy().reshape(len(batch), -1)
        return [[t.decode("utf-8") for t in row] for row in texts], scores.tolist()

    return call


def translate_lines(
    call, lines: list[str], batch_size: int = 64, show_progress: bool = False
) -> tuple[list[list[str]], list[list[float]]]:
    """Translates in batches of similar length; returns outputs in input order.

    Args:
        call: from `make_request` (or any `strings -> (texts, scores)` per sentence lists).
    """
    order = sorted(range(len(lines)), key=lambda i: len(lines[i]))
    translations: list[list[str]] = [[] for _ in lines]
    scores: list[list[float]] = [[] for _ in lines]
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        indices = order[first : first + batch_size]
        texts, batch_scores = call([lines[i] for i in indices])
        for i, text, score in zip(indices, texts, batch_scores):
            translations[i], scores[i] = list(text), list(score)
        done = min(first + batch_size, len(order))
        if show_progress and (done == len(order) or (first // batch_size) % 10 == 9):
            rate = done / max(time.perf_counter() - start, 1e-9)
            logging.info("translated %d/%d sentences (%.1f sent/s)", done, len(order), rate)
    return translations, scores
