"""The workdir layout: what a training run leaves for resume, export and TensorBoard.

<workdir>/config.json      the config the run uses, plus the vocabulary size
<workdir>/spm.model        the SentencePiece model the run was trained with
<workdir>/checkpoints/     rolling checkpoints (model, optimizer, step, input position)
<workdir>/best/            the checkpoint with the best dev BLEU (export's default)
<workdir>/best.json        its step and score, and the last dev evaluation
<workdir>/tensorboard/     summaries
<workdir>/train.lock       who is training here (held while a run lives; see `training_lock`)

A rerun changes nothing in a workdir until it is known to fit: the model config
is compared with config.json first, and config.json is rewritten only after the
newest checkpoint has been restored.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import time

import ml_collections
import tensorflow as tf
from absl import logging

from seq2seq_tf import config as config_lib
from seq2seq_tf.data import vocab
from seq2seq_tf.errors import MissingFileError, UserError

CONFIG_FILE = "config.json"
SPM_FILE = "spm.model"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
BEST_FILE = "best.json"
LOCK_FILE = "train.lock"
TENSORBOARD_DIR = "tensorboard"


class WorkdirError(UserError, ValueError):
    """The workdir belongs to a different run; the message says what differs."""


def _sha256(path: str) -> str:
    return hashlib.sha256(tf.io.gfile.GFile(path, "rb").read()).hexdigest()


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> int:
    """Checks the workdir matches this run and stores the SentencePiece model of a new one.

    config.json is written by the training loop once a resume has succeeded
    (`write_config`).

    Returns:
        the vocabulary size.

    Raises:
        WorkdirError: the workdir was trained with another SentencePiece model.
    """
    proto_path = config.data.spm_model
    vocab_size = vocab.vocab_size_of(proto_path)
    try:
        tf.io.gfile.makedirs(workdir)
        probe = os.path.join(workdir, ".write_test")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as err:
        raise WorkdirError(f"workdir {workdir} is not writable: {err}") from err
    stored_spm = os.path.join(workdir, SPM_FILE)
    if tf.io.gfile.exists(stored_spm):
        if _sha256(stored_spm) != _sha256(proto_path):
            stored_size = vocab.vocab_size_of(stored_spm)
            raise WorkdirError(
                f"data.spm_model {proto_path} ({vocab_size} pieces) is not the SentencePiece "
                f"model this workdir was trained with ({stored_spm}, {stored_size} pieces); "
                "use a new --workdir or the original model"
            )
    else:
        shutil.copyfile(proto_path, stored_spm)
    return vocab_size


def _comparable(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def check_config_compatible(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Refuses a config whose task or model differs from the workdir's config.json.

    Raises:
        WorkdirError: naming each field that differs (the workdir is left as it was).
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        stored = _flatten(json.load(f))
    new = _flatten(config.to_dict())
    differ = [
        f"{key}: {stored.get(key)!r} in the workdir, {new[key]!r} now"
        for key in sorted(new)
        if (key == "task" or key.startswith("model."))
        and _comparable(stored.get(key, new[key])) != _comparable(new[key])
    ]
    if differ:
        raise WorkdirError(
            f"{workdir} was trained with another model ({'; '.join(differ[:6])}); "
            "use a new --workdir, or the workdir's config.json, to resume"
        )


def write_config(config: ml_collections.ConfigDict, workdir: str, **extra) -> None:
    """Writes config.json (with `extra` fields such as vocab_size), whole or not at all."""
    stored = dict(config.to_dict(), **extra)
    path = os.path.join(workdir, CONFIG_FILE)
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "w") as f:
        json.dump(stored, f, indent=2, default=list)
    tf.io.gfile.rename(partial, path, overwrite=True)


@contextlib.contextmanager
def training_lock(workdir: str):
    """Holds `<workdir>/train.lock` while a training run lives; a second run is refused.

    The lock is an flock: the kernel drops it when the holding process ends,
    however it ends (kill -9 included), so a killed run never leaves it stuck.
    Remote filesystems (gs://, ...) have no flock; there the run goes unlocked.
    """
    if "://" in workdir:
        logging.warning("%s is not a local path: training there is not locked", workdir)
        yield
        return
    path = os.path.join(workdir, LOCK_FILE)
    try:
        os.makedirs(workdir, exist_ok=True)
        lock = open(path, "a+", encoding="utf-8")
    except OSError as err:
        raise WorkdirError(f"workdir {workdir} is not writable: {err}") from err
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise WorkdirError(
                f"{workdir} is in use by another training run ({holder}); wait for it to "
                "finish or stop it, or use another --workdir"
            ) from None
        lock.seek(0)
        lock.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_workdir_config(workdir: str) -> tuple[ml_collections.ConfigDict, int]:
    """The config and vocabulary size a workdir was trained with."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise MissingFileError(f"{path} not found: is {workdir} a training workdir?")
    with tf.io.gfile.GFile(path) as f:
        stored = json.load(f)
    vocab_size = stored.pop("vocab_size")
    config = config_lib.default_config()
    config.unlock()
    config.update_from_flattened_dict(_flatten(stored))
    config.lock()
    return config, vocab_size


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat
