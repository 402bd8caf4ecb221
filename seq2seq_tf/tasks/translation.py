"""Translation: parallel text -> text encoder -> Memory -> attention decoder -> loss.

The first task on the shared training loop. Export: strings -> SentencePiece ->
encoder -> beam search -> strings, all in one graph (`serving.translator`).
"""

from __future__ import annotations

import json
import math
import os

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from seq2seq_tf.data import parallel, shortlist, vocab
from seq2seq_tf.evaluation import metrics, plots
from seq2seq_tf.models import Seq2Seq, build_model
from seq2seq_tf.serving import client
from seq2seq_tf.serving.search_columns import SearchColumns, SearchSpeedupError, SearchSpeedups
from seq2seq_tf.serving.translator import SearchDefaults, Translator
from seq2seq_tf.tasks.base import DevEvaluator, Task
from seq2seq_tf.training.losses import sequence_loss, token_cross_entropy
from seq2seq_tf.workdir import CONFIG_FILE, prepare_workdir


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
        self._set_target_vocab(workdir, tgt_lines)
        self._boundaries = tuple(int(b) for b in d.bucket_boundaries)
        if not self._boundaries:
            self._boundaries = parallel.derive_bucket_boundaries(self._stats.lengths)
            logging.info("bucket boundaries from the training data: %s", self._boundaries)

    def _set_target_vocab(self, workdir: str, tgt_lines: list[str]) -> None:
        """With model.target_vocab_only, data.target_vocab = the ids the output layer scores.

        A resumed run keeps the list its config.json holds (its checkpoints' output
        layer has that many columns); a workdir trained before the option keeps its
        full output layer; a new run counts the pieces of the training targets.
        """
        if not self.config.model.target_vocab_only:
            return
        stored = _stored_target_vocab(workdir)
        if stored is None:
            ids = target_piece_ids(tgt_lines, self._tokenizer)
            logging.info(
                "output layer: %d of %d pieces occur in the training targets (%d not scored)",
                len(ids), self.vocab_size, self.vocab_size - len(ids),
            )  # fmt: skip
        elif not stored:
            logging.warning(
                "%s was trained with the full output layer: keeping it (model.target_vocab_only "
                "applies to new workdirs)", workdir,
            )  # fmt: skip
            ids = ()
        else:
            ids = stored
        with self.config.unlocked():
            self.config.data.target_vocab = tuple(ids)

    def workdir_fields(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def describe(self) -> str:
        scored = len(self.config.data.target_vocab)
        if not scored:
            return f"vocabulary {self.vocab_size}"
        return f"vocabulary {self.vocab_size}, {scored} scored by the output layer"

    def build_model(self) -> Seq2Seq:
        return build_model(
            self.config.model,
            self.vocab_size,
            pad_id=vocab.PAD_ID,
            output_ids=tuple(self.config.data.target_vocab),
        )

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
        self,
        model: Seq2Seq,
        spm_model: str,
        defaults: SearchDefaults | None = None,
        speedups: SearchSpeedups | None = None,
    ) -> Translator:
        d = self.config
        defaults = defaults or SearchDefaults()
        columns, xla = None, None
        if speedups is not None:
            if speedups.changes_columns:
                columns = search_columns(model, spm_model, d.data, speedups)
            xla = speedups.xla
        # portable: an export traces the encoder with our loop, so it runs on any device.
        return Translator(
            model, spm_model, d.decode, d.data.max_src_len, defaults, True, columns, xla
        )


def search_columns(
    model: Seq2Seq, spm_model: str, data: ml_collections.ConfigDict, speedups: SearchSpeedups
) -> SearchColumns:
    """The export's SearchColumns, from the training corpus the config names (its target
    pieces; its lexical shortlist, built here with `data.shortlist`)."""
    scored, table = None, None
    if speedups.target_vocab or speedups.shortlist_k:
        for path in (data.train_src, data.train_tgt):
            if not tf.io.gfile.exists(path):
                raise SearchSpeedupError(
                    f"{path} (the workdir's training data) is not here: --target_vocab and "
                    "--shortlist_k are built from the training corpus"
                )
        src_lines, tgt_lines = parallel.check_parallel(data.train_src, data.train_tgt)
        tokenizer = vocab.make_tokenizer(vocab.read_model_proto(spm_model))
        tgt_pieces = _piece_ids(tgt_lines, tokenizer)  # tokenized once for both
        if speedups.target_vocab:
            scored = _scored_ids(tgt_pieces, model.vocab_size)
        if speedups.shortlist_k:
            pairs = [
                (s, t)
                for s, t in zip(_piece_ids(src_lines, tokenizer), tgt_pieces)
                if 0 < len(s) < data.max_src_len and 0 < len(t) < data.max_tgt_len
            ]  # the pairs training reads (with EOS they fit the max lengths)
            sources, targets = [p[0] for p in pairs], [p[1] for p in pairs]
            table = shortlist.build_shortlist(
                sources,
                targets,
                model.vocab_size,
                speedups.shortlist_k,
                speedups.shortlist_frequent,
            )
    columns = SearchColumns(model.decoder, scored, table, speedups.input_table)
    logging.info(
        "search scores %d of %d pieces%s%s",
        columns.num_scored,
        model.vocab_size,
        f"; shortlist of {speedups.shortlist_k} per source piece and the "
        f"{speedups.shortlist_frequent} most frequent"
        if table
        else "",
        "; input table" if speedups.input_table else "",
    )
    return columns


def _piece_ids(lines: list[str], tokenizer, chunk: int = 4096) -> list[np.ndarray]:
    """Each line's piece ids (no BOS/EOS)."""
    out = []
    for start in range(0, len(lines), chunk):
        out.extend(tokenizer.tokenize(tf.constant(lines[start : start + chunk])).numpy())
    return out


def target_piece_ids(lines: list[str], tokenizer, chunk: int = 4096) -> tuple[int, ...]:
    """Sorted ids of the pieces in `lines` (tokenized as training does) and PAD/UNK/BOS/EOS.

    What a target-side output layer must score: every label of the training targets
    (pieces + EOS), plus the other specials, so search sees the same ids as before.
    """
    return _scored_ids(_piece_ids(lines, tokenizer, chunk), int(tokenizer.vocab_size()))


def _scored_ids(pieces: list[np.ndarray], vocab_size: int) -> tuple[int, ...]:
    """Sorted ids in tokenized `pieces` and PAD/UNK/BOS/EOS."""
    seen = np.zeros(vocab_size, bool)
    seen[[vocab.PAD_ID, vocab.UNK_ID, vocab.BOS_ID, vocab.EOS_ID]] = True
    for row in pieces:
        seen[row] = True
    return tuple(int(i) for i in np.flatnonzero(seen))


def _stored_target_vocab(workdir: str) -> tuple[int, ...] | None:
    """data.target_vocab of the workdir's config.json; None when it has none yet."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        stored = json.load(f)
    return tuple(stored.get("data", {}).get("target_vocab", ()))


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
            if model.decoder.output_ids is not None:  # -inf logits: use the scored ones
                logits, labels = model.teacher_forced(source, target_in, target_out, False)
                smoothed, nll = token_cross_entropy(logits, labels, self.label_smoothing)
                return (
                    tf.reduce_sum(smoothed),
                    tf.reduce_sum(nll),
                    tf.cast(tf.size(labels), "float32"),
                )
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
