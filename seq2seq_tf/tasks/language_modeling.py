"""Language modeling (char-rnn): a long text -> `data.stream` windows -> RNN with carried state.

Truncated backpropagation through time: each training batch is one window of
`data.batch_size` contiguous rows (`data.stream`); the final state of a window is
the initial state of the next, with the gradient stopped at the edge, and it
resets to zeros at the first window of every pass. The carried state lives in
non-trainable variables (`CarriedState`, `[batch, units]` per layer and state)
that the training checkpoint holds with the input iterator, so a killed run
resumes on the same loss curve.

Evaluation runs over a whole split in contiguous rows, carrying the state
(the number to report) and resetting it every window (what carrying buys), and
reports nats per token, perplexity and bits per character (total nats / ln 2 /
characters, so character and subword models compare). The best checkpoint is
the one with the lowest valid bits per character. Export: `serving.generator`.
"""

from __future__ import annotations

import json
import math
import os

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from seq2seq_tf.data import stream, vocab
from seq2seq_tf.models.language_model import LanguageModel, build_language_model
from seq2seq_tf.serving.generator import Generator
from seq2seq_tf.tasks.base import DevEvaluator, Task
from seq2seq_tf.training.losses import token_cross_entropy
from seq2seq_tf.workdir import CONFIG_FILE, WorkdirError, prepare_workdir


class CarriedState(tf.Module):
    """The state one window hands the next: per layer and cell state a `[batch, width]`
    non-trainable variable (zeros at start).

    Args:
        batch: rows per window.
        state_sizes: per layer the widths of its cell's states (`model.state_sizes`).
    """

    def __init__(self, batch: int, state_sizes: list[list[int]], name: str = "carried_state"):
        super().__init__(name=name)
        self.layers = [
            [
                tf.Variable(tf.zeros([batch, width]), trainable=False, name=f"layer{i}_{j}")
                for j, width in enumerate(widths)
            ]
            for i, widths in enumerate(state_sizes)
        ]

    def initial(self, first, dtype=tf.float32) -> list[tuple]:
        """Per layer the cell states a window starts from: zeros in rows where `first`
        `[batch]` is true (a new pass), else the previous window's final state, in the
        model's compute `dtype` (the variables stay float32 under mixed precision)."""
        keep = tf.logical_not(first)[:, None]
        return [
            tuple(tf.cast(tf.where(keep, v, tf.zeros_like(v)), dtype) for v in layer)
            for layer in self.layers
        ]

    def assign(self, cells) -> None:
        """Stores a window's final cell states, gradient stopped; non-finite rows reset."""
        for layer, states in zip(self.layers, cells):
            for variable, value in zip(layer, states):
                value = tf.stop_gradient(tf.cast(value, variable.dtype))
                finite = tf.reduce_all(tf.math.is_finite(value), axis=1, keepdims=True)
                variable.assign(tf.where(finite, value, 0.0))


def make_tokenizer(config: ml_collections.ConfigDict, characters: str | None = None):
    """The tokenizer of a run: characters (`lm.characters`, or `characters`) or the
    SentencePiece model of `data.spm_model`."""
    if config.data.spm_model:
        return vocab.make_tokenizer(vocab.read_model_proto(config.data.spm_model))
    return vocab.CharTokenizer(characters if characters is not None else config.lm.characters)


def split_texts(config: ml_collections.ConfigDict) -> dict[str, tuple[str, bool]]:
    """The train, valid and test texts (a split may be ""), each with whether it starts
    a text.

    Separate files start a text, as the training text does; fractions of the
    training text are its contiguous end (train, valid, test in that order) and
    continue it.
    """
    lm = config.lm
    text = stream.read_text(stream.split_paths(lm.train_text))
    train_share = 1.0 - lm.valid_fraction - lm.test_fraction
    train, valid, test = stream.contiguous_split(
        text, [train_share, lm.valid_fraction, lm.test_fraction]
    )
    texts = {"train": (train, True)}
    for name, fraction_text in (("valid", valid), ("test", test)):
        paths = stream.split_paths(lm[f"{name}_text"])
        texts[name] = (stream.read_text(paths), True) if paths else (fraction_text, False)
    return texts


