"""Shared fixtures: a small toy corpus, its SentencePiece model, a tiny trained run."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"


def load_script(name: str):
    """Imports a data_scripts/ file as a module."""
    path = ROOT / "data_scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> dict:
    """3,000 toy training pairs, 100 test pairs, and a joint BPE model."""
    from seq2seq_tf import tokenizer

    corpus = load_script("make_toy_corpus")
    out = tmp_path_factory.mktemp("toy")
    splits = corpus.make_splits(3000, 100, 100, seed=7)
    paths = {}
    for split, pairs in splits.items():
        for side, index in (("src", 0), ("tgt", 1)):
            path = out / f"{split}.{side}"
            path.write_text("".join(p[index] + "\n" for p in pairs), encoding="utf-8")
            paths[f"{split}_{side}"] = str(path)
    paths["spm_model"] = tokenizer.train_sentencepiece(
        [paths["train_src"], paths["train_tgt"]], str(out / "spm"), 300, model_type="bpe"
    )
    return paths


def tiny_config(toy_data: dict, **train):
    """A seconds-sized model on the toy corpus."""
    from seq2seq_tf.config import default_config

    config = default_config()
    config.data.train_src = toy_data["train_src"]
    config.data.train_tgt = toy_data["train_tgt"]
    config.data.spm_model = toy_data["spm_model"]
    config.data.max_src_len = 48
    config.data.max_tgt_len = 48
    config.data.batch_size = 32
    config.data.bucket_boundaries = (10, 16, 24)
    config.data.shuffle_buffer = 1000
    config.model.embedding_dim = 16
    config.model.encoder_layers = 1
    config.model.encoder_units = 16
    config.model.decoder_layers = 1
    config.model.decoder_units = 32
    config.model.attention_units = 32
    config.model.dropout = 0.0
    config.train.num_steps = 40
    config.train.learning_rate = 5e-3
    config.train.warmup_steps = 0
    config.train.log_every = 10
    config.train.checkpoint_every = 20
    for key, value in train.items():
        config.train[key] = value
    return config


@pytest.fixture(scope="session")
def trained_workdir(toy_data, tmp_path_factory) -> str:
    """A tiny run trained for a few dozen steps (shared by export/translate tests)."""
    from seq2seq_tf.train import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("run"))
    train_and_evaluate(tiny_config(toy_data, num_steps=60), workdir)
    return workdir


@pytest.fixture
def gradient_sinks(monkeypatch) -> list:
    """Every `cells.gradient_sink` call (encoder and decoder) lands in this list."""
    from seq2seq_tf import cells, decoder

    calls, original = [], cells.gradient_sink

    def spy(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(cells, "gradient_sink", spy)
    monkeypatch.setattr(decoder, "gradient_sink", spy)
    return calls
