"""Translation: parallel text -> text encoder -> Memory -> attention decoder -> loss.

The first task on the shared training loop. Export: strings -> SentencePiece ->
encoder -> beam search -> strings, all in one graph (`serving.translator`).
"""

from __future__ import annotations

import math

import ml_collections
import tensorflow as tf
from absl import logging

from seq2seq_tf.data import parallel, vocab
from seq2seq_tf.evaluation import metrics, plots
from seq2seq_tf.models import Seq2Seq, build_model
from seq2seq_tf.serving import client
from seq2seq_tf.serving.translator import SearchDefaults, Translator
from seq2seq_tf.tasks.base import DevEvaluator, Task
from seq2seq_tf.training.losses import sequence_loss, token_cross_entropy
from seq2seq_tf.workdir import prepare_workdir


class TranslationTask(Task):
    """Parallel text with a joint SentencePiece model (see `config.data`).

    Args:
        config: the whole config.
        vocab_size: known when rebuilding from a workdir; else `prepare` reads it
            from the SentencePiece model.
    """

    progress_unit = "tgt tok"

    def __init__(self, config: ml_collections.ConfigDict, vocab_size: int | None = None):
        self.config = config
        self.vocab_size = vocab_size
        self._stats = None
        self._boundaries = ()
        self._tokenizer = None

    def prepare(self, workdir: str) -> None:
        d = self.config.data
        src_lines, tgt_lines = parallel.check_parallel(d.train_src, d.train_tgt)
        self.vocab_size = prepare_workdir(self.config, workdir)
        self._tokenizer = vocab.make_tokenizer(vocab.read_model_proto(d.spm_model))
        self._stats = parallel.corpus_stats(
            src_lines, tgt_lines, self._tokenizer, d.max_src_len, d.max_tgt_len, "train"
        )
        self._boundaries = tuple(int(b) for b in d.bucket_boundaries)
        if not self._boundaries:
            self._boundaries = parallel.derive_bucket_boundaries(self._stats.lengths)
            logging.info("bucket boundaries from the training data: %s", self._boundaries)

    def workdir_fields(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def describe(self) -> str:
        return f"vocabulary {self.vocab_size}"

    def build_model(self) -> Seq2Seq:
        return build_model(self.config.model, self.vocab_size, pad_id=vocab.PAD_ID)

    def train_dataset(self) -> tf.data.Dataset:
        d = self.config.data
        return parallel.make_train_dataset(
            d.train_src,
            d.train_tgt,
            self._tokenizer,
            batch_size=d.batch_size,
            max_src_len=d.max_src_len,
            max_tgt_len=d.max_tgt_len,
            bucket_boundaries=self._boundaries,
            shuffle_buffer=d.shuffle_buffer,
            seed=d.seed,
            batch_tokens=d.batch_tokens,
        )

    def examples_per_epoch(self) -> int:
        return self._stats.kept

    def loss_sums(self, model: Seq2Seq, batch: tuple, training: bool):
        source, target_in, target_out = batch
        logits, labels = model.teacher_forced(source, target_in, target_out, training=training)
        smoothed, nll = token_cross_entropy(logits, labels, self.config.train.label_smoothing)
        tokens = tf.cast(tf.size(labels), tf.float32)
        return tf.reduce_sum(smoothed), tf.reduce_sum(nll), tokens

    def dev_evaluator(self, model: Seq2Seq, writer_for) -> DevEvaluator | None:
        if not self.config.data.dev_src:
            return None
        return TranslationDevEvaluator(model, self.config, writer_for("dev"))

    def serving_module(
        self, model: Seq2Seq, spm_model: str, defaults: SearchDefaults | None = None
    ) -> Translator:
        d = self.config
        defaults = defaults or SearchDefaults()
        return Translator(model, spm_model, d.decode, d.data.max_src_len, defaults)


class TranslationDevEvaluator(DevEvaluator):
    """Dev loss/perplexity and greedy dev BLEU/chrF during training, with TensorBoard output.

    Decoding runs through the same Translator graph that export writes, so the dev
    score is what the exported model would get with greedy search. The best
    checkpoint is the one with the best dev sacreBLEU.
    """

    metric = "bleu"
    metric_label = "BLEU"

    def __init__(self, model: Seq2Seq, config: ml_collections.ConfigDict, writer, samples: int = 5):
        d = config.data
        self.sources, self.references = parallel.check_parallel(d.dev_src, d.dev_tgt)
        self.lang = d.target_lang
        self.writer = writer
        self.samples = samples
        self.label_smoothing = float(config.train.label_smoothing)
        self.model = model
        self.translator = Translator(
            model, d.spm_model, config.decode, d.max_src_len, SearchDefaults(beam_width=1)
        )
        self.call = client.make_request(self.translator.signature_functions())
        sp = vocab.make_tokenizer(vocab.read_model_proto(d.spm_model))
        self.dataset = parallel.make_train_dataset(
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
            loss_sum, nll_sum, tokens = sequence_loss(
                logits, target_out, self.label_smoothing, vocab.PAD_ID
            )
            return loss_sum, nll_sum, tokens

        self._loss_sums = loss_sums

    def __call__(self, step: int) -> dict:
        loss = nll = tokens = 0.0
        for source, target_in, target_out in self.dataset:
            sums = [float(x) for x in self._loss_sums(source, target_in, target_out)]
            loss, nll, tokens = loss + sums[0], nll + sums[1], tokens + sums[2]
        translations, _ = client.translate_lines(self.call, self.sources, 64)
        hypotheses = [t[0] for t in translations]
        scores = metrics.score_translations(hypotheses, self.references, self.lang)
        results = {
            "loss": loss / max(tokens, 1.0),
            "perplexity": math.exp(min(nll / max(tokens, 1.0), 50.0)),
            "bleu": scores["bleu"],
            "chrf": scores["chrf"],
            "bleu_lc_tok": scores["bleu_lc_tok"],
        }
        with self.writer.as_default(step=step):
            for name, value in results.items():
                tf.summary.scalar(name, value)
            tf.summary.text("samples", self._samples_markdown(hypotheses))
            tf.summary.image("attention", self._attention_image()[None], max_outputs=1)
        self.writer.flush()
        logging.info(
            "dev at step %d: loss %.3f  ppl %.2f  BLEU %.2f  chrF %.2f  BLEU(lc,tok) %.2f "
            "(greedy, %d sentences)",
            step,
            results["loss"],
            results["perplexity"],
            results["bleu"],
            results["chrf"],
            results["bleu_lc_tok"],
            len(self.sources),
        )
        return results

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
        return tf.image.decode_png(plots.alignment_png(src, tgt, weights), channels=4)
