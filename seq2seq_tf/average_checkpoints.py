"""Averages the model weights of the last N checkpoints of a run (a cheap ensemble).

    python -m seq2seq_tf.average_checkpoints --workdir=runs/x --last=5
    python -m seq2seq_tf.export --workdir=runs/x --checkpoint=runs/x/averaged/averaged-5000 ...

Writes `<workdir>/averaged/averaged-<newest step>`, a model-only checkpoint that
`export --checkpoint` and `evaluate --checkpoint` take like any other.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from seq2seq_tf.export import restore_model  # noqa: E402
from seq2seq_tf.workdir import CHECKPOINT_DIR  # noqa: E402

AVERAGED_DIR = "averaged"


def last_checkpoints(workdir: str, last: int) -> list[str]:
    """The newest `last` rolling checkpoints, oldest first."""
    state = tf.train.get_checkpoint_state(os.path.join(workdir, CHECKPOINT_DIR))
    paths = list(state.all_model_checkpoint_paths) if state else []
    if not paths:
        raise FileNotFoundError(f"no checkpoints in {os.path.join(workdir, CHECKPOINT_DIR)}")
    if last > len(paths):
        logging.warning("asked for %d checkpoints, %s keeps %d", last, workdir, len(paths))
    return paths[-last:]


def average_checkpoints(workdir: str, last: int, output_dir: str | None = None) -> str:
    """Writes the mean of every model weight over the last checkpoints; returns its path."""
    paths = last_checkpoints(workdir, last)
    total = None
    for path in paths:
        model, _ = restore_model(workdir, path)
        weights = [w.numpy().astype(np.float64) for w in model.weights]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    for variable, summed in zip(model.weights, total):
        # Keras 3 variables name their dtype as a string; numpy takes it as it is.
        variable.assign((summed / len(paths)).astype(np.dtype(variable.dtype)))
    output_dir = output_dir or os.path.join(workdir, AVERAGED_DIR)
    step = paths[-1].rsplit("-", 1)[-1]
    saved = tf.train.Checkpoint(model=model).write(os.path.join(output_dir, f"averaged-{step}"))
    logging.info(
        "averaged %d checkpoints (%s .. %s) into %s", len(paths), paths[0], paths[-1], saved
    )
    return saved


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    print(f"averaged checkpoint: {average_checkpoints(f.workdir, f.last, f.output_dir)}")


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("workdir", None, "Training workdir.")
    flags.DEFINE_integer("last", 5, "How many of the newest checkpoints to average.")
    flags.DEFINE_string("output_dir", None, "Where to write (default: <workdir>/averaged).")
    flags.mark_flags_as_required(["workdir"])
    app.run(main)


if __name__ == "__main__":
    run()
