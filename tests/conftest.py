"""Shared fixtures: a small toy corpus, its SentencePiece model, a tiny trained run."""

from __future__ import annotations

import collections
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import settings  # noqa: E402
from support import MULTI30K, ROOT, load_script, tiny_config  # noqa: E402, F401

# Grappler's graph rewrites take longer than running the tests' tiny graphs (measured
# 17% of the in-process tests' time); they change how a graph runs, not what it
# computes. Commands the tests start in subprocesses, and every real run, keep them.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

# The same examples on every run (derived from each test's name): a CI failure reproduces.
settings.register_profile("derandomized", derandomize=True, database=None)
settings.load_profile("derandomized")


# A test marked slow (it trains and exports, often in subprocesses) costs about as much
# as this many others: the weight that balances the shards' times measured on 2 cores.
SLOW_TEST_WEIGHT = 20


def pytest_addoption(parser):
    parser.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="run the K-th (0-based) of N shards: whole test modules, balanced by test count "
        "(a slow test counts as SLOW_TEST_WEIGHT); `make test` runs one per core",
    )


def pytest_collection_modifyitems(config, items):
    """`--shard=K/N`: keep the modules that a greedy balance of (weighted) test counts
    gives shard K.

    Whole modules, so module fixtures are built once; the split depends only on what
    was collected, so a failing shard reruns with the same command.
    """
    spec = config.getoption("--shard")
    if not spec:
        return
    try:
        index, count = (int(part) for part in spec.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"--shard={spec}: expected K/N with 0 <= K < N") from None
    sizes = collections.Counter()
    for item in items:
        sizes[str(item.path)] += SLOW_TEST_WEIGHT if item.get_closest_marker("slow") else 1
    loads, owner = [0] * count, {}
    for path, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        shard = loads.index(min(loads))
        owner[path] = shard
        loads[shard] += size
    kept = [item for item in items if owner[str(item.path)] == index]
    config.hook.pytest_deselected(items=[item for item in items if owner[str(item.path)] != index])
    items[:] = kept


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> dict:
    """3,000 toy training pairs, 100 test pairs, and a joint BPE model."""
    from seq2seq_tf.data import vocab

    corpus = load_script("make_toy_corpus")
    out = tmp_path_factory.mktemp("toy")
    splits = corpus.make_splits(3000, 100, 100, seed=7)
    paths = {}
    for split, pairs in splits.items():
        for side, index in (("src", 0), ("tgt", 1)):
            path = out / f"{split}.{side}"
            path.write_text("".join(p[index] + "\n" for p in pairs), encoding="utf-8")
            paths[f"{split}_{side}"] = str(path)
    paths["spm_model"] = vocab.train_sentencepiece(
        [paths["train_src"], paths["train_tgt"]], str(out / "spm"), 300, model_type="bpe"
    )
    return paths


@pytest.fixture(scope="session")
def trained_workdir(toy_data, tmp_path_factory) -> str:
    """A tiny run trained for a few dozen steps (shared by export/translate tests)."""
    from seq2seq_tf.training.loop import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("run"))
    train_and_evaluate(tiny_config(toy_data, num_steps=60), workdir)
    return workdir


@pytest.fixture
def gradient_sinks(monkeypatch) -> list:
    """Every `loop_ops.gradient_sink` call (encoder and decoder) lands in this list."""
    from seq2seq_tf.layers import loop_ops

    calls, original = [], loop_ops.gradient_sink

    def spy(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(loop_ops, "gradient_sink", spy)
    return calls


@pytest.fixture(scope="session")
def lm_text(tmp_path_factory) -> str:
    """A generated text of about 80,000 characters (see support.make_lm_text)."""
    from support import make_lm_text

    return make_lm_text(tmp_path_factory.mktemp("lm_text") / "train.txt")


@pytest.fixture(scope="session")
def lm_workdir(lm_text, tmp_path_factory) -> str:
    """A tiny character language model trained for 150 steps with dev evaluations."""
    from support import tiny_lm_config

    from seq2seq_tf.training.loop import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("lm_run"))
    config = tiny_lm_config(lm_text, num_steps=150, eval_every=75, checkpoint_every=75)
    train_and_evaluate(config, workdir)
    return workdir


@pytest.fixture(scope="session")
def lm_export(lm_workdir, tmp_path_factory) -> str:
    """The SavedModel of `lm_workdir` (its best checkpoint)."""
    from seq2seq_tf.serving import export

    return export.export(lm_workdir, str(tmp_path_factory.mktemp("lm_export")))


@pytest.fixture(scope="session")
def exported(trained_workdir, tmp_path_factory) -> tuple[str, str]:
    """The tiny run exported once: (SavedModel path, its base path)."""
    from seq2seq_tf.serving import export

    base = tmp_path_factory.mktemp("export")
    return export.export(trained_workdir, str(base)), str(base)


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> str:
    """Tiny generated captioning splits (32x32 images): train 60, valid/test/test_unseen 8."""
    shapes = load_script("make_shapes_captions")
    out = tmp_path_factory.mktemp("shapes")
    counts = {"train": 60, "valid": 8, "test": 8, "test_unseen": 8}
    shapes.make_all(str(out), counts, seed=3, image_size=32)
    return str(out)


@pytest.fixture(scope="session")
def caption_workdir(shapes_data, tmp_path_factory) -> str:
    """A tiny attention captioner trained for 30 steps with two dev evaluations."""
    from support import tiny_caption_config

    from seq2seq_tf.training.loop import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("caption_run"))
    train_and_evaluate(tiny_caption_config(shapes_data), workdir)
    return workdir


@pytest.fixture(scope="session")
def caption_export(caption_workdir, tmp_path_factory) -> str:
    """The SavedModel of `caption_workdir` (its best checkpoint by dev CIDEr-D)."""
    from seq2seq_tf.serving import export

    return export.export(caption_workdir, str(tmp_path_factory.mktemp("caption_export")))
