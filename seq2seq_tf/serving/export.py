"""Export a workdir's model as a SavedModel that TF Serving loads.

Writes `<export_dir>/<version>/` (the layout TF Serving expects under a model
base path) holding the task's serving module: for translation the tokenizer,
the model and the search in one graph.
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging

from seq2seq_tf.errors import UserError
from seq2seq_tf.serving.search_columns import SearchSpeedupError, SearchSpeedups
from seq2seq_tf.serving.translator import SearchDefaults, Translator
from seq2seq_tf.training.checkpoints import restore_model
from seq2seq_tf.workdir import SPM_FILE, load_workdir_config


class ExportError(UserError, ValueError):
    """The export cannot be written where asked; the message says why."""


def serving_module(
    workdir: str,
    checkpoint: str | None = None,
    spm_model: str | None = None,
    defaults: SearchDefaults | None = None,
    speedups: SearchSpeedups | None = None,
) -> tuple[Translator, str]:
    """The serving module of a workdir's checkpoint (default: best, else latest), and
    which checkpoint it holds."""
    from seq2seq_tf.tasks import make_task

    defaults = defaults or SearchDefaults()
    if defaults.use_shortlist and not (speedups and speedups.shortlist_k):
        raise SearchSpeedupError("--shortlist_default needs a shortlist (--shortlist_k > 0)")
    config, vocab_size = load_workdir_config(workdir)
    if speedups is not None and speedups.any and config.task != "translation":
        raise SearchSpeedupError(
            "--target_vocab, --shortlist_k, --input_table and --xla_search apply to "
            "translation exports, "
            f"not to {config.task}"
        )
    model, checkpoint = restore_model(workdir, checkpoint)
    task = make_task(config, vocab_size)
    spm_model = spm_model or os.path.join(workdir, SPM_FILE)
    extra = {"speedups": speedups} if speedups is not None and speedups.any else {}
    module = task.serving_module(model, spm_model, defaults, **extra)
    return module, checkpoint


def export(
    workdir: str,
    export_dir: str,
    version: int | None = None,
    checkpoint: str | None = None,
    spm_model: str | None = None,
    defaults: SearchDefaults | None = None,
    speedups: SearchSpeedups | None = None,
) -> str:
    """Exports a workdir's model; returns the versioned SavedModel path."""
    if version is not None and version < 0:
        raise ExportError(f"--version must be >= 0, got {version}")
    module, checkpoint = serving_module(workdir, checkpoint, spm_model, defaults, speedups)
    if version is None:
        version = int(checkpoint.rsplit("-", 1)[-1])
    path = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(path):
        raise ExportError(
            f"{path} already exists (a TF Serving base path may be serving it); "
            "pass another --version or remove it first"
        )
    # Written beside its final place and renamed when whole: TF Serving, watching the
    # base path, skips names that are not numbers and never sees a half-written model.
    partial = os.path.join(export_dir, f".partial-{version}-{os.getpid()}")
    try:
        # The tf.functions themselves, not their concrete functions: traced inside the
        # save context, each is traced once (a concrete function traced before `save`
        # has another cache key there, so saving the module would trace it again).
        tf.saved_model.save(module, partial, signatures=module.signature_functions())
        tf.io.gfile.rename(partial, path)
    finally:
        if tf.io.gfile.exists(partial):
            tf.io.gfile.rmtree(partial)
    logging.info("exported %s (checkpoint %s) to %s", workdir, checkpoint, path)
    return path
