"""tf.distribute: two logical CPU devices train like one; two worker processes train and resume.

Each case runs in a fresh process: logical devices and collective ops must be set
up before TensorFlow initializes its runtime.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import tiny_config

from seq2seq_tf.models import build_model
from seq2seq_tf.training import distribute, loop

TESTS = str(pathlib.Path(__file__).parents[1])  # where support.py is
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_make_strategy_names_and_errors(monkeypatch):
    assert distribute.make_strategy("default").num_replicas_in_sync == 1
    assert distribute.is_chief(distribute.make_strategy("default"))
    with pytest.raises(ValueError, match="train.strategy must be one of"):
        distribute.make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distribute.make_strategy("multi_worker")


def test_config_refuses_an_unknown_strategy(toy_data):
    from seq2seq_tf import config as config_lib

    config = tiny_config(toy_data)
    config.train.strategy = "horovod"
    with pytest.raises(config_lib.ConfigError, match="train.strategy"):
        config_lib.validate(config)


_MIRRORED_RUN = """
import sys, json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
sys.path.insert(0, {tests!r})
from support import tiny_config
from seq2seq_tf import workdir
from seq2seq_tf.models import build_model
from seq2seq_tf.training import distribute, loop

import keras
out = {{}}
config = tiny_config({toy!r})
keras.utils.set_random_seed(config.data.seed)  # as the loop does before building
initial = {{
    v.path.split("/", 1)[1]: v.numpy().ravel().tolist()
    for v in build_model(config.model, 300).trainable_variables
}}
for name in ("default", "mirrored"):
    run = {base!r} + "/" + name
    losses = []
    for steps in (1, 4):  # one step for exact moments, then resume to 4 for the loss
        config = tiny_config({toy!r}, num_steps=steps, log_every=1, checkpoint_every=1)
        config.train.strategy = name
        losses.append(loop.train_and_evaluate(config, run)["loss"])
        if steps == 1:
            model = build_model(config.model, workdir.load_workdir_config(run)[1])
            path = tf.train.latest_checkpoint(run + "/checkpoints")
            tf.train.Checkpoint(model=model).read(path).expect_partial()
            reader = tf.train.load_checkpoint(path)
            # Adam's variables: m and v of trainable variable k at 2k + 1 and 2k + 2.
            moment = lambda i: reader.get_tensor(
                f"optimizer/_variables/{{i}}/.ATTRIBUTES/VARIABLE_VALUE").ravel().tolist()
            variables = [
                {{"path": v.path.split("/", 1)[1], "weight": v.numpy().ravel().tolist(),
                  "m": moment(2 * k + 1), "v": moment(2 * k + 2)}}
                for k, v in enumerate(model.trainable_variables)
            ]
    out[name] = {{"losses": losses, "variables": variables, "initial": initial,
                 "replicas": distribute.make_strategy(name).num_replicas_in_sync}}
print("RESULT" + json.dumps(out))
"""


def test_mirrored_strategy_on_two_cpu_devices_equals_one_device(toy_data, tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(_MIRRORED_RUN.format(tests=TESTS, toy=toy_data, base=str(tmp_path)))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=ENV
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT")[1])
    one, two = out["default"], out["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    # Same global batches, gradients summed once (m would be 2x if summed twice).
    np.testing.assert_allclose(one["losses"][0], two["losses"][0], rtol=1e-5)
    assert len(one["variables"]) == len(two["variables"]) > 10
    for a, b in zip(one["variables"], two["variables"]):
        assert a["path"] == b["path"]
        np.testing.assert_allclose(a["m"], b["m"], rtol=1e-4, atol=1e-9, err_msg=a["path"])
        if "embedding" in a["path"]:
            # Keras's sparse Adam squares an embedding gradient row by row, so v differs
            # between one device (IndexedSlices) and two (dense, see training/loop.py),
            # and the weights with it. Embeddings included all the same: m is equal
            # above, and each run's step is Adam's own formula from its m and v
            # (t = 1, lr 5e-3), from the same initial weights.
            for run in (a, b):
                w0, m, v = (np.array(x) for x in (one["initial"][a["path"]], run["m"], run["v"]))
                alpha = 5e-3 * np.sqrt(1 - 0.999) / (1 - 0.9)
                expected = w0 - alpha * m / (np.sqrt(v) + 1e-7)
                # atol: float32 rounding where sqrt(v) is near epsilon (0.02% of a full step).
                np.testing.assert_allclose(run["weight"], expected, rtol=1e-5, atol=1e-6)
            continue
        np.testing.assert_allclose(a["v"], b["v"], rtol=1e-4, atol=1e-12, err_msg=a["path"])
        np.testing.assert_allclose(a["weight"], b["weight"], rtol=1e-5, atol=1e-6)
        initial = np.array(one["initial"][a["path"]])
        assert not np.allclose(a["weight"], initial), a["path"]  # it did take a step
    # Four steps later the runs still agree closely.
    np.testing.assert_allclose(one["losses"][1], two["losses"][1], rtol=1e-2)


_WORKER_RUN = """
import sys, json
sys.path.insert(0, {tests!r})
from absl import logging
logging.set_verbosity("info")
from support import tiny_config
from seq2seq_tf.training import loop
config = tiny_config({toy!r}, num_steps={steps}, log_every=2, checkpoint_every=3)
config.train.strategy = "multi_worker"
result = loop.train_and_evaluate(config, {workdir!r})
print("RESULT" + json.dumps({{"step": result["step"], "loss": result["loss"]}}))
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_two_workers(tmp_path, toy_data, workdir: str, steps: int, tag: str) -> list[dict]:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    script = tmp_path / f"worker_{tag}.py"
    script.write_text(_WORKER_RUN.format(tests=TESTS, toy=toy_data, steps=steps, workdir=workdir))
    processes = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                env={**ENV, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=300)  # bounded: it stops by itself
            assert process.returncode == 0, err[-3000:]
            results.append({**json.loads(out.split("RESULT")[1]), "log": err})
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return results


