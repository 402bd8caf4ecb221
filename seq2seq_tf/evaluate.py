"""Scores translations of a test set: sacreBLEU, chrF and the Multi30k BLEU(lc,tok).

    python -m seq2seq_tf.evaluate --model_dir=exported/x --source=test.en \
        --reference=test.de --target_lang=de --output=runs/x/test.hyp --beam_width=5
    python -m seq2seq_tf.evaluate --workdir=runs/x ...        # a checkpoint, no export needed

The hypotheses go to `--output`, the scores next to them as
`<output>.scores.json` (see `evaluation.metrics` for what each score is).
"""

from __future__ import annotations

import contextlib
import json

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from seq2seq_tf.data.text import DataError, open_output, read_lines  # noqa: E402
from seq2seq_tf.errors import UserError  # noqa: E402
from seq2seq_tf.evaluation.metrics import evaluate, format_scores  # noqa: E402
from seq2seq_tf.serving.client import resolve_saved_model  # noqa: E402
from seq2seq_tf.serving.export import serving_module  # noqa: E402
from seq2seq_tf.serving.translator import SearchDefaults  # noqa: E402


def main(argv):
    f = flags.FLAGS
    if bool(f.model_dir) == bool(f.workdir):
        raise UserError("give exactly one of --model_dir (SavedModel) and --workdir")
    sources = read_lines(f.source)
    references = read_lines(f.reference)
    if len(sources) != len(references):
        raise DataError(
            f"{f.source} has {len(sources)} lines but {f.reference} has {len(references)}"
        )
    # Opened before decoding: a bad --output fails now, not after the work.
    with contextlib.ExitStack() as files:
        if f.output:
            out = files.enter_context(open_output(f.output, f.source, f.reference))
            scores_out = files.enter_context(
                open_output(f"{f.output}.scores.json", f.source, f.reference)
            )
        if f.model_dir:
            signatures = tf.saved_model.load(resolve_saved_model(f.model_dir)).signatures
            beam_width = f.beam_width
        else:
            defaults = SearchDefaults(beam_width=f.beam_width or 4)
            translator, checkpoint = serving_module(f.workdir, f.checkpoint, defaults=defaults)
            signatures = translator.signature_functions()
            logging.info("evaluating checkpoint %s", checkpoint)
            beam_width = None  # the in-process module's default beam is --beam_width
        hypotheses, scores = evaluate(signatures, sources, references, f.target_lang, beam_width)
        if f.output:
            out.writelines(h + "\n" for h in hypotheses)
            json.dump(scores, scores_out, indent=2)
            print(f"hypotheses: {f.output}\nscores:     {f.output}.scores.json")
    print(format_scores(scores))


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base path.")
    flags.DEFINE_string("workdir", None, "Training workdir (decodes a checkpoint, no export).")
    flags.DEFINE_string("checkpoint", None, "With --workdir: checkpoint (default: best).")
    flags.DEFINE_string("source", None, "Source sentences, plain or .gz.")
    flags.DEFINE_string("reference", None, "Reference translations, plain or .gz.")
    flags.DEFINE_string("output", None, "Where the hypotheses go (scores beside them).")
    flags.DEFINE_string("target_lang", "en", "Target language for the Moses BLEU(lc,tok).")
    flags.DEFINE_integer(
        "beam_width", None, "Beam width (default: the export's, 4 for --workdir).", lower_bound=1
    )
    flags.mark_flags_as_required(["source", "reference"])
    cli.run(main)


if __name__ == "__main__":
    run()
