"""Captioning: images + captions -> image encoder -> Memory of H*W positions -> attention
decoder (initial state from the mean feature) -> loss + attention penalty.

The loss is label-smoothed token cross entropy plus `caption.attention_penalty`
times Show, Attend and Tell's doubly stochastic penalty per caption, summed over
the batch and divided by its tokens as the loop does with every loss. The dev
evaluator captions the valid images through the export's graph (greedy, or
`caption.eval_beam_width`) and scores BLEU-1..4 and CIDEr-D against every
reference; the best checkpoint is the one with the best dev CIDEr-D. TensorBoard
gets sample captions as text and attention overlays as images. Export:
`serving.captioner` (image bytes in).
"""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from seq2seq_tf.data import captions as caption_data
from seq2seq_tf.data import vocab
from seq2seq_tf.evaluation import captioning as scores_lib
from seq2seq_tf.evaluation import plots
from seq2seq_tf.models.captioner import Captioner, build_captioner
from seq2seq_tf.serving.captioner import CaptionServer
from seq2seq_tf.serving.translator import SearchDefaults
from seq2seq_tf.tasks.base import DevEvaluator, Task
from seq2seq_tf.training.losses import token_cross_entropy
from seq2seq_tf.workdir import CONFIG_FILE, WorkdirError, prepare_workdir

# caption fields that shape the model: a resumed run must keep them.
ARCHITECTURE = (
    "encoder", "image_size", "cnn_filters", "cnn_convs_per_block", "cnn_kernel_sizes",
    "position_channels", "backbone", "attend", "context_gate", "feature_shape",
)  # fmt: skip


def make_tokenizer(config: ml_collections.ConfigDict, spm_model: str | None = None):
    """Words (`caption.words`) or the SentencePiece model of `data.spm_model`."""
    if config.data.spm_model:
        return vocab.make_tokenizer(vocab.read_model_proto(spm_model or config.data.spm_model))
    return caption_data.WordTokenizer(config.caption.words)


def _stored(workdir: str) -> dict | None:
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _check_resumed(config: ml_collections.ConfigDict, stored: dict | None) -> None:
    """Refuses to resume with another encoder or vocabulary (the checkpoint's shapes)."""
    if stored is None:
        return
    before = stored.get("caption", {})
    for name in ARCHITECTURE:
        now = config.caption[name]
        was = before.get(name)
        if isinstance(now, tuple):
            now, was = list(now), list(was or [])
        if name == "feature_shape" and config.caption.encoder != "features":
            continue
        if was is not None and was != now:
            raise WorkdirError(
                f"caption.{name} is {now} but this workdir was trained with {was}; "
                "use a new --workdir"
            )
    words = before.get("words", "")
    if words and config.caption.words and words != config.caption.words:
        raise WorkdirError("caption.words differ from the vocabulary this workdir was trained with")


