"""The commands' shared behaviour: a quiet start, one-line user errors with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import ROOT

ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the real default

IMPORT_TF = (
    "import sys; from seq2seq_tf import cli; cli.quiet_tensorflow(sys.argv); "
    "import tensorflow as tf; print(tf.constant(7).numpy())"
)


def _start(*args, stdin=None):
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=ENV,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def test_tensorflow_start_up_lines_are_hidden_and_tf_logs_shows_them():
    quiet, loud = _start("-c", IMPORT_TF), _start("-c", IMPORT_TF, "--tf_logs")
    rc, out, err = _finish(quiet)
    assert rc == 0 and out.strip() == "7" and err == ""
    rc, out, err = _finish(loud)
    assert rc == 0 and out.strip() == "7"
    assert any(line[:5] in ("I0000", "W0000", "E0000") for line in err.splitlines()), err


def _config_file(tmp_path, body: str) -> str:
    path = tmp_path / "my_config.py"
    path.write_text(
        "from configs.quickstart import get_config as base\n\n\n"
        f"def get_config():\n    config = base()\n    {body}\n    return config\n"
    )
    return str(path)


def test_user_errors_are_one_line_naming_what_to_fix_with_exit_2(tmp_path):
    (tmp_path / "a.src").write_text("one\ntwo\n")
    (tmp_path / "a.tgt").write_text("eins\n")
    (tmp_path / "bad.src").write_bytes(b"fine\n\xff\xfe broken\n")
    train = ["-m", "seq2seq_tf.train"]
    quickstart = "--config=configs/quickstart.py"
    cases = {
        "unknown override": (
            [*train, quickstart, "--config.model.encoder_unitz=3"],
            "error: --config.model.encoder_unitz: bad config",
        ),
        "unknown field in a config file": (
            [*train, f"--config={_config_file(tmp_path, 'config.train.num_stepz = 4')}"],
            f"error: {tmp_path}/my_config.py:6: bad config",
        ),
        "missing config file": (
            [*train, f"--config={tmp_path}/nope.py"],
            f"error: --config: file not found: {tmp_path}/nope.py",
        ),
        "mismatched files": (
            [
                *train,
                quickstart,
                f"--config.data.train_src={tmp_path}/a.src",
                f"--config.data.train_tgt={tmp_path}/a.tgt",
            ],
            f"error: parallel files differ in length: {tmp_path}/a.src has 2 lines",
        ),
        "invalid UTF-8": (
            [
                *train,
                quickstart,
                f"--config.data.train_src={tmp_path}/bad.src",
                f"--config.data.train_tgt={tmp_path}/bad.src",
            ],
            f"error: {tmp_path}/bad.src:2: invalid UTF-8",
        ),
        "positional argument": ([*train, quickstart, "extra"], "error: unexpected arguments"),
        "NaN length penalty": (
            ["-m", "seq2seq_tf.export", "--workdir=x", "--export_dir=y", "--length_penalty=nan"],
            "error: --length_penalty must be a finite number >= 0, got nan",
        ),
        "XLA bucket not a number": (
            [
                *("-m", "seq2seq_tf.export", "--workdir=x", "--export_dir=y"),
                *("--xla_search", "--xla_source_buckets=16,abc"),
            ],
            "error: --xla_source_buckets must be integers, got 16,abc",
        ),
        "missing SavedModel": (
            ["-m", "seq2seq_tf.translate", f"--model_dir={tmp_path}/none"],
            f"error: no SavedModel at {tmp_path}/none",
        ),
    }
    started = {  # at once (each is mostly start-up), so each train gets its own workdir
        name: _start(*args, f"--workdir={tmp_path}/w{i}")
        if "seq2seq_tf.train" in args
        else _start(*args)
        for i, (name, (args, _)) in enumerate(cases.items())
    }
    for name, (_, expected) in cases.items():
        rc, out, err = _finish(started[name])
        lines = err.splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith(expected), (name, err[-2000:])


@pytest.mark.parametrize("value", ["1", "true"])
def test_tf_logs_flag_parses_as_a_boolean(value):
    from seq2seq_tf import cli

    assert cli._tf_logs_requested(["prog", f"--tf_logs={value}"])
    assert not cli._tf_logs_requested(["prog", "--tf_logs=false", "--other"])


def test_tensorflow_records_below_error_are_dropped_and_ours_kept():
    import logging

    from seq2seq_tf import cli

    def record(level, path):
        return logging.LogRecord("absl", level, path, 1, "message", None, None)

    saver = "/venv/lib/python3.11/site-packages/tensorflow/python/checkpoint/functional_saver.py"
    keep = cli._from_the_toolkit_or_an_error
    assert not keep(record(logging.INFO, saver)) and not keep(record(logging.WARNING, saver))
    assert keep(record(logging.ERROR, saver))
    assert keep(record(logging.INFO, "/src/seq2seq_tf/train.py"))
