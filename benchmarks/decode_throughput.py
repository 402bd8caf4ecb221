"""Decoding speed of an exported SavedModel: sentences/s and target pieces/s.

    python benchmarks/decode_throughput.py --model_dir=runs/demo/export \
        --input=data/toy/test.src

Greedy (beam 1) and beam 4/8 at batch sizes 1, 16 and 64, through the
`translate_nbest` signature (the beam width is a request argument), after one
warm-up pass per setting so tracing is not timed. The ratio column compares
each row with greedy at the same batch size, measured in the same run.
Run it alone: two timing jobs on two cores spoil each other.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402, F401
from absl import app, flags  # noqa: E402

from seq2seq_tf.translate import read_text, resolve_saved_model  # noqa: E402

_MODEL = flags.DEFINE_string("model_dir", "runs/demo/export", "SavedModel or base path.")
_INPUT = flags.DEFINE_string("input", "data/toy/test.src", "Source sentences.")
_LIMIT = flags.DEFINE_integer("limit", 1000, "Sentences to translate per setting.")
_BEAMS = flags.DEFINE_list("beams", ["1", "4", "8"], "Beam widths.")
_BATCHES = flags.DEFINE_list("batches", ["1", "16", "64"], "Batch sizes.")
_BATCH1_LIMIT = flags.DEFINE_integer("batch1_limit", 200, "Sentences at batch size 1 (slow).")


def measure(fn, lines: list[str], batch_size: int, beam: int) -> tuple[float, float]:
    """(sentences/s, target pieces/s) for one setting; pieces counted by whitespace words."""
    ordered = sorted(lines, key=len)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    args = {"n": tf.constant(1), "beam_width": tf.constant(beam)}
    fn(inputs=tf.constant(batches[0]), **args)  # trace outside the timing
    words = 0
    start = time.perf_counter()
    for batch in batches:
        out = fn(inputs=tf.constant(batch), **args)["translations"].numpy()
        words += sum(len(t.split()) for t in out.ravel())
    elapsed = time.perf_counter() - start
    return len(ordered) / elapsed, words / elapsed


def main(argv):
    del argv
    path = resolve_saved_model(_MODEL.value)
    fn = tf.saved_model.load(path).signatures["translate_nbest"]
    lines = read_text(_INPUT.value)[: _LIMIT.value]
    print(f"model {path}; {len(lines)} sentences from {_INPUT.value}")
    print(f"{'batch':>5} {'beam':>4} {'sent/s':>9} {'words/s':>9} {'vs greedy':>9}")
    for batch in (int(b) for b in _BATCHES.value):
        sample = lines[: _BATCH1_LIMIT.value] if batch == 1 else lines
        greedy = None
        for beam in (int(b) for b in _BEAMS.value):
            sents, words = measure(fn, sample, batch, beam)
            greedy = greedy or sents
            print(f"{batch:>5} {beam:>4} {sents:>9.1f} {words:>9.1f} {sents / greedy:>9.2f}")


if __name__ == "__main__":
    app.run(main)