def _checkpoint_tensors(path: str) -> dict:
    """Weights (`optimizer/_trainable_variables/k`, the model's own variables) and Adam's
    variables (`optimizer/_variables/i`: m and v of weight k at 2k + 1 and 2k + 2)."""
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith(("optimizer/_trainable_variables/", "optimizer/_variables/"))
    }


@pytest.mark.slow
def test_two_worker_processes_train_only_the_chief_writes_and_a_restart_resumes(toy_data, tmp_path):
    workdir = str(tmp_path / "run")
    first = _run_two_workers(tmp_path, toy_data, workdir, steps=1, tag="first")
    assert [r["step"] for r in first] == [1, 1]
    # Against one device on the same global batch: the same loss, and after the step
    # the same weights and Adam moments, except the embeddings' v (Keras's sparse
    # Adam on one device squares gradient rows; see training/loop.py) and so their
    # weights; their m is compared.
    alone = loop.train_and_evaluate(
        tiny_config(toy_data, num_steps=1, log_every=2, checkpoint_every=3),
        str(tmp_path / "one_device"),
    )
    assert first[0]["loss"] == pytest.approx(alone["loss"], rel=1e-5)
    assert first[1]["loss"] == pytest.approx(alone["loss"], rel=1e-5)
    two = _checkpoint_tensors(os.path.join(workdir, "checkpoints", "ckpt-1"))
    one = _checkpoint_tensors(str(tmp_path / "one_device" / "checkpoints" / "ckpt-1"))
    assert two.keys() == one.keys() and len(one) > 30
    weights = {n: t for n, t in one.items() if "_trainable_variables" in n}
    embedding = [int(n.split("/")[2]) for n, t in weights.items() if t.shape == (300, 16)]
    assert embedding  # vocabulary x embedding_dim: the encoder's and the decoder's
    skipped = set()
    for k in embedding:  # the weight and its v
        skipped.add(f"optimizer/_trainable_variables/{k}/.ATTRIBUTES/VARIABLE_VALUE")
        skipped.add(f"optimizer/_variables/{2 * k + 2}/.ATTRIBUTES/VARIABLE_VALUE")
    for name, value in one.items():
        if name not in skipped:
            np.testing.assert_allclose(two[name], value, rtol=1e-4, atol=1e-7, err_msg=name)
    # The embeddings' own step on each side: Adam's formula (t = 1, lr 5e-3) from that
    # side's m and v and the seeded initial weights both start from.
    keras.utils.set_random_seed(tiny_config(toy_data).data.seed)
    initial = build_model(tiny_config(toy_data).model, 300).trainable_variables
    alpha = 5e-3 * np.sqrt(1 - 0.999) / (1 - 0.9)
    for k in embedding:
        for side in (one, two):
            weight = side[f"optimizer/_trainable_variables/{k}/.ATTRIBUTES/VARIABLE_VALUE"]
            m = side[f"optimizer/_variables/{2 * k + 1}/.ATTRIBUTES/VARIABLE_VALUE"]
            v = side[f"optimizer/_variables/{2 * k + 2}/.ATTRIBUTES/VARIABLE_VALUE"]
            expected = initial[k].numpy() - alpha * m / (np.sqrt(v) + 1e-7)
            np.testing.assert_allclose(weight, expected, rtol=1e-5, atol=1e-6)

    resumed = _run_two_workers(tmp_path, toy_data, workdir, steps=6, tag="resumed")
    assert [r["step"] for r in resumed] == [6, 6]
    for r in resumed:
        assert "resumed from" in r["log"] and "at step 1" in r["log"], r["log"][-2000:]
    checkpoints = tf.train.get_checkpoint_state(os.path.join(workdir, "checkpoints"))
    assert [p.rsplit("-", 1)[-1] for p in checkpoints.all_model_checkpoint_paths] == ["1", "3", "6"]
    # Only the chief (worker 0) leaves checkpoints and summaries; worker 1's share is deleted.
    assert not os.path.exists(os.path.join(workdir, "workers"))
    events = [f for _, _, files in os.walk(workdir) for f in files if "tfevents" in f]
    assert events and all("worker" not in e for e in events)
