"""Shared fixtures: a small toy corpus, its SentencePiece model, a tiny trained run."""

from __future__ import annotations

import collections
import fcntl
import json
import os
import pathlib
import statistics

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


# Shards are balanced on each module's measured seconds (setup, call and teardown on 2
# cores, fixtures included) in tests/module_seconds.json, which
# `make test PYTEST_ARGS=--record-seconds=tests/module_seconds.json` measures again; a
# module not in the file counts its tests at the file's median seconds per test (a
# slow-marked test as SLOW_TEST_WEIGHT of them).
MODULE_SECONDS = pathlib.Path(__file__).with_name("module_seconds.json")
SLOW_TEST_WEIGHT = 20
# Modules using one of these session fixtures (trained once per process, tens of
# seconds) share a shard, so it is built once.
SHARED_FIXTURES = ("caption_workdir", "lm_workdir")


def pytest_addoption(parser):
    parser.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="run the K-th (0-based) of N shards: whole test modules, balanced by measured "
        "seconds (tests/module_seconds.json); `make test` runs one per core",
    )
    parser.addoption(
        "--record-seconds",
        default=None,
        metavar="FILE",
        help="add each module's seconds in this run to FILE (JSON: module -> seconds)",
    )


def _module(nodeid: str) -> str:
    """The test file as pytest names it (relative to the root, as in the seconds file)."""
    return nodeid.split("::")[0]


def _module_weights(items) -> dict[str, float]:
    """Seconds per module: measured where known, else estimated from its test count."""
    measured = json.loads(MODULE_SECONDS.read_text()) if MODULE_SECONDS.exists() else {}
    counts = collections.Counter()
    for item in items:
        counts[_module(item.nodeid)] += SLOW_TEST_WEIGHT if item.get_closest_marker("slow") else 1
    per_test = statistics.median(
        [measured[m] / counts[m] for m in counts if m in measured] or [1.0]
    )
    return {m: measured.get(m, n * per_test) for m, n in counts.items()}


def pytest_collection_modifyitems(config, items):
    """`--shard=K/N`: keep the modules that a greedy balance of measured seconds gives
    shard K.

    Whole modules (with those sharing an expensive fixture kept together), so fixtures
    are built once per shard; the split depends only on what was collected and the
    committed seconds, so a failing shard reruns with the same command.
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
    group_of = {}
    for item in items:
        shared = [f for f in SHARED_FIXTURES if f in item.fixturenames]
        module = _module(item.nodeid)
        group_of.setdefault(module, module)
        if shared and group_of[module] == module:
            group_of[module] = shared[0]
    groups = collections.Counter()
    for module, seconds in _module_weights(items).items():
        groups[group_of[module]] += seconds
    loads, owner = [0.0] * count, {}
    for group, seconds in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])):
        shard = loads.index(min(loads))
        owner[group] = shard
        loads[shard] += seconds
    mine = {m for m, g in group_of.items() if owner[g] == index}
    kept = [item for item in items if _module(item.nodeid) in mine]
    config.hook.pytest_deselected(items=[i for i in items if _module(i.nodeid) not in mine])
    items[:] = kept


_SECONDS: collections.Counter = collections.Counter()


def pytest_runtest_logreport(report):
    _SECONDS[_module(report.nodeid)] += report.duration


def pytest_sessionfinish(session):
    """`--record-seconds=FILE`: merge this run's module seconds into FILE (shards
    running at once each add theirs, under a lock)."""
    path = session.config.getoption("--record-seconds")
    if not path or not _SECONDS:
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        merged = json.loads(text) if text.strip() else {}
        merged.update({m: round(s, 1) for m, s in _SECONDS.items()})
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")


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
