"""Training: `python -m seq2seq_tf.train --config=configs/quickstart.py --workdir=runs/x`.

Running the same command again resumes where the run stopped. The workdir keeps
what export needs: config.json, the SentencePiece model, the checkpoints, and
TensorBoard logs under workdir/tensorboard (see seq2seq_tf/workdir.py).
"""

from __future__ import annotations

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from seq2seq_tf.training.loop import train_and_evaluate  # noqa: E402


def main(argv):
    train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).")
    flags.DEFINE_string("workdir", None, "Where checkpoints and logs go.")
    flags.mark_flags_as_required(["config", "workdir"])
    cli.run(main)


if __name__ == "__main__":
    run()
