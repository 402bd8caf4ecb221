"""Checkpoints: restore the newest good one, name a failed write, pick best else latest,
restore a workdir's model, average the last few."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from support import ROOT, tiny_config

from seq2seq_tf import workdir
from seq2seq_tf.models import build_model
from seq2seq_tf.training import checkpoints, loop
from seq2seq_tf.training.checkpoints import TrainingError


def _numbered_checkpoints(directory: str, values, size: int = 1000):
    """A manager's checkpoints of one `size`-vector, the k-th filled with values[k]."""
    variable = tf.Variable(tf.zeros([size]))
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(v=variable), directory, max_to_keep=None
    )
    paths = []
    for number, value in enumerate(values, start=1):
        variable.assign(tf.fill([size], float(value)))
        paths.append(manager.save(checkpoint_number=number))
    return paths


def _truncate(path: str) -> None:
    data_file = path + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:  # a write cut short by a crash
        f.truncate(os.path.getsize(data_file) // 3)


def test_restore_newest_good_skips_unreadable_checkpoints(tmp_path, caplog):
    caplog.set_level("INFO", logger="absl")
    paths = _numbered_checkpoints(str(tmp_path), [1.0, 2.0, 3.0])
    _truncate(paths[2])
    variable = tf.Variable(tf.zeros([1000]))
    restored = checkpoints.restore_newest_good(tf.train.Checkpoint(v=variable), paths)
    assert restored == paths[1]
    np.testing.assert_array_equal(variable.numpy(), 2.0)
    assert "ckpt-3 is unreadable" in caplog.text
    assert "ckpt-2 is unreadable" not in caplog.text  # it stops at the first good one
    for path in paths:
        _truncate(path)
    with pytest.raises(TrainingError, match="none of the checkpoints .* can be restored"):
        checkpoints.restore_newest_good(tf.train.Checkpoint(v=variable), paths)


def test_save_checkpoint_names_the_directory_and_the_last_good_save(tmp_path):
    directory = str(tmp_path / "ckpts")
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(v=tf.Variable(1.0)), directory, max_to_keep=3
    )
    assert checkpoints.save_checkpoint(manager, 1).endswith("ckpt-1")
    (tmp_path / "ckpts" / "ckpt-2_temp").write_text("in the way")
    with pytest.raises(TrainingError, match="could not write the step 2 checkpoint") as err:
        checkpoints.save_checkpoint(manager, 2)
    assert directory in str(err.value)
    assert str(err.value).endswith(f"resumes from {manager.latest_checkpoint}")
    assert manager.latest_checkpoint.endswith("ckpt-1")


