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


def make_request(
    model,
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
    signatures = model.signatures
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


def alignment_figure(source: list[str], target: list[str], weights):
    """A matplotlib figure of one attention matrix (target pieces x source pieces)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1 + 0.4 * len(source), 1 + 0.4 * max(len(target), 1)))
    axes.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source)), source, rotation=90)
    axes.set_yticks(range(len(target)), target)
    axes.set_xlabel("source pieces")
    axes.set_ylabel("target pieces")
    figure.tight_layout()
    return figure


def plot_alignments(model, lines: list[str], out_dir: str, batch_size: int = 32) -> int:
    """Writes out_dir/NNNNN.png: attention heatmap of each sentence (target x source pieces)."""
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    align = model.signatures["align"]
    written = 0
    for first in range(0, len(lines), batch_size):
        result = align(inputs=tf.constant(lines[first : first + batch_size]))
        sources = result["source_pieces"].numpy()
        targets = result["target_pieces"].numpy()
        weights = result["alignments"].numpy()
        for row in range(len(sources)):
            src = [p.decode("utf-8") for p in sources[row] if p]
            tgt = [p.decode("utf-8") for p in targets[row] if p]
            figure = alignment_figure(src, tgt, weights[row, : len(tgt), : len(src)])
            figure.savefig(os.path.join(out_dir, f"{first + row:05d}.png"), dpi=80)
            plt.close(figure)
            written += 1
    return written


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
    f = flags.FLAGS
    path = resolve_saved_model(f.model_dir)
    model = tf.saved_model.load(path)
    sources = read_text(f.input)
    call = make_request(model, f.beam_width, f.nbest, f.temperature, f.top_k, f.top_p, f.seed)
    start = time.perf_counter()
    translations, scores = translate_lines(call, sources, f.batch_size, show_progress=True)
    elapsed = time.perf_counter() - start
    if f.nbest > 1:  # Moses n-best format: index ||| translation ||| score
        text = "".join(
            f"{i} ||| {t} ||| {s:.4f}\n"
            for i, (texts, row) in enumerate(zip(translations, scores))
            for t, s in zip(texts, row)
        )
    else:
        text = "".join(t[0] + "\n" for t in translations)
    if f.output == "-":
        sys.stdout.write(text)
    else:
        with open(f.output, "w", encoding="utf-8") as out:
            out.write(text)
    logging.info(
        "%d sentences in %.1fs (%.1f sent/s) with %s",
        len(sources),
        elapsed,
        len(sources) / max(elapsed, 1e-9),
        path,
    )
    if f.plot_attention:
        count = plot_alignments(model, sources, f.plot_attention)
        logging.info("wrote %d attention heatmaps to %s", count, f.plot_attention)
    if f.reference:
        report_scores([t[0] for t in translations], read_text(f.reference), sources)


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base path.")
    flags.DEFINE_string("input", "-", "Source text, plain or .gz ('-' for stdin).")
    flags.DEFINE_string("output", "-", "Where translations go ('-' for stdout).")
    flags.DEFINE_string("reference", None, "Reference translations to score against.")
    flags.DEFINE_integer("batch_size", 64, "Sentences per call.")
    flags.DEFINE_integer("beam_width", None, "Beam width (default: the one chosen at export).")
    flags.DEFINE_integer("nbest", 1, "Write the n best translations per sentence (Moses format).")
    flags.DEFINE_float("temperature", None, "Sample at this temperature instead of beam search.")
    flags.DEFINE_integer("top_k", 0, "Sampling: keep the k most likely pieces (0 = all).")
    flags.DEFINE_float("top_p", 1.0, "Sampling: nucleus probability mass (1 = all).")
    flags.DEFINE_integer("seed", 0, "Sampling seed; the same seed gives the same samples.")
    flags.DEFINE_string("plot_attention", None, "Write one attention heatmap PNG per sentence.")
    flags.mark_flags_as_required(["model_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
