"""Export: `python -m seq2seq_tf.export --workdir=runs/x --export_dir=exported/x`.

Writes a SavedModel at `<export_dir>/<version>/` (the layout TF Serving
expects under a model base path) holding the tokenizer, the model and the
search in one graph. Raw strings in, translations and log-probabilities out;
it runs with nothing but `tensorflow` and `tensorflow_text` imported.
"""

from __future__ import annotations

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

from seq2seq_tf.serving.export import export  # noqa: E402
from seq2seq_tf.serving.translator import SearchDefaults  # noqa: E402


def main(argv):
    f = flags.FLAGS
    defaults = SearchDefaults(
        beam_width=f.beam_width,
        length_penalty=f.length_penalty,
        coverage_penalty=f.coverage_penalty,
    )
    path = export(f.workdir, f.export_dir, f.version, f.checkpoint, f.spm_model, defaults)
    print(f"SavedModel: {path}")


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("workdir", None, "Training workdir to export.")
    flags.DEFINE_string("export_dir", None, "Model base path; writes <dir>/<version>.")
    flags.DEFINE_integer(
        "version", None, "Version subdirectory (default: the step).", lower_bound=0
    )
    flags.DEFINE_string("checkpoint", None, "Checkpoint (default: best dev BLEU, else latest).")
    flags.DEFINE_string("spm_model", None, "SentencePiece model (default: the workdir's).")
    flags.DEFINE_integer(
        "beam_width", 4, "Beam width of serving_default (1 = greedy).", lower_bound=1
    )
    flags.DEFINE_float("length_penalty", 0.6, "GNMT length penalty alpha (0 = off).")
    flags.DEFINE_float("coverage_penalty", 0.0, "GNMT coverage penalty beta (0 = off).")
    flags.mark_flags_as_required(["workdir", "export_dir"])
    cli.run(main)


if __name__ == "__main__":
    run()