class CaptioningTask(Task):
    """Images with captions (see `config.caption`).

    Args:
        config: the whole config.
        vocab_size: known when rebuilding from a workdir; else `prepare` sets it.
    """

    progress_unit = "tok"

    def __init__(self, config: ml_collections.ConfigDict, vocab_size: int | None = None):
        self.config = config
        self.vocab_size = vocab_size
        self.tokenizer = None
        self.splits: dict[str, caption_data.CaptionSet] = {}
        self.features: dict[str, np.ndarray] = {}

    def read_split(self, name: str) -> caption_data.CaptionSet | None:
        """A split of `caption.<name>_captions` (None when not set), images checked."""
        c = self.config.caption
        path = c[f"{name}_captions"]
        if not path:
            return None
        split = caption_data.read_captions(path, c.images_dir)
        if c.encoder == "features":
            self.features[name] = caption_data.load_features(split, c.features_dir)
        elif c.check_images:
            caption_data.check_images(split)
        return split

    def prepare(self, workdir: str) -> None:
        config, c = self.config, self.config.caption
        stored = _stored(workdir)
        _check_resumed(config, stored)
        for name in ("train", "valid"):
            split = self.read_split(name)
            if split is not None:
                self.splits[name] = split
        train = self.splits["train"]
        if c.encoder == "features":
            with config.unlocked():
                c.feature_shape = tuple(int(d) for d in self.features["train"].shape[1:])
        if config.data.spm_model:
            self.vocab_size = prepare_workdir(config, workdir)
        else:
            words = (stored or {}).get("caption", {}).get("words", "") or c.words
            words = words or caption_data.build_words(train.pairs()[1], int(c.min_word_count))
            with config.unlocked():
                c.words = words
            self.vocab_size = vocab.CHAR_SPECIALS + len(words.split())
        self.tokenizer = make_tokenizer(config)
        logging.info(
            "captioning: %d training images (%d captions), %d valid images; vocabulary %d",
            len(train), len(train.pairs()[1]), len(self.splits.get("valid", ())),
            self.vocab_size,
        )  # fmt: skip

    def workdir_fields(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def describe(self) -> str:
        kind = "SentencePiece" if self.config.data.spm_model else "words"
        return f"vocabulary {self.vocab_size} ({kind})"

    def build_model(self) -> Captioner:
        return build_captioner(self.config, self.vocab_size, pad_id=vocab.PAD_ID)

    def _inputs(self, name: str):
        return self.features[name] if name in self.features else self.splits[name]

    def train_dataset(self) -> tf.data.Dataset:
        c = self.config.caption
        return caption_data.make_train_dataset(
            self._inputs("train"),
            self.splits["train"],
            self.tokenizer,
            int(c.image_size),
            int(self.config.data.batch_size),
            int(c.max_length),
            int(self.config.data.seed),
        )

    def examples_per_epoch(self) -> int:
        return len(self.splits["train"].pairs()[1])

    def loss_sums(self, model: Captioner, batch: tuple, training: bool):
        inputs, target_in, target_out = batch
        logits, labels, penalty = model.teacher_forced(inputs, target_in, target_out, training)
        smoothed, nll = token_cross_entropy(logits, labels, self.config.train.label_smoothing)
        tokens = tf.cast(tf.size(labels), tf.float32)
        lam = float(self.config.caption.attention_penalty)
        loss = tf.reduce_sum(smoothed) + lam * tf.reduce_sum(penalty)
        return loss, tf.reduce_sum(nll), tokens

    def dev_evaluator(self, model: Captioner, writer_for) -> DevEvaluator | None:
        if "valid" not in self.splits:
            return None
        return CaptioningDevEvaluator(model, self, writer_for("dev"))

    def serving_module(
        self, model: Captioner, spm_model: str | None = None, defaults=None
    ) -> CaptionServer:
        """The CaptionServer (image bytes in); `spm_model` is the workdir's copy for a
        SentencePiece run (export passes it)."""
        c = self.config.caption
        if c.encoder == "features":
            raise WorkdirError(
                "a model of precomputed features has no image input to export; "
                "caption its features in process (seq2seq_tf.tasks.captioning.caption_features)"
            )
        path = None
        if self.config.data.spm_model:
            path = spm_model if spm_model and tf.io.gfile.exists(spm_model) else None
            path = path or self.config.data.spm_model
        tokenizer = make_tokenizer(self.config, path)
        size = tokenizer.vocab_size
        size = int(size()) if callable(size) else int(size)
        if size != model.vocab_size:
            raise WorkdirError(
                f"the vocabulary has {size} ids but the model {model.vocab_size}; "
                "export with the workdir's config.json"
            )
        return CaptionServer(model, tokenizer, int(c.image_size), int(c.max_length), defaults, path)


def caption_features(model: Captioner, features: np.ndarray, max_length: int, batch: int = 64):
    """Greedy captions (ids `[n, steps]`, lengths `[n]`) of precomputed features in process."""
    from seq2seq_tf import search

    ids_out, lengths_out = [], []
    for start in range(0, len(features), batch):
        state = model.initial_state(tf.constant(features[start : start + batch]), training=False)
        rows = tf.shape(state["cells"][0][0])[0]
        hyps = search.greedy_search(
            model.step, state, tf.fill([rows], max_length),
            start_id=vocab.BOS_ID, end_id=vocab.EOS_ID, pad_id=vocab.PAD_ID,
        )  # fmt: skip
        ids_out.extend(list(hyps.ids[:, 0].numpy()))
        lengths_out.extend(list(hyps.lengths[:, 0].numpy()))
    return ids_out, lengths_out


def caption_images(call, paths: list[str], batch: int = 64) -> dict:
    """Runs a caption signature (`caption` or a bound `caption_beam`) over image files.

    Returns:
        {"captions": [str], "tokens": [[str]], "attention": [[steps, H, W]], "scores": [float]}.
    """
    out = {"captions": [], "tokens": [], "attention": [], "scores": []}
    for start in range(0, len(paths), batch):
        data = [tf.io.gfile.GFile(p, "rb").read() for p in paths[start : start + batch]]
        result = call(tf.constant(data))
        out["captions"].extend(c.decode("utf-8") for c in result["captions"].numpy())
        out["scores"].extend(float(s) for s in result["scores"].numpy())
        for toks, maps in zip(result["tokens"].numpy(), result["attention"].numpy()):
            words = [t.decode("utf-8") for t in toks]
            length = len([w for w in words if w])
            out["tokens"].append(words[:length])
            out["attention"].append(maps[:length])
    return out


class CaptioningDevEvaluator(DevEvaluator):
    """Dev BLEU-1..4 and CIDEr-D of captions from the export's graph, with sample captions
    and attention overlays in TensorBoard. The best checkpoint has the best dev CIDEr-D."""

    metric = "cider"
    metric_label = "CIDEr-D"

    def __init__(self, model: Captioner, task: CaptioningTask, writer, samples: int = 5):
        c = task.config.caption
        self.model = model
        self.writer = writer
        self.samples = samples
        self.overlays = int(c.overlays)
        self.split = task.splits["valid"]
        count = int(c.eval_images) or len(self.split)
        self.paths = self.split.images[:count]
        self.references = self.split.captions[:count]
        self.features = task.features.get("valid")
        self.max_length = int(c.max_length)
        self.tokenizer = task.tokenizer
        self.server = None
        if self.features is None:
            defaults = SearchDefaults(beam_width=int(c.eval_beam_width))
            self.server = CaptionServer(
                model, task.tokenizer, int(c.image_size), self.max_length, defaults
            )

    def _caption(self) -> dict:
        if self.server is not None:
            return caption_images(self.server.caption, self.paths)
        ids, lengths = caption_features(
            self.model, self.features[: len(self.paths)], self.max_length
        )
        texts = [
            t.decode("utf-8")
            for t in self.tokenizer.detokenize(
                tf.ragged.constant([list(i[:n]) for i, n in zip(ids, lengths)], tf.int32)
            ).numpy()
        ]
        return {"captions": texts, "tokens": [], "attention": []}

    def __call__(self, step: int) -> dict:
        out = self._caption()
        results = scores_lib.caption_scores(out["captions"], self.references)
        with self.writer.as_default(step=step):
            for name, value in results.items():
                tf.summary.scalar(name, value)
            tf.summary.text("captions", self._samples_markdown(out["captions"]))
            for i in range(min(self.overlays, len(out["attention"]))):
                png = plots.attention_overlay_png(
                    tf.io.gfile.GFile(self.paths[i], "rb").read(),
                    out["tokens"][i],
                    out["attention"][i],
                )
                image = tf.image.decode_png(png, channels=3)[None]
                tf.summary.image(f"attention/{i}", image, max_outputs=1)
        self.writer.flush()
        logging.info(
            "dev at step %d: CIDEr-D %.3f  BLEU-4 %.3f  BLEU-1 %.3f (%d images)",
            step, results["cider"], results["bleu4"], results["bleu1"], len(self.paths),
        )  # fmt: skip
        return results

    def _samples_markdown(self, hypotheses: list[str]) -> str:
        rows = ["| image | reference | caption |", "| --- | --- | --- |"]
        for path, refs, hyp in list(zip(self.paths, self.references, hypotheses))[: self.samples]:
            cells = [os.path.basename(path), refs[0], hyp]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(rows)
