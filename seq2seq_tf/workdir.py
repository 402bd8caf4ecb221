"""The workdir layout: what a training run leaves for resume, export and TensorBoard.

<workdir>/config.json      the config the run uses, plus the vocabulary size
<workdir>/spm.model        the SentencePiece model the run was trained with
<workdir>/checkpoints/     rolling checkpoints (model, optimizer, step, input position)
<workdir>/best/            the checkpoint with the best dev BLEU (export's default)
<workdir>/best.json        its step and score, and the last dev evaluation
<workdir>/tensorboard/     summaries
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import ml_collections
import tensorflow as tf

from seq2seq_tf import config as config_lib
from seq2seq_tf.data import vocab

CONFIG_FILE = "config.json"
SPM_FILE = "spm.model"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
BEST_FILE = "best.json"
TENSORBOARD_DIR = "tensorboard"


class WorkdirError(ValueError):
    """The workdir belongs to a different run; the message says what differs."""


def _sha256(path: str) -> str:
    return hashlib.sha256(tf.io.gfile.GFile(path, "rb").read()).hexdigest()


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> int:
    """Checks the workdir matches this run, stores config and SentencePiece model.

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
    stored = dict(config.to_dict())
    stored["vocab_size"] = vocab_size
    with tf.io.gfile.GFile(os.path.join(workdir, CONFIG_FILE), "w") as f:
        json.dump(stored, f, indent=2, default=list)
    return vocab_size


def load_workdir_config(workdir: str) -> tuple[ml_collections.ConfigDict, int]:
    """The config and vocabulary size a workdir was trained with."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} not found: is {workdir} a training workdir?")
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
