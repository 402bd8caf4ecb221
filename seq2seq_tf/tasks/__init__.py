"""Tasks: what differs per kind of model (datasets, loss, dev metric, serving module)."""

from __future__ import annotations

import ml_collections

from seq2seq_tf.tasks.base import DevEvaluator, Task

TASKS = ("translation", "language_model", "captioning")


def make_task(config: ml_collections.ConfigDict, vocab_size: int | None = None) -> Task:
    """The task `config.task` names; `vocab_size` when the workdir already knows it."""
    if config.task == "translation":
        from seq2seq_tf.tasks.translation import TranslationTask

        return TranslationTask(config, vocab_size)
    if config.task == "language_model":
        from seq2seq_tf.tasks.language_modeling import LanguageModelTask

        return LanguageModelTask(config, vocab_size)
    if config.task == "captioning":
        from seq2seq_tf.tasks.captioning import CaptioningTask

        return CaptioningTask(config, vocab_size)
    raise ValueError(f"config field task: must be one of {TASKS}, got {config.task!r}")


__all__ = ["TASKS", "DevEvaluator", "Task", "make_task"]
