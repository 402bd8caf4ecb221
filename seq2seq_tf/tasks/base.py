"""What a task gives the training loop; everything else the loop owns."""

from __future__ import annotations

import abc
from collections.abc import Callable

import keras
import tensorflow as tf


class DevEvaluator(abc.ABC):
    """Dev evaluation during training; names the metric the best checkpoint is chosen by.

    `metric` is a key of the dict `__call__` returns (higher is better unless
    `higher_is_better` is False, as for bits per character); `metric_label` is how
    the log names it.
    """

    metric: str
    metric_label: str
    higher_is_better: bool = True

    @abc.abstractmethod
    def __call__(self, step: int) -> dict:
        """Evaluates the current weights at `step`, writes summaries, returns the metrics."""


class Task(abc.ABC):
    """Datasets, loss, dev evaluator and serving module of one kind of model.

    Lifecycle in the loop: `prepare(workdir)` (check data, write what the workdir
    keeps), then `build_model()`, `train_dataset()`, `loss_sums` inside the
    compiled step, `dev_evaluator(...)` every `train.eval_every` steps.
    """

    progress_unit = "tokens"  # what tokens/s counts in the progress line

    @abc.abstractmethod
    def prepare(self, workdir: str) -> None:
        """Checks the data (errors name file and line) and stores what export needs."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One phrase for the log, e.g. "vocabulary 8000"."""

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """The model of `config.model`, with all variables created."""

    @abc.abstractmethod
    def train_dataset(self) -> tf.data.Dataset:
        """Repeated training batches, each a tuple of tensors (checkpointable iterator)."""

    @abc.abstractmethod
    def examples_per_epoch(self) -> int:
        """Examples in one pass over the training data (for the epoch counter)."""

    @abc.abstractmethod
    def loss_sums(self, model: keras.Model, batch: tuple, training: bool):
        """`(smoothed loss sum, NLL sum, tokens)` of one batch (one replica's share)."""

    def dev_evaluator(self, model: keras.Model, writer_for: Callable) -> DevEvaluator | None:
        """The dev evaluator, or None without dev data; `writer_for(name)` gives a
        summary writer."""
        return None

    def workdir_fields(self) -> dict:
        """What config.json keeps beside the config (e.g. the vocabulary size)."""
        return {}

    def checkpoint_items(self) -> dict:
        """Extra trackables the training checkpoint holds (a language model's carried state)."""
        return {}

    @abc.abstractmethod
    def serving_module(self, model: keras.Model, *args, **kwargs) -> tf.Module:
        """The exportable module with raw-input signatures."""
