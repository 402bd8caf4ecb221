"""Scores translations of a test set: sacreBLEU, chrF and the Multi30k BLEU(lc,tok).

    python -m seq2seq_tf.evaluate --model_dir=exported/x --source=test.en \
        --reference=test.de --target_lang=de --output=runs/x/test.hyp --beam_width=5
    python -m seq2seq_tf.evaluate --workdir=runs/x ...        # a checkpoint, no export needed

sacreBLEU is the comparable number (cased, detokenized, with its signature).
The Multi30k literature reports BLEU on lowercased, punctuation-normalized,
Moses-tokenized text (the dataset's `lowercase | normalize-punctuation |
tokenizer` preprocessing); `BLEU(lc,tok)` reproduces it with sacremoses and
scores with sacrebleu's `tokenize="none"`. The hypotheses go to `--output`, the
scores next to them as `<output>.scores.json`.

`DevEvaluator` is the same scoring run inside training on the dev set (greedy).
"""

from __future__ import annotations

import io
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
import sacrebleu  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from sacremoses import MosesPunctNormalizer, MosesTokenizer  # noqa: E402

from seq2seq_tf import data, tokenizer, translate  # noqa: E402
from seq2seq_tf.export import SearchDefaults, Translator, restore_model  # noqa: E402
from seq2seq_tf.model import Seq2Seq, sequence_loss  # noqa: E402
from seq2seq_tf.workdir import SPM_FILE, load_workdir_config  # noqa: E402


def moses_lc_tok(lines: list[str], lang: str) -> list[str]:
    """lowercase | normalize-punctuation -l lang | tokenizer -l lang, as Multi30k was made."""
    normalizer, moses = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    return [moses.tokenize(normalizer.normalize(line.lower()), return_str=True) for line in lines]


def score_translations(hypotheses: list[str], references: list[str], lang: str) -> dict:
    """sacreBLEU and chrF on raw text, and BLEU(lc,tok); signatures included."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    lc_tok = sacrebleu.metrics.BLEU(tokenize="none", force=True).corpus_score(
        moses_lc_tok(hypotheses, lang), [moses_lc_tok(references, lang)]
    )
    return {
        "bleu": bleu_score.score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf": chrf_score.score,
        "chrf_signature": str(chrf.get_signature()),
        "bleu_lc_tok": lc_tok.score,
        "bleu_lc_tok_detail": str(lc_tok),
        "sentences": len(references),
    }


def format_scores(scores: dict) -> str:
    return (
        f"sacreBLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
        f"BLEU(lc,tok) {scores['bleu_lc_tok']:.2f}  ({scores['sentences']} sentences)\n"
        f"  {scores['bleu_signature']}\n  {scores['chrf_signature']}"
    )


class _LazySignatures(dict):
    """`model.signatures` of an in-process Translator, traced only when first asked for."""

    def __init__(self, translator: Translator):
        super().__init__()
        self._functions = {
            "serving_default": translator.translate,
            "translate_nbest": translator.translate_nbest,
            "sample": translator.sample,
            "score": translator.score,
            "align": translator.align,
        }

    def __missing__(self, name):
        self[name] = self._functions[name].get_concrete_function()
        return self[name]


class CheckpointModel:
    """A workdir checkpoint wrapped to look like a loaded SavedModel (`.signatures`)."""

    def __init__(self, workdir: str, checkpoint: str | None = None, beam_width: int = 4):
        config, _ = load_workdir_config(workdir)
        model, self.checkpoint = restore_model(workdir, checkpoint)
        self.translator = Translator(
            model,
            os.path.join(workdir, SPM_FILE),
            config.decode,
            config.data.max_src_len,
            SearchDefaults(beam_width=beam_width),
        )
        self.signatures = _LazySignatures(self.translator)


def evaluate(
    model,
    sources: list[str],
    references: list[str],
    lang: str,
    beam_width: int | None = None,
    batch_size: int = 64,
) -> tuple[list[str], dict]:
    """Translates `sources` with a SavedModel (or CheckpointModel) and scores them."""
    call = translate.make_request(model, beam_width)
    translations, _ = translate.translate_lines(call, sources, batch_size, show_progress=True)
    hypotheses = [t[0] for t in translations]
    return hypotheses, score_translations(hypotheses, references, lang)


def alignment_png(source: list[str], target: list[str], weights) -> bytes:
    """One attention heatmap as PNG bytes (for TensorBoard)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = translate.alignment_figure(source, target, weights)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


