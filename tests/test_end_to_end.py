"""The command-line path a user runs: corpus -> SentencePiece -> train -> export -> translate."""

import json
import os
import subprocess
import sys

import pytest
from support import ROOT

pytestmark = pytest.mark.slow

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = [
    "--config.model.embedding_dim=16",
    "--config.model.encoder_units=16",
    "--config.model.decoder_units=32",
    "--config.model.attention_units=32",
    "--config.train.num_steps=20",
    "--config.train.log_every=5",
    "--config.train.checkpoint_every=10",
]


def _run(*args, check=True):
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return result


def test_commands_train_export_translate(tmp_path):
    data = tmp_path / "data"
    _run(
        "data_scripts/make_toy_corpus.py",
        f"--out_dir={data}",
        "--num_train=600",
        "--num_dev=50",
        "--num_test=50",
    )
    _run(
        "data_scripts/train_sentencepiece.py",
        f"--inputs={data}/train.src,{data}/train.tgt",
        f"--model_prefix={data}/spm",
        "--vocab_size=300",
        "--model_type=bpe",
    )
    paths = [
        f"--config.data.train_src={data}/train.src",
        f"--config.data.train_tgt={data}/train.tgt",
        f"--config.data.spm_model={data}/spm.model",
        f"--config.data.dev_src={data}/dev.src",
        f"--config.data.dev_tgt={data}/dev.tgt",
        "--config.train.eval_every=10",
    ]
    work = tmp_path / "work"
    train = ["-m", "seq2seq_tf.train", "--config=configs/quickstart.py", f"--workdir={work}"]
    trained = _run(*train, *paths, *TINY)  # resuming is tests/training/test_loop.py's
    assert "step 20/20" in trained.stderr and "tgt tok/s" in trained.stderr

    export = tmp_path / "export"
    out = _run("-m", "seq2seq_tf.export", f"--workdir={work}", f"--export_dir={export}")
    best_step = json.loads((work / "best.json").read_text())["step"]  # the best dev checkpoint
    assert best_step in (10, 20) and f"{export}/{best_step}" in out.stdout
    hyp = tmp_path / "test.hyp"
    scored = _run(
        "-m",
        "seq2seq_tf.translate",
        f"--model_dir={export}",
        f"--input={data}/test.src",
        f"--output={hyp}",
        f"--reference={data}/test.tgt",
    )
    assert "exact match:" in scored.stdout and "BLEU:" in scored.stdout
    assert len(hyp.read_text(encoding="utf-8").splitlines()) == 50
