"""Multi30k En->De quality in a wall-clock budget: prepare, train, beam-5 test score.

    python benchmarks/quality_multi30k.py --budget_minutes=60

Prepares ../shared/data/multi30k (NFKC, whitespace, empty pairs dropped) into
--data_dir, trains the joint 8k SentencePiece model, trains configs/multi30k_en_de.py
until the budget runs out (dev BLEU every eval_every steps, best checkpoint kept; the
learning rate anneals to zero over the budget's last --time_decay_fraction),
then decodes test_2016_flickr from the best checkpoint with beam 5 and prints
sacreBLEU, chrF and BLEU(lc,tok) (the Multi30k literature's number), with the steps,
epochs and training time. Everything it writes stays under --data_dir and --workdir.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import flags, logging  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

_RAW = flags.DEFINE_string("raw_dir", str(ROOT.parent / "shared/data/multi30k"), "Raw data.")
_DATA = flags.DEFINE_string("data_dir", "data/multi30k", "Prepared corpus and SentencePiece model.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/quality_multi30k", "Training workdir (fresh).")
_BUDGET = flags.DEFINE_float("budget_minutes", 60.0, "Training wall-clock budget.")
_BEAM = flags.DEFINE_integer("beam_width", 5, "Beam width for the test set.")
_TEST = flags.DEFINE_string("test_split", "test_2016_flickr", "Test split name.")
_KEEP = flags.DEFINE_bool("resume", False, "Resume an existing workdir, not start fresh.")
_TARGET_VOCAB_ONLY = flags.DEFINE_bool(
    "target_vocab_only", False, "model.target_vocab_only: score only the training targets' pieces."
)
_DECAY = flags.DEFINE_float(
    "time_decay_fraction",
    0.4,
    "Anneal the learning rate linearly to zero over this last fraction of the budget.",
)


def _script(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def _load_config():
    spec = importlib.util.spec_from_file_location("m30k", ROOT / "configs" / "multi30k_en_de.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def main(argv):
    import shutil

    from seq2seq_tf.data.text import read_lines
    from seq2seq_tf.evaluation import metrics
    from seq2seq_tf.serving.export import serving_module
    from seq2seq_tf.serving.translator import SearchDefaults
    from seq2seq_tf.training import loop as train

    data_dir = os.path.abspath(_DATA.value)
    start = time.perf_counter()
    _script(
        "data_scripts/prepare_corpus.py",
        f"--raw_dir={_RAW.value}",
        f"--splits=train,val,{_TEST.value}",
        "--src_lang=en",
        "--tgt_lang=de",
        f"--out_dir={data_dir}",
    )
    spm = os.path.join(data_dir, "spm.model")
    if not os.path.exists(spm):
        _script(
            "data_scripts/train_sentencepiece.py",
            f"--inputs={data_dir}/train.en,{data_dir}/train.de",
            f"--model_prefix={data_dir}/spm",
            "--vocab_size=8000",
        )
    prep_seconds = time.perf_counter() - start

    config = _load_config()
    d = config.data
    d.train_src, d.train_tgt = f"{data_dir}/train.en", f"{data_dir}/train.de"
    d.dev_src, d.dev_tgt = f"{data_dir}/val.en", f"{data_dir}/val.de"
    d.spm_model = spm
    config.train.max_time_s = 60.0 * _BUDGET.value
    config.train.time_decay_fraction = _DECAY.value
    config.model.target_vocab_only = _TARGET_VOCAB_ONLY.value
    workdir = os.path.abspath(_WORKDIR.value)
    if os.path.exists(workdir) and not _KEEP.value:
        shutil.rmtree(workdir)
    logging.info("training for %.0f minutes in %s", _BUDGET.value, workdir)
    train_start = time.perf_counter()
    result = train.train_and_evaluate(config, workdir)
    train_seconds = time.perf_counter() - train_start
    if result["interrupted"]:  # a signal asked to stop: no test decode
        print(f"interrupted at step {result['step']} ({result['stopped']}); rerun with --resume")
        sys.exit(143)

    defaults = SearchDefaults(beam_width=_BEAM.value)
    translator, checkpoint = serving_module(workdir, defaults=defaults)
    sources = read_lines(f"{data_dir}/{_TEST.value}.en")
    references = read_lines(f"{data_dir}/{_TEST.value}.de")
    decode_start = time.perf_counter()
    hypotheses, scores = metrics.evaluate(
        translator.signature_functions(), sources, references, "de"
    )
    decode_seconds = time.perf_counter() - decode_start
    output = os.path.join(workdir, f"{_TEST.value}.beam{_BEAM.value}.de")
    with open(output, "w", encoding="utf-8") as out:
        out.writelines(h + "\n" for h in hypotheses)
    summary = {
        **scores,
        "checkpoint": checkpoint,
        "steps": result["step"],
        "epochs": result["epoch"],
        "stopped": result["stopped"],
        "best_step": result.get("best_step"),
        "best_dev_bleu_greedy": result.get("best_dev_bleu"),
        "train_minutes": train_seconds / 60,
        "prepare_seconds": prep_seconds,
        "test_decode_seconds": decode_seconds,
        "beam_width": _BEAM.value,
    }
    with open(output + ".scores.json", "w", encoding="utf-8") as out:
        json.dump(summary, out, indent=2)
    _print_summary(scores, result, train_seconds, decode_seconds, output)


def _print_summary(scores: dict, result: dict, train_seconds, decode_seconds, output: str):
    """The lines the benchmarks README quotes: scores, training, decoding, the target."""
    from seq2seq_tf.evaluation import metrics

    print(f"== Multi30k En->De {_TEST.value}, beam {_BEAM.value}, best dev checkpoint")
    print(metrics.format_scores(scores))
    print(
        f"training: {result['step']} steps, {result['epoch']:.2f} epochs, "
        f"{train_seconds / 60:.1f} min (budget {_BUDGET.value:.0f} min, stopped by "
        f"{result['stopped']}); best dev BLEU (greedy) {result.get('best_dev_bleu', 0):.2f} "
        f"at step {result.get('best_step')}"
    )
    print(f"test decode: {decode_seconds:.1f}s; hypotheses {output}")
    print(f"BLEU(lc,tok) target 36 (60 min, 2 CPU cores): {scores['bleu_lc_tok']:.2f}")


if __name__ == "__main__":
    cli.run(main)