class DevEvaluator:
    """Dev loss/perplexity and greedy dev BLEU/chrF during training, with TensorBoard output.

    Decoding runs through the same Translator graph that export writes, so the dev
    score is what the exported model would get with greedy search.
    """

    def __init__(self, model: Seq2Seq, config: ml_collections.ConfigDict, writer, samples: int = 5):
        d = config.data
        self.sources, self.references = data.check_parallel(d.dev_src, d.dev_tgt)
        self.lang = d.target_lang
        self.writer = writer
        self.samples = samples
        self.label_smoothing = float(config.train.label_smoothing)
        self.model = model
        self.translator = Translator(
            model, d.spm_model, config.decode, d.max_src_len, SearchDefaults(beam_width=1)
        )
        self.call = translate.make_request(
            type("M", (), {"signatures": _LazySignatures(self.translator)})
        )
        sp = tokenizer.make_tokenizer(tokenizer.read_model_proto(d.spm_model))
        self.dataset = data.make_train_dataset(
            d.dev_src,
            d.dev_tgt,
            sp,
            batch_size=64,
            max_src_len=d.max_src_len,
            max_tgt_len=d.max_tgt_len,
            bucket_boundaries=(16, 32, 64),
            shuffle_buffer=0,
            seed=0,
            repeat=False,
        )
        spec = tf.TensorSpec([None, None], tf.int32)

        @tf.function(input_signature=[spec, spec, spec])
        def loss_sums(source, target_in, target_out):
            logits = model((source, target_in), training=False)
            loss_sum, nll_sum, tokens = sequence_loss(logits, target_out, self.label_smoothing)
            return loss_sum, nll_sum, tokens

        self._loss_sums = loss_sums

    def __call__(self, step: int) -> dict:
        loss = nll = tokens = 0.0
        for source, target_in, target_out in self.dataset:
            sums = [float(x) for x in self._loss_sums(source, target_in, target_out)]
            loss, nll, tokens = loss + sums[0], nll + sums[1], tokens + sums[2]
        translations, _ = translate.translate_lines(self.call, self.sources, 64)
        hypotheses = [t[0] for t in translations]
        scores = score_translations(hypotheses, self.references, self.lang)
        metrics = {
            "loss": loss / max(tokens, 1.0),
            "perplexity": math.exp(min(nll / max(tokens, 1.0), 50.0)),
            "bleu": scores["bleu"],
            "chrf": scores["chrf"],
            "bleu_lc_tok": scores["bleu_lc_tok"],
        }
        with self.writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
            tf.summary.text("samples", self._samples_markdown(hypotheses))
            tf.summary.image("attention", self._attention_image()[None], max_outputs=1)
        self.writer.flush()
        logging.info(
            "dev at step %d: loss %.3f  ppl %.2f  BLEU %.2f  chrF %.2f  BLEU(lc,tok) %.2f "
            "(greedy, %d sentences)",
            step,
            metrics["loss"],
            metrics["perplexity"],
            metrics["bleu"],
            metrics["chrf"],
            metrics["bleu_lc_tok"],
            len(self.sources),
        )
        return metrics

    def _samples_markdown(self, hypotheses: list[str]) -> str:
        rows = ["| source | reference | translation |", "| --- | --- | --- |"]
        for src, ref, hyp in list(zip(self.sources, self.references, hypotheses))[: self.samples]:
            cells = [text.replace("|", "\\|") for text in (src, ref, hyp)]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def _attention_image(self):
        """Heatmap of the first dev sentence, [height, width, 4] uint8."""
        result = self.translator.align(tf.constant(self.sources[:1]))
        src = [p.decode("utf-8") for p in result["source_pieces"].numpy()[0] if p]
        tgt = [p.decode("utf-8") for p in result["target_pieces"].numpy()[0] if p]
        weights = result["alignments"].numpy()[0, : len(tgt), : len(src)]
        return tf.image.decode_png(alignment_png(src, tgt, weights), channels=4)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    if bool(f.model_dir) == bool(f.workdir):
        raise app.UsageError("give exactly one of --model_dir (SavedModel) and --workdir")
    if f.model_dir:
        model = tf.saved_model.load(translate.resolve_saved_model(f.model_dir))
        beam_width = f.beam_width
    else:
        model = CheckpointModel(f.workdir, f.checkpoint, beam_width=f.beam_width or 4)
        logging.info("evaluating checkpoint %s", model.checkpoint)
        beam_width = None  # the CheckpointModel's default beam is --beam_width
    sources = translate.read_text(f.source)
    references = translate.read_text(f.reference)
    if len(sources) != len(references):
        raise ValueError(
            f"{f.source} has {len(sources)} lines but {f.reference} has {len(references)}"
        )
    hypotheses, scores = evaluate(model, sources, references, f.target_lang, beam_width)
    if f.output:
        os.makedirs(os.path.dirname(os.path.abspath(f.output)), exist_ok=True)
        with open(f.output, "w", encoding="utf-8") as out:
            out.writelines(h + "\n" for h in hypotheses)
        with open(f.output + ".scores.json", "w", encoding="utf-8") as out:
            json.dump(scores, out, indent=2)
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
    flags.DEFINE_integer("beam_width", None, "Beam width (default: the export's, 4 for --workdir).")
    flags.mark_flags_as_required(["source", "reference"])
    app.run(main)


if __name__ == "__main__":
    run()
