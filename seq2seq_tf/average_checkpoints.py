"""Averages the model weights of the last N checkpoints of a run (a cheap ensemble).

    python -m seq2seq_tf.average_checkpoints --workdir=runs/x --last=5
    python -m seq2seq_tf.export --workdir=runs/x --checkpoint=runs/x/averaged/averaged-5000 ...

Writes `<workdir>/averaged/averaged-<newest step>`, a model-only checkpoint that
`export --checkpoint` and `evaluate --checkpoint` take like any other.
"""

from __future__ import annotations

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

from seq2seq_tf.training.checkpoints import average_checkpoints  # noqa: E402


def main(argv):
    f = flags.FLAGS
    print(f"averaged checkpoint: {average_checkpoints(f.workdir, f.last, f.output_dir)}")


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("workdir", None, "Training workdir.")
    flags.DEFINE_integer("last", 5, "How many of the newest checkpoints to average.", lower_bound=1)
    flags.DEFINE_string("output_dir", None, "Where to write (default: <workdir>/averaged).")
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)


if __name__ == "__main__":
    run()
