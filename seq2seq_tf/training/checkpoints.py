"""Checkpoints: save, restore the newest good one, pick the best, average the last few.

A training checkpoint holds everything a resumed run needs (model, optimizer,
step, input position, dropout streams, the dev tracker's counters, a task's
carried state); `best/` and averaged checkpoints hold the model only, which is
all that export, evaluation and averaging read.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from seq2seq_tf.errors import MissingFileError, UserError
from seq2seq_tf.workdir import BEST_DIR, CHECKPOINT_DIR, load_workdir_config

AVERAGED_DIR = "averaged"


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. only non-finite steps); the message says why and what is kept."""


def restore_newest_good(checkpoint: tf.train.Checkpoint, paths: list[str]) -> str:
    """Restores the newest of `paths` that reads back whole; warns about each one skipped.

    Raises:
        TrainingError: none of them can be restored.
    """
    for path in reversed(paths):
        try:
            checkpoint.restore(path).assert_consumed()
            return path
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as err:
            logging.warning(
                "checkpoint %s is unreadable (%s: %s); falling back to the one before it",
                path, type(err).__name__, str(err).splitlines()[0][:200],
            )  # fmt: skip
    raise TrainingError(f"none of the checkpoints {paths} can be restored; use a new workdir")


def save_checkpoint(manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves, or stops training with a message naming the directory and the last good save.

    TensorFlow writes a checkpoint under a temporary name and renames it when whole,
    and the checkpoint list changes only after that, so a failed write (full disk,
    lost permission) is never what a rerun resumes from.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as err:
        raise TrainingError(
            f"could not write the step {step} checkpoint to {manager.directory} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:300]}); free space or fix "
            f"permissions there and rerun: it resumes from {manager.latest_checkpoint}"
        ) from err


def checkpoint_files(directory: str) -> list[str]:
    """Checkpoint prefixes found as files in `directory` (`name-<step>.index`), oldest first.

    What the index (`directory/checkpoint`) would list; read when the index is gone.
    """
    found = []
    for index in tf.io.gfile.glob(os.path.join(directory, "*-*.index")):
        prefix = index[: -len(".index")]
        step = prefix.rsplit("-", 1)[-1]
        if step.isdigit():
            found.append((int(step), prefix))
    return [prefix for _, prefix in sorted(found)]


def checkpoint_paths(directory: str) -> list[str]:
    """The checkpoints of `directory`, oldest first: from its index, else from its files."""
    state = tf.train.get_checkpoint_state(directory)
    if state and state.all_model_checkpoint_paths:
        return list(state.all_model_checkpoint_paths)
    return checkpoint_files(directory)


def recover_checkpoint_index(directory: str) -> None:
    """Rewrites a missing checkpoint index from the checkpoint files beside it.

    Without it a rerun would start from step 0 and its saves would overwrite (and
    the keep-N cleanup delete) the checkpoints that are there.
    """
    if tf.train.get_checkpoint_state(directory):
        return
    found = checkpoint_files(directory)
    if found:
        # With their times, so the manager tracks them (and keeps N as usual).
        times = [tf.io.gfile.stat(f"{p}.index").mtime_nsec / 1e9 for p in found]
        tf.compat.v1.train.update_checkpoint_state(
            directory,
            found[-1],
            all_model_checkpoint_paths=found,
            all_model_checkpoint_timestamps=times,
            last_preserved_timestamp=min(times) - 1.0,
        )
        logging.warning(
            "%s had checkpoint files but no index (%s); rebuilt it from %d files, newest %s",
            directory, os.path.join(directory, "checkpoint"), len(found), found[-1],
        )  # fmt: skip


def default_checkpoint(workdir: str) -> str | None:
    """The best checkpoint by the dev metric when the run kept one, else the latest."""
    for directory in (BEST_DIR, CHECKPOINT_DIR):
        paths = checkpoint_paths(os.path.join(workdir, directory))
        if paths:
            return paths[-1]
    return None


def restore_model(workdir: str, checkpoint: str | None = None) -> tuple[keras.Model, str]:
    """The model of a workdir with weights from `checkpoint` (default: best, else latest)."""
    from seq2seq_tf.tasks import make_task  # the task builds its model (seq2seq or LM)

    config, vocab_size = load_workdir_config(workdir)
    model = make_task(config, vocab_size).build_model()
    if checkpoint is None:
        checkpoint = default_checkpoint(workdir)
        if checkpoint is None:
            raise MissingFileError(f"no checkpoint in {os.path.join(workdir, CHECKPOINT_DIR)}")
    if not tf.io.gfile.exists(f"{checkpoint}.index"):
        raise MissingFileError(
            f"checkpoint {checkpoint} not found (give the prefix, e.g. {workdir}/best/best-1000)"
        )
    # read(), not restore(): model-only checkpoints (averaged ones) hold no save counter.
    try:
        status = tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        raise TrainingError(
            f"checkpoint {checkpoint} does not hold the model of {workdir}/config.json "
            f"({str(err).splitlines()[0][:200]})"
        ) from err
    return model, checkpoint


def last_checkpoints(workdir: str, last: int) -> list[str]:
    """The newest `last` rolling checkpoints, oldest first."""
    paths = checkpoint_paths(os.path.join(workdir, CHECKPOINT_DIR))
    if not paths:
        raise MissingFileError(f"no checkpoints in {os.path.join(workdir, CHECKPOINT_DIR)}")
    if last > len(paths):
        logging.warning("asked for %d checkpoints, %s keeps %d", last, workdir, len(paths))
    return paths[-last:]


def average_checkpoints(workdir: str, last: int, output_dir: str | None = None) -> str:
    """Writes the mean of every model weight over the last checkpoints; returns its path."""
    paths = last_checkpoints(workdir, last)
    total = None
    for path in paths:
        model, _ = restore_model(workdir, path)
        weights = [w.numpy().astype(np.float64) for w in model.weights]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    for variable, summed in zip(model.weights, total):
        # Keras 3 variables name their dtype as a string; numpy takes it as it is.
        variable.assign((summed / len(paths)).astype(np.dtype(variable.dtype)))
    output_dir = output_dir or os.path.join(workdir, AVERAGED_DIR)
    step = paths[-1].rsplit("-", 1)[-1]
    saved = tf.train.Checkpoint(model=model).write(os.path.join(output_dir, f"averaged-{step}"))
    logging.info(
        "averaged %d checkpoints (%s .. %s) into %s", len(paths), paths[0], paths[-1], saved
    )
    return saved
