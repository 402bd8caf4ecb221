"""Training loop: loss goes down, a restarted run resumes, bad workdirs are refused."""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from seq2seq_tf import train, workdir
from seq2seq_tf.model import build_model


def _model_weights(path: str, config, vocab_size: int):
    model = build_model(config.model, vocab_size)
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return [w.numpy() for w in model.weights]


def test_short_run_lowers_the_loss(toy_data, tmp_path):
    first = train.train_and_evaluate(
        tiny_config(toy_data, num_steps=10, log_every=10), str(tmp_path)
    )
    config = tiny_config(toy_data, num_steps=60, log_every=10)
    last = train.train_and_evaluate(config, str(tmp_path))
    assert last["loss"] < 0.9 * first["loss"]
    for name in ("loss", "perplexity", "learning_rate", "grad_norm", "tokens_per_sec"):
        assert np.isfinite(last[name])
    assert os.listdir(tmp_path / workdir.TENSORBOARD_DIR / "train")


def test_restart_resumes_step_and_input_position(toy_data, tmp_path):
    straight = str(tmp_path / "straight")
    resumed = str(tmp_path / "resumed")
    train.train_and_evaluate(tiny_config(toy_data, num_steps=40, checkpoint_every=20), straight)
    train.train_and_evaluate(tiny_config(toy_data, num_steps=20, checkpoint_every=20), resumed)
    assert tf.train.latest_checkpoint(os.path.join(resumed, "checkpoints")).endswith("-20")
    # The same command with the full step count picks up at step 20.
    train.train_and_evaluate(tiny_config(toy_data, num_steps=40, checkpoint_every=20), resumed)
    reader = tf.train.load_checkpoint(os.path.join(resumed, "checkpoints"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 40
    # Same batches in the same order (dropout is off): the weights match the straight run.
    config = tiny_config(toy_data)
    vocab = workdir.load_workdir_config(straight)[1]
    a = _model_weights(
        tf.train.latest_checkpoint(os.path.join(straight, "checkpoints")), config, vocab
    )
    b = _model_weights(
        tf.train.latest_checkpoint(os.path.join(resumed, "checkpoints")), config, vocab
    )
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_workdir_refuses_another_sentencepiece_model(toy_data, tmp_path):
    from seq2seq_tf import tokenizer

    train.train_and_evaluate(
        tiny_config(toy_data, num_steps=2, checkpoint_every=2), str(tmp_path / "w")
    )
    other = tokenizer.train_sentencepiece(
        [toy_data["train_src"], toy_data["train_tgt"]], str(tmp_path / "other"), 200, "bpe"
    )
    config = tiny_config(toy_data, num_steps=4)
    config.data.spm_model = other
    with pytest.raises(workdir.WorkdirError, match=r"other\.model \(\d+ pieces\) is not the"):
        train.train_and_evaluate(config, str(tmp_path / "w"))


def test_unwritable_workdir_is_named(toy_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(workdir.WorkdirError, match="file/run is not writable"):
        train.train_and_evaluate(tiny_config(toy_data), str(blocker / "run"))


def test_workdir_config_round_trip(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=3)
    vocab = workdir.prepare_workdir(config, str(tmp_path))
    loaded, loaded_vocab = workdir.load_workdir_config(str(tmp_path))
    assert loaded_vocab == vocab
    assert loaded.to_dict() == config.to_dict() or loaded.model.to_dict() == config.model.to_dict()
    assert tuple(loaded.data.bucket_boundaries) == tuple(config.data.bucket_boundaries)
