"""Translate with an exported SavedModel; needs only tensorflow + tensorflow_text.

    python -m seq2seq_tf.translate --model_dir=exported/x --input=test.src \
        --output=test.hyp --reference=test.tgt

`--model_dir` may be a SavedModel or a TF Serving base path (`<dir>/<version>/`,
the highest version is used). Sentences are batched by length for speed and
written back in input order. `--beam_width`, `--nbest` and the sampling flags
(`--temperature`, `--top_k`, `--top_p`, `--seed`) pick the signature;
`--plot_attention=DIR` writes heatmaps; `--reference` prints exact match and BLEU.
"""

from __future__ import annotations

import os
import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402, F401  (registers the SentencePiece ops)
from absl import flags, logging  # noqa: E402

from seq2seq_tf.data.text import DataError, open_output, read_lines  # noqa: E402
from seq2seq_tf.serving.client import make_request, resolve_saved_model, translate_lines  # noqa: E402

_CHUNK = 20000  # sentences sorted by length and written together


def report_scores(hypotheses: list[str], references: list[str], sources: list[str]) -> dict:
    """Prints exact match, sacreBLEU and a few examples; returns the numbers."""
    import sacrebleu  # only needed when scoring

    from seq2seq_tf.evaluation.metrics import exact_match

    exact = exact_match(hypotheses, references)
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    print("examples:")
    for src, hyp, ref in list(zip(sources, hypotheses, references))[:5]:
        print(f"  source:     {src}\n  translation: {hyp}\n  reference:   {ref}")
    print(f"exact match: {100 * exact:.2f}% of {len(references)} sentences")
    print(f"BLEU: {bleu.score:.2f}  ({bleu.format(signature=True).split(' = ')[0]})")
    return {"exact_match": exact, "bleu": bleu.score}


def _format(translations: list[list[str]], scores: list[list[float]], first: int, nbest: int):
    if nbest > 1:  # Moses n-best format: index ||| translation ||| score
        return "".join(
            f"{first + i} ||| {t} ||| {s:.4f}\n"
            for i, (texts, row) in enumerate(zip(translations, scores))
            for t, s in zip(texts, row)
        )
    return "".join(t[0] + "\n" for t in translations)


def main(argv):
    f = flags.FLAGS
    path = resolve_saved_model(f.model_dir)
    sources = read_lines(f.input)
    references = read_lines(f.reference) if f.reference else None
    if references is not None and len(references) != len(sources):
        raise DataError(
            f"{f.input} has {len(sources)} lines but {f.reference} has {len(references)}"
        )
    if f.plot_attention:
        os.makedirs(f.plot_attention, exist_ok=True)
    with open_output(f.output, f.input, f.reference) as out:
        model = tf.saved_model.load(path)
        call = make_request(
            model.signatures, f.beam_width, f.nbest, f.temperature, f.top_k, f.top_p, f.seed
        )
        start = time.perf_counter()
        best = []
        # In chunks, each written when done: a long file loses nothing to a late failure.
        for first in range(0, len(sources), _CHUNK):
            chunk = sources[first : first + _CHUNK]
            translations, scores = translate_lines(call, chunk, f.batch_size, show_progress=True)
            out.write(_format(translations, scores, first, f.nbest))
            out.flush()
            best.extend(t[0] for t in translations)
        elapsed = time.perf_counter() - start
    logging.info(
        "%d sentences in %.1fs (%.1f sent/s) with %s",
        len(sources),
        elapsed,
        len(sources) / max(elapsed, 1e-9),
        path,
    )
    if f.plot_attention:
        from seq2seq_tf.evaluation.plots import plot_alignments

        count = plot_alignments(model, sources, f.plot_attention)
        logging.info("wrote %d attention heatmaps to %s", count, f.plot_attention)
    if references is not None:
        report_scores(best, references, sources)


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base path.")
    flags.DEFINE_string("input", "-", "Source text, plain or .gz ('-' for stdin).")
    flags.DEFINE_string("output", "-", "Where translations go ('-' for stdout).")
    flags.DEFINE_string("reference", None, "Reference translations to score against.")
    flags.DEFINE_integer("batch_size", 64, "Sentences per call.", lower_bound=1)
    flags.DEFINE_integer(
        "beam_width", None, "Beam width (default: the one chosen at export).", lower_bound=1
    )
    flags.DEFINE_integer(
        "nbest", 1, "Write the n best translations per sentence (Moses format).", lower_bound=1
    )
    flags.DEFINE_float(
        "temperature",
        None,
        "Sample at this temperature instead of beam search (0 = greedy).",
        lower_bound=0.0,
    )
    flags.DEFINE_integer(
        "top_k", 0, "Sampling: keep the k most likely pieces (0 = all).", lower_bound=0
    )
    flags.DEFINE_float("top_p", 1.0, "Sampling: nucleus probability mass, in (0, 1].")
    flags.register_validator("top_p", lambda p: 0.0 < p <= 1.0, "--top_p must be in (0, 1]")
    flags.DEFINE_integer("seed", 0, "Sampling seed; the same seed gives the same samples.")
    flags.DEFINE_string("plot_attention", None, "Write one attention heatmap PNG per sentence.")
    flags.mark_flags_as_required(["model_dir"])
    cli.run(main)


if __name__ == "__main__":
    run()