def test_default_checkpoint_is_the_best_else_the_latest_and_restore_model_reads_it(
    toy_data, tmp_path
):
    run = str(tmp_path)
    config = tiny_config(toy_data)
    vocab_size = workdir.prepare_workdir(config, run)
    workdir.write_config(config, run, vocab_size=vocab_size)
    assert checkpoints.default_checkpoint(run) is None
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        checkpoints.restore_model(run)

    def save(directory, name, number):
        model = build_model(config.model, vocab_size)
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model),
            os.path.join(run, directory),
            max_to_keep=2,
            checkpoint_name=name,
        )
        return model, manager.save(checkpoint_number=number)

    _, latest = save(workdir.CHECKPOINT_DIR, "ckpt", 30)
    assert checkpoints.default_checkpoint(run) == latest
    best_model, best = save(workdir.BEST_DIR, "best", 10)
    assert checkpoints.default_checkpoint(run) == best  # best beats a newer latest
    model, path = checkpoints.restore_model(run)
    assert path == best
    assert len(model.weights) == len(best_model.weights) > 10
    for got, want in zip(model.weights, best_model.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    _, path = checkpoints.restore_model(run, latest)  # an explicit checkpoint wins
    assert path == latest


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(
    trained_workdir, toy_data, tmp_path, caplog
):
    caplog.set_level("INFO", logger="absl")
    run = str(tmp_path / "run")
    shutil.copytree(trained_workdir, run)  # checkpoints 20, 40, 60
    _truncate(tf.train.latest_checkpoint(os.path.join(run, "checkpoints")))
    result = loop.train_and_evaluate(tiny_config(toy_data, num_steps=70), run)
    assert result["step"] == 70
    assert "ckpt-60 is unreadable" in caplog.text
    assert "resumed from" in caplog.text and "ckpt-40 at step 40" in caplog.text


def test_a_failing_checkpoint_write_names_the_path_and_a_rerun_resumes_the_last_good(
    trained_workdir, toy_data, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(trained_workdir, run)  # checkpoints 20, 40, 60
    # The next save cannot create its temporary directory (as on a full or read-only disk).
    (run / "checkpoints" / "ckpt-70_temp").write_text("in the way")
    config = tiny_config(toy_data, num_steps=70, checkpoint_every=10)
    with pytest.raises(TrainingError, match="could not write the step 70 checkpoint") as err:
        loop.train_and_evaluate(config, str(run))
    assert str(run / "checkpoints") in str(err.value) and "ckpt-60" in str(err.value)
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-60")
    (run / "checkpoints" / "ckpt-70_temp").unlink()
    result = loop.train_and_evaluate(config, str(run))
    assert result["step"] == 70


def test_averaged_weights_equal_the_mean_of_the_last_checkpoints(trained_workdir, tmp_path):
    from seq2seq_tf.serving import export

    run = str(tmp_path / "run")
    shutil.copytree(trained_workdir, run)  # checkpoints 20, 40, 60
    paths = checkpoints.last_checkpoints(run, 2)
    assert [p.rsplit("-", 1)[-1] for p in paths] == ["40", "60"]
    averaged = checkpoints.average_checkpoints(run, 2)
    assert averaged == os.path.join(run, checkpoints.AVERAGED_DIR, "averaged-60")

    # Training checkpoints name variables by their first path (often through the
    # optimizer), so weights are compared through restored models, not by key.
    def weights(path):
        model, _ = checkpoints.restore_model(run, path)
        return [w.numpy() for w in model.weights]

    runs = [weights(p) for p in paths]
    result = weights(averaged)
    assert len(result) > 10
    assert any(not np.allclose(a, b) for a, b in zip(*runs))  # the two really differ
    for got, *each in zip(result, *runs):
        np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-6, atol=1e-7)
    # Export takes it like any checkpoint.
    path = export.export(run, str(tmp_path / "export"), checkpoint=averaged)
    assert path.endswith("/60")
    # The command line writes the same average where --output_dir says.
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "seq2seq_tf.average_checkpoints", f"--workdir={run}",
         "--last=2", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"averaged checkpoint: {out / 'averaged-60'}" in done.stdout
    for got, want in zip(weights(str(out / "averaged-60")), result):
        np.testing.assert_array_equal(got, want)


def test_checkpoint_files_without_their_index_are_found_and_the_index_rebuilt(tmp_path):
    directory = str(tmp_path / "ckpts")
    variable = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), directory, 5)
    for step in (3, 10, 7):  # saved out of step order: the rebuilt index sorts by step
        variable.assign(float(step))
        manager.save(checkpoint_number=step)
    os.remove(os.path.join(directory, "checkpoint"))
    assert tf.train.get_checkpoint_state(directory) is None
    expected = [os.path.join(directory, f"ckpt-{s}") for s in (3, 7, 10)]
    assert checkpoints.checkpoint_paths(directory) == expected
    checkpoints.recover_checkpoint_index(directory)
    again = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), directory, 5)
    assert again.checkpoints == expected
    checkpoints.recover_checkpoint_index(directory)  # an index that is there is left alone
    assert tf.train.get_checkpoint_state(directory).model_checkpoint_path == expected[-1]


def test_a_rerun_without_the_checkpoint_index_resumes_and_overwrites_nothing(
    trained_workdir, toy_data, tmp_path
):
    run = str(tmp_path / "run")
    shutil.copytree(trained_workdir, run)
    ckpt_dir = os.path.join(run, workdir.CHECKPOINT_DIR)
    os.remove(os.path.join(ckpt_dir, "checkpoint"))
    newest = sorted(f for f in os.listdir(ckpt_dir) if f.startswith("ckpt-60."))
    before = {f: open(os.path.join(ckpt_dir, f), "rb").read() for f in newest}
    result = loop.train_and_evaluate(tiny_config(toy_data, num_steps=70), run)
    assert result["step"] == 70
    # Restarted from 0, the run would have written its own ckpt-60 over this one.
    assert {f: open(os.path.join(ckpt_dir, f), "rb").read() for f in newest} == before
    assert tf.train.get_checkpoint_state(ckpt_dir).model_checkpoint_path.endswith("ckpt-70")
    # train.keep_checkpoints (3) applies to the recovered ones too: ckpt-20 went.
    kept = sorted(int(f[5:-6]) for f in os.listdir(ckpt_dir) if f.endswith(".index"))
    assert kept == [40, 60, 70]


def test_restore_model_names_a_missing_checkpoint_and_one_of_another_model(
    trained_workdir, toy_data, tmp_path
):
    with pytest.raises(checkpoints.MissingFileError, match=r"checkpoint .*nope not found"):
        checkpoints.restore_model(trained_workdir, str(tmp_path / "nope"))
    config = tiny_config(toy_data)
    config.model.decoder_units = 48  # another shape of the same task
    other = build_model(config.model, 300)
    path = tf.train.Checkpoint(model=other).write(str(tmp_path / "other" / "ckpt-1"))
    with pytest.raises(TrainingError, match="does not hold the model of .*config.json"):
        checkpoints.restore_model(trained_workdir, path)