def split_streams(texts: dict[str, tuple[str, bool]], tokenizer) -> dict[str, np.ndarray]:
    """Token ids of each of `split_texts`, BOS first where a split starts a text."""
    bos = np.array([vocab.BOS_ID], np.int32)
    streams = {}
    for name, (text, starts) in texts.items():
        ids = stream.tokenize_text(text, tokenizer)
        streams[name] = np.concatenate([bos, ids]) if starts else ids
    return streams


def _check_resumed_layout(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Refuses to resume with another batch or window: they shape the carried state and
    the stream the checkpointed position counts in."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        stored = json.load(f)
    for group, name in (("data", "batch_size"), ("lm", "window")):
        before, now = stored.get(group, {}).get(name), config[group][name]
        if before is not None and before != now:
            raise WorkdirError(
                f"{group}.{name} is {now} but this workdir was trained with {before} (the "
                "carried state and the stream position depend on it); use a new --workdir"
            )


def _workdir_characters(config: ml_collections.ConfigDict, workdir: str, characters: str) -> str:
    """The character vocabulary of a run: the one the workdir's config.json keeps (a
    resumed run; other `lm.characters` are refused), else `characters`, written to a
    new workdir's config.json with the vocabulary size so export can rebuild the model."""
    path = os.path.join(workdir, CONFIG_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            stored = json.load(f).get("lm", {}).get("characters", "")
        if stored and config.lm.characters and stored != config.lm.characters:
            raise WorkdirError(
                f"lm.characters differ from the {len(stored)} characters this workdir was "
                f"trained with ({path}); use a new --workdir"
            )
        return stored or characters
    try:
        tf.io.gfile.makedirs(workdir)
        record = config.to_dict()
        record["lm"]["characters"] = characters
        record["vocab_size"] = vocab.CHAR_SPECIALS + len(characters)
        with tf.io.gfile.GFile(path, "w") as f:
            json.dump(record, f, indent=2, default=list)
    except (OSError, tf.errors.OpError) as err:
        raise WorkdirError(f"workdir {workdir} is not writable: {err}") from err
    return characters


def stream_scores(
    model: LanguageModel,
    ids: np.ndarray,
    batch: int,
    window: int,
    char_lengths: np.ndarray,
    carry: bool = True,
    cache: dict | None = None,
) -> dict:
    """Nats, predicted tokens and their characters over a whole split.

    The split is cut into `batch` contiguous rows (`stream.stream_rows`) and read in
    windows of `window` tokens (the last one shorter), carrying the state across
    windows (`carry`) or starting every window from zeros. Every token but each
    row's first is predicted.

        cache: a dict that keeps the compiled window function between calls.

    Returns:
        {"nats", "tokens", "chars"} totals (floats).
    """
    rows = stream.stream_rows(ids, batch)
    batch = rows.shape[0]
    if rows.shape[1] < 2:
        return {"nats": 0.0, "tokens": 0.0, "chars": 0.0}
    lengths = tf.constant(char_lengths, tf.float32)
    window_fn = (cache or {}).get("fn")
    if window_fn is None:

        @tf.function(reduce_retracing=True)
        def window_fn(inputs, targets, cells):
            state = model.initial_state(tf.shape(inputs)[0], cells)
            features, final = model.forward(inputs, state, training=False)
            logits = model.output_logits(features, training=False)
            _, nll = token_cross_entropy(logits, tf.transpose(targets), 0.0)
            chars = tf.reduce_sum(tf.gather(lengths, targets))
            return tf.reduce_sum(nll), chars, final["cells"]

        if cache is not None:  # one traced function per evaluator, not per call
            cache["fn"] = window_fn
    dtype = model.decoder.compute_dtype
    zeros = [tuple(tf.zeros([batch, w], dtype) for w in layer) for layer in model.state_sizes]
    cells = zeros
    nats = chars = 0.0
    last = rows.shape[1] - 1
    for start in range(0, last, window):
        end = min(start + window, last)
        inputs = tf.constant(rows[:, start:end])
        targets = tf.constant(rows[:, start + 1 : end + 1])
        n, c, final = window_fn(inputs, targets, cells if carry else zeros)
        cells = [tuple(s) for s in final]
        nats, chars = nats + float(n), chars + float(c)
    return {"nats": nats, "tokens": float(batch * last), "chars": chars}


def summarize(scores: dict) -> dict:
    """Loss (nats per token), perplexity and bits per character of `stream_scores`."""
    loss = scores["nats"] / max(scores["tokens"], 1.0)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "bits_per_char": scores["nats"] / math.log(2.0) / max(scores["chars"], 1.0),
    }


class LanguageModelTask(Task):
    """A text stream, character or SentencePiece vocabulary (see `config.lm`).

    Args:
        config: the whole config.
        vocab_size: known when rebuilding from a workdir; else `prepare` sets it.
    """

    def __init__(self, config: ml_collections.ConfigDict, vocab_size: int | None = None):
        self.config = config
        self.vocab_size = vocab_size
        self.progress_unit = "tok" if config.data.spm_model else "chars"
        self.tokenizer = None
        self.splits: dict[str, np.ndarray] = {}
        self.carried: CarriedState | None = None
        self._windows = 0

    def prepare(self, workdir: str) -> None:
        config, lm = self.config, self.config.lm
        _check_resumed_layout(config, workdir)
        texts = split_texts(config)
        if config.data.spm_model:
            self.vocab_size = prepare_workdir(config, workdir)
            self.tokenizer = make_tokenizer(config)
        else:  # the training part's characters, unless given or kept by the workdir
            characters = lm.characters or vocab.characters_of(texts["train"][0])
            characters = _workdir_characters(config, workdir, characters)
            with config.unlocked():
                config.lm.characters = characters
            self.vocab_size = vocab.CHAR_SPECIALS + len(characters)
            self.tokenizer = vocab.CharTokenizer(characters)
        self.splits = split_streams(texts, self.tokenizer)
        batch, window = int(config.data.batch_size), int(lm.window)
        self._windows = stream.check_stream(self.splits["train"], batch, window, lm.train_text)
        logging.info(
            "language model: %d training tokens (%d windows of %d x %d per pass), %d valid, "
            "%d test",
            len(self.splits["train"]), self._windows, batch, window,
            len(self.splits["valid"]), len(self.splits["test"]),
        )  # fmt: skip

    def workdir_fields(self) -> dict:
        """What config.json keeps beside the config (its lm.characters hold the vocabulary)."""
        return {"vocab_size": self.vocab_size}

    def describe(self) -> str:
        kind = "SentencePiece" if self.config.data.spm_model else "characters"
        return f"vocabulary {self.vocab_size} ({kind})"

    def build_model(self) -> LanguageModel:
        model = build_language_model(self.config.model, self.vocab_size)
        self.carried = CarriedState(int(self.config.data.batch_size), model.state_sizes)
        return model

    def train_dataset(self) -> tf.data.Dataset:
        return stream.make_stream_dataset(
            self.splits["train"], int(self.config.data.batch_size), int(self.config.lm.window)
        )

    def examples_per_epoch(self) -> int:
        return int(self.config.data.batch_size) * self._windows

    def loss_sums(self, model: LanguageModel, batch: tuple, training: bool):
        inputs, targets, first = batch
        cells = self.carried.initial(first, model.decoder.compute_dtype)
        state = model.initial_state(tf.shape(inputs)[0], cells)
        features, final = model.forward(inputs, state, training=training)
        logits = model.output_logits(features, training)  # window x batch x vocab
        smoothed, nll = token_cross_entropy(
            logits, tf.transpose(targets), self.config.train.label_smoothing
        )
        self.carried.assign(final["cells"])
        tokens = tf.cast(tf.size(targets), tf.float32)
        return tf.reduce_sum(smoothed), tf.reduce_sum(nll), tokens

    def checkpoint_items(self) -> dict:
        # The stream position is the loop's checkpointed iterator; the state is ours.
        return {"carried_state": self.carried}

    def dev_evaluator(self, model: LanguageModel, writer_for) -> DevEvaluator | None:
        if not len(self.splits.get("valid", ())):
            return None
        return LanguageModelDevEvaluator(model, self, writer_for("dev"))

    def serving_module(
        self, model: LanguageModel, spm_model: str | None = None, defaults=None
    ) -> Generator:
        """The Generator; `spm_model` is the workdir's copy for a SentencePiece run (export
        passes it), a character run takes its vocabulary from the config."""
        if self.config.data.spm_model:
            path = spm_model or self.config.data.spm_model
            tokenizer = vocab.make_tokenizer(vocab.read_model_proto(path))
            return Generator(model, tokenizer, self.config.lm.max_prime_tokens, path)
        tokenizer = vocab.CharTokenizer(self.config.lm.characters)
        if tokenizer.vocab_size != model.vocab_size:
            raise WorkdirError(
                f"lm.characters give {tokenizer.vocab_size} ids but the model has "
                f"{model.vocab_size}; export with the workdir's config.json"
            )
        return Generator(model, tokenizer, self.config.lm.max_prime_tokens)


class LanguageModelDevEvaluator(DevEvaluator):
    """Valid loss, perplexity and bits per character, with the state carried through the
    split and reset every window, and a generated sample as TensorBoard text.

    The best checkpoint has the lowest valid bits per character (state carried).
    """

    metric = "bits_per_char"
    metric_label = "bits/char"
    higher_is_better = False

    def __init__(self, model: LanguageModel, task: LanguageModelTask, writer):
        self.model = model
        self.writer = writer
        self.config = task.config
        self.ids = task.splits["valid"]
        self.char_lengths = vocab.piece_char_lengths(task.tokenizer)
        self.generator = Generator(model, task.tokenizer, task.config.lm.max_prime_tokens)
        self._cache: dict = {}

    def scores(self, ids: np.ndarray) -> dict:
        """Carried and reset metrics of a split (`loss`, ..., `loss_reset`, ...), read in
        `lm.eval_rows` rows: both figures predict the same tokens, and few rows means few
        starts from a zero state (the training batch's many rows would each pay one)."""
        batch, window = int(self.config.lm.eval_rows), int(self.config.lm.window)
        results = {}
        for carry, suffix in ((True, ""), (False, "_reset")):
            totals = stream_scores(
                self.model, ids, batch, window, self.char_lengths, carry, self._cache
            )
            results.update({k + suffix: v for k, v in summarize(totals).items()})
        return results

    def sample(self, seed: int) -> str:
        lm = self.config.lm
        out = self.generator.generate(
            primes=tf.constant([lm.sample_prime]),
            length=tf.constant(int(lm.sample_length)),
            temperature=tf.constant(float(lm.sample_temperature)),
            top_k=tf.constant(0),
            top_p=tf.constant(1.0),
            seed=tf.constant(seed),
        )
        return out["texts"].numpy()[0].decode("utf-8")

    def __call__(self, step: int) -> dict:
        results = self.scores(self.ids)
        with self.writer.as_default(step=step):
            for name, value in results.items():
                tf.summary.scalar(name, value)
            if int(self.config.lm.sample_length):
                prime = self.config.lm.sample_prime
                text = self.sample(step)
                # Markdown: a code block keeps line breaks; the prime is marked off.
                tf.summary.text("sample", f"```\n{prime}\u2016{text}\n```")
        self.writer.flush()
        logging.info(
            "dev at step %d: %.4f nats/token, ppl %.2f, %.4f bits/char (state reset every "
            "window: %.4f bits/char)",
            step, results["loss"], results["perplexity"], results["bits_per_char"],
            results["bits_per_char_reset"],
        )  # fmt: skip
        return results
