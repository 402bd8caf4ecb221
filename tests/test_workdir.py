"""The workdir: a second run is refused while one lives, a rerun with another model
changes nothing, and config.json is written whole."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from support import ROOT, tiny_config

from seq2seq_tf import workdir
from seq2seq_tf.training import loop


def test_a_second_run_on_a_locked_workdir_is_refused_naming_the_first(tmp_path):
    run = str(tmp_path / "run")
    with workdir.training_lock(run):
        with pytest.raises(workdir.WorkdirError, match=f"in use by .*pid {os.getpid()} on "):
            with workdir.training_lock(run):
                pass
    with workdir.training_lock(run):  # released at the end of the first
        pass


def test_a_killed_holder_does_not_leave_the_lock_stuck(tmp_path):
    run = str(tmp_path / "run")
    holder = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import fcntl, os
        lock = open(os.path.join({run!r}, "train.lock"), "a+")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("pid %d held by the test" % os.getpid()); lock.flush()
        print("locked", flush=True)
        time.sleep(600)
        """
    )
    os.makedirs(run)
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(workdir.WorkdirError, match="held by the test"):
            with workdir.training_lock(run):
                pass
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with workdir.training_lock(run):
        pass


def test_another_model_config_is_refused_before_anything_changes(
    trained_workdir, tmp_path, toy_data
):
    run = str(tmp_path / "run")
    shutil.copytree(trained_workdir, run)
    before = {
        name: open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(run)
        for name in names
    }
    config = tiny_config(toy_data, num_steps=80)
    config.model.attention_units = 2 * config.model.attention_units
    config.model.dropout = 0.25
    with pytest.raises(workdir.WorkdirError) as err:
        loop.train_and_evaluate(config, run)
    message = str(err.value)
    assert "model.attention_units: 32 in the workdir, 64 now" in message
    assert "model.dropout: 0.0 in the workdir, 0.25 now" in message
    after = {
        name: open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(run)
        for name in names
        if name != workdir.LOCK_FILE
    }
    before.pop(workdir.LOCK_FILE, None)
    assert after == before


def test_write_config_leaves_no_partial_file_and_round_trips(tmp_path, toy_data):
    config = tiny_config(toy_data)
    workdir.write_config(config, str(tmp_path), vocab_size=300)
    assert os.listdir(tmp_path) == [workdir.CONFIG_FILE]
    stored = json.loads((tmp_path / workdir.CONFIG_FILE).read_text())
    assert stored["vocab_size"] == 300 and stored["model"] == json.loads(
        json.dumps(config.model.to_dict(), default=list)
    )
