"""Translate with an exported SavedModel; needs only tensorflow + tensorflow_text.

    python -m seq2seq_tf.translate --model_dir=exported/x --input=test.src \
        --output=test.hyp --reference=test.tgt

`--model_dir` may be a SavedModel or a TF Serving base path (`<dir>/<version>/`,
the highest version is used). Sentences are batched by length for speed and
written back in input order. With `--reference`, prints exact match and BLEU.
"""

from __future__ import annotations

import gzip
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402, F401  (registers the SentencePiece ops)
from absl import app, flags, logging  # noqa: E402


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
    raise FileNotFoundError(f"no SavedModel at {model_dir} (nor in a numeric version below it)")


def read_text(path: str) -> list[str]:
    """Lines of a plain or gzip UTF-8 file ("-" is stdin), naming the line on bad UTF-8."""
    if path == "-":
        raw_lines = sys.stdin.buffer.read().splitlines()
    else:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            raw_lines = handle.read().splitlines()
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}:{number}: invalid UTF-8 ({err.reason})") from err
    return lines


def translate_lines(
    serving_fn, lines: list[str], batch_size: int = 64, show_progress: bool = False
) -> tuple[list[str], list[float]]:
    """Translates in batches of similar length; returns outputs in input order."""
    order = sorted(range(len(lines)), key=lambda i: len(lines[i]))
    translations: list[str] = [""] * len(lines)
    scores: list[float] = [0.0] * len(lines)
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        indices = order[first : first + batch_size]
        result = serving_fn(inputs=tf.constant([lines[i] for i in indices]))
        for i, text, score in zip(
            indices, result["translations"].numpy(), result["scores"].numpy()
        ):
            translations[i] = text.decode("utf-8")
            scores[i] = float(score)
        done = min(first + batch_size, len(order))
        if show_progress and (done == len(order) or (first // batch_size) % 10 == 9):
            rate = done / max(time.perf_counter() - start, 1e-9)
            logging.info("translated %d/%d sentences (%.1f sent/s)", done, len(order), rate)
    return translations, scores


def report_scores(hypotheses: list[str], references: list[str], sources: list[str]) -> dict:
    """Prints exact match, sacreBLEU and a few examples; returns the numbers."""
    import sacrebleu  # only needed when scoring

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} translations but {len(references)} reference lines")
    exact = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references)) / len(references)
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    print("examples:")
    for src, hyp, ref in list(zip(sources, hypotheses, references))[:5]:
        print(f"  source:     {src}\n  translation: {hyp}\n  reference:   {ref}")
    print(f"exact match: {100 * exact:.2f}% of {len(references)} sentences")
    print(f"BLEU: {bleu.score:.2f}  ({bleu.format(signature=True).split(' = ')[0]})")
    return {"exact_match": exact, "bleu": bleu.score}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    path = resolve_saved_model(flags.FLAGS.model_dir)
    serving_fn = tf.saved_model.load(path).signatures["serving_default"]
    sources = read_text(flags.FLAGS.input)
    start = time.perf_counter()
    translations, _ = translate_lines(
        serving_fn, sources, flags.FLAGS.batch_size, show_progress=True
    )
    elapsed = time.perf_counter() - start
    text = "".join(t + "\n" for t in translations)
    if flags.FLAGS.output == "-":
        sys.stdout.write(text)
    else:
        with open(flags.FLAGS.output, "w", encoding="utf-8") as f:
            f.write(text)
    logging.info(
        "%d sentences in %.1fs (%.1f sent/s) with %s",
        len(sources),
        elapsed,
        len(sources) / max(elapsed, 1e-9),
        path,
    )
    if flags.FLAGS.reference:
        report_scores(translations, read_text(flags.FLAGS.reference), sources)


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base path.")
    flags.DEFINE_string("input", "-", "Source text, plain or .gz ('-' for stdin).")
    flags.DEFINE_string("output", "-", "Where translations go ('-' for stdout).")
    flags.DEFINE_string("reference", None, "Reference translations to score against.")
    flags.DEFINE_integer("batch_size", 64, "Sentences per call.")
    flags.mark_flags_as_required(["model_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
