"""Show, Attend and Tell against no attention on the generated shapes data, in a time budget.

    python benchmarks/captioning_shapes.py --budget_minutes=30 [--workdir=runs/captioning]

Generates the data (data_scripts/make_shapes_captions.py) under <workdir>/data,
trains configs/shapes_captioning.py with attention and with `caption.attend=False`
for the same budget each (<workdir>/runs/attention, <workdir>/runs/no_attention),
exports the attention model's best checkpoint (by dev CIDEr-D) to
<workdir>/export, and prints, for both, on the test split (colour-shape pairs seen
in training) and test_unseen (every image has a pair never seen): BLEU-4, CIDEr-D,
attribute precision/recall/F1, and the attention pointing score beside its chance
rate. The attention model is scored through its SavedModel, the other in process
(the same graph). The results also go to <workdir>/results.json. `--models=attention`
trains and scores one model only (to try a change of the config's attention model).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import sys

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_BUDGET = flags.DEFINE_float("budget_minutes", 30.0, "Training time budget per model.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/captioning_shapes", "Data, runs and export.")
_TRAIN = flags.DEFINE_integer("num_train", 8000, "Generated training images.")
_TEST = flags.DEFINE_integer("num_test", 500, "Generated images per test split.")
_BEAM = flags.DEFINE_integer("beam_width", 3, "Beam of the test captions.")
_SEED = flags.DEFINE_integer("seed", 1234, "Seed of the generated data.")
_MODELS = flags.DEFINE_multi_enum(
    "models", ["attention", "no_attention"], ["attention", "no_attention"],
    "The models to train and score (both by default; one to try a config change).",
)  # fmt: skip


def _load(path: pathlib.Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def make_data(workdir: str) -> str:
    """The four splits under <workdir>/data (kept when already there)."""
    out = os.path.join(workdir, "data")
    if not os.path.exists(os.path.join(out, "test_unseen", "objects.json")):
        shapes = _load(ROOT / "data_scripts" / "make_shapes_captions.py", "make_shapes_captions")
        counts = {"train": _TRAIN.value, "valid": 300, "test": _TEST.value}
        counts["test_unseen"] = _TEST.value
        shapes.make_all(out, counts, _SEED.value)
    return out


def make_config(data: str, attend: bool, budget_s: float):
    config = _load(ROOT / "configs" / "shapes_captioning.py", "shapes_captioning").get_config()
    c = config.caption
    c.train_captions = os.path.join(data, "train", "captions.txt")
    c.valid_captions = os.path.join(data, "valid", "captions.txt")
    c.test_captions = os.path.join(data, "test", "captions.txt")
    c.attend = attend
    config.train.max_time_s = budget_s
    return config


def score_split(call, data: str, split: str) -> dict:
    """BLEU-4, CIDEr-D, attributes and pointing of one generated split."""
    from seq2seq_tf.data import captions as caption_data
    from seq2seq_tf.evaluation import captioning as scores
    from seq2seq_tf.tasks.captioning import caption_images

    split_dir = os.path.join(data, split)
    refs = caption_data.read_flickr(os.path.join(split_dir, "captions.txt"))
    objects, size = scores.read_objects(split_dir, refs.images)
    out = caption_images(call, refs.images)
    result = scores.caption_scores(out["captions"], refs.captions)
    result["attributes"] = scores.attribute_scores(out["captions"], objects)
    result["pointing"] = scores.pointing_score(out["tokens"], out["attention"], objects, size)
    result["example"] = out["captions"][0]
    return result


def _line(name: str, split: str, r: dict, attends: bool) -> str:
    a, p = r["attributes"], r["pointing"]
    point = f"{p['pointing']:.3f} (chance {p['chance']:.3f}, {p['words']} words)"
    return (
        f"{name:13s} {split:11s} BLEU-4 {r['bleu4']:.3f}  CIDEr-D {r['cider']:.3f}  "
        f"attr P/R/F1 {a['precision']:.3f}/{a['recall']:.3f}/{a['f1']:.3f}  "
        f"pointing {point if attends else 'n/a (no attention)'}"
    )


def main(argv):
    from seq2seq_tf.serving import export
    from seq2seq_tf.training.loop import train_and_evaluate

    workdir = _WORKDIR.value
    data = make_data(workdir)
    budget_s = _BUDGET.value * 60.0
    results, lines = {}, []
    for name, attend in (("attention", True), ("no_attention", False)):
        if name not in _MODELS.value:
            continue
        run_dir = os.path.join(workdir, "runs", name)
        logging.info("training %s for %.1f minutes in %s", name, _BUDGET.value, run_dir)
        metrics = train_and_evaluate(make_config(data, attend, budget_s), run_dir)
        if attend:
            export_dir = os.path.join(workdir, "export")
            shutil.rmtree(export_dir, ignore_errors=True)
            path = export.export(run_dir, export_dir)
            signature = tf.saved_model.load(path).signatures["caption_beam"]
        else:
            module, _ = export.serving_module(run_dir)
            signature = module.caption_beam

        def call(images, signature=signature):
            return signature(images=images, beam_width=tf.constant(_BEAM.value))

        results[name] = {"steps": metrics["step"], "best_dev_cider": metrics.get("best_dev_cider")}
        for split in ("test", "test_unseen"):
            results[name][split] = score_split(call, data, split)
            lines.append(_line(name, split, results[name][split], attend))
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\ncaptioning_shapes: {_BUDGET.value:g} minutes per model, beam {_BEAM.value}")
    for name in results:
        print(f"{name}: {results[name]['steps']} steps, best dev CIDEr-D "
              f"{results[name]['best_dev_cider']:.3f}")  # fmt: skip
    for line in lines:
        print(line)
    for name in results:
        print(f"{name} example (test): {results[name]['test']['example']}")


if __name__ == "__main__":
    cli.run(main)
