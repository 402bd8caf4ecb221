"""Decoding speed of an exported SavedModel: sentences/s and target pieces/s.

    python benchmarks/decode_throughput.py --model_dir=runs/demo/export \
        --input=data/toy/test.src

Greedy (beam 1) and beam 4/8 at batch sizes 1, 16 and 64, through the
`translate_nbest` signature (the beam width is a request argument), after one
warm-up pass per setting so tracing is not timed. The ratio column compares
each row with greedy at the same batch size, measured in the same run.
Run it alone: two timing jobs on two cores spoil each other.

With `--vs_opennmt`, greedy and beam 5 at batch 32 are also run with the
OpenNMT-tf peer (../shared/bench/opennmt_tf), alternating ours and the peer's
twice, on a workdir the peer harness trained (`run.sh WORKDIR 2000`: its output
lengths are only realistic after a few thousand steps). The peer's time is its
own `--log_prediction_time` total, which leaves out model loading, as ours does;
its input is pre-tokenized pieces while ours is raw text tokenized in the graph.
Both sides' mean output length (words) and sacreBLEU are printed, so a ratio
between a degenerate and a real model shows as such.

With `--compare=name=DIR,name=DIR:shortlist,...`, exports of one model with
different search speed-ups (`export --target_vocab --shortlist_k --input_table`)
are timed back to back instead, in alternating rounds at `--compare_batch`, each
against the first: sent/s and the ratio (median of the rounds), sacreBLEU against
`--reference`, and how many translations are identical to the first's; with
`--vs_opennmt` as well, every compared export then alternates with the peer. A `:shortlist`
or `:full` suffix calls `translate_options` with the shortlist on or off; for an
export with a shortlist the mean union size per batch and the share of the
reference pieces inside their batch's union are printed too. For an `--xla_search`
export pass `--warm_every_batch`, so no compilation is timed.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import numpy as np  # noqa: E402
import sacrebleu  # noqa: E402
import sentencepiece as spm  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402, F401
from absl import app, flags  # noqa: E402

from seq2seq_tf.data.shortlist import LexicalShortlist, shortlist_coverage  # noqa: E402
from seq2seq_tf.data.text import read_lines as read_text  # noqa: E402
from seq2seq_tf.serving.client import resolve_saved_model  # noqa: E402

_MODEL = flags.DEFINE_string("model_dir", "runs/demo/export", "SavedModel or base path.")
_INPUT = flags.DEFINE_string("input", "data/toy/test.src", "Source sentences.")
_LIMIT = flags.DEFINE_integer("limit", 1000, "Sentences to translate per setting.")
_BEAMS = flags.DEFINE_list("beams", ["1", "4", "8"], "Beam widths.")
_BATCHES = flags.DEFINE_list("batches", ["1", "16", "64"], "Batch sizes.")
_BATCH1_LIMIT = flags.DEFINE_integer("batch1_limit", 200, "Sentences at batch size 1 (slow).")
_VS_OPENNMT = flags.DEFINE_bool(
    "vs_opennmt", False, "Also decode with the trained OpenNMT-tf peer and print ratios."
)
_VS_ROUNDS = flags.DEFINE_integer(
    "vs_rounds", 2, "Alternating rounds of --vs_opennmt per beam width (after one untimed)."
)
_PEER_DIR = flags.DEFINE_string(
    "opennmt_workdir", "", "Workdir the peer harness trained: run.sh WORKDIR STEPS."
)
_REFERENCE = flags.DEFINE_string(
    "reference", "", "Reference translations of --input, for the --vs_opennmt BLEU."
)

_COMPARE = flags.DEFINE_list(
    "compare", [], "name=SavedModel[:shortlist|:full],...: speed-ups timed back to back."
)
_COMPARE_BATCH = flags.DEFINE_integer("compare_batch", 32, "Batch size of --compare.")
_COMPARE_BEAMS = flags.DEFINE_list("compare_beams", ["1", "5"], "Beam widths of --compare.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds of --compare.")
_WARM_EVERY_BATCH = flags.DEFINE_bool(
    "warm_every_batch",
    False,
    "Run every batch once untimed, not only the first (an --xla_search export "
    "compiles once per padded shape, the first time it meets it).",
)

_WARMED = set()  # (signature, batch size, beam) already run over every batch
PEER_HARNESS = Path(__file__).resolve().parents[2] / "shared/bench/opennmt_tf"


def length_batches(lines: list[str], batch_size: int) -> list[list[int]]:
    """Line indices in batches of similar length (how every setting is fed)."""
    order = sorted(range(len(lines)), key=lambda i: len(lines[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def translate(
    fn, lines: list[str], batch_size: int, beam: int, extra: dict | None = None
) -> tuple[list[str], float]:
    """(translations in input order, seconds) for one setting, batched by length."""
    batches = length_batches(lines, batch_size)
    args = {"n": tf.constant(1), "beam_width": tf.constant(beam), **(extra or {})}
    warm = batches if _WARM_EVERY_BATCH.value else batches[:1]
    if (id(fn), batch_size, beam) in _WARMED:
        warm = batches[:1]
    _WARMED.add((id(fn), batch_size, beam))
    for batch in warm:  # trace (and compile) outside the timing
        fn(inputs=tf.constant([lines[i] for i in batch]), **args)
    hypotheses = [""] * len(lines)
    start = time.perf_counter()
    for batch in batches:
        out = fn(inputs=tf.constant([lines[i] for i in batch]), **args)["translations"].numpy()
        for i, text in zip(batch, out[:, 0]):
            hypotheses[i] = text.decode("utf-8")
    return hypotheses, time.perf_counter() - start


def measure(fn, lines: list[str], batch_size: int, beam: int) -> tuple[float, float]:
    """(sentences/s, target words/s) for one setting."""
    hypotheses, elapsed = translate(fn, lines, batch_size, beam)
    return len(lines) / elapsed, sum(len(h.split()) for h in hypotheses) / elapsed


def opennmt_translate(workdir: Path, beam: int, batch_size: int) -> tuple[list[str], float]:
    """The peer's test_2016_flickr translations (detokenized) and its own prediction time."""
    config = workdir / f"beam{beam}.yml"
    config.write_text(f"params:\n  beam_width: {beam}\ninfer:\n  batch_size: {batch_size}\n")
    predictions = workdir / f"test.beam{beam}.sp.de"
    command = [
        str(workdir / "venv/bin/onmt-main"), "--model", str(PEER_HARNESS / "model.py"),
        "--config", str(workdir / "config.yml"), str(config), "--model_dir", str(workdir / "run"),
        "infer", "--features_file", str(workdir / "data/test.sp.en"),
        "--predictions_file", str(predictions), "--log_prediction_time",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = re.search(r"Total prediction time \(s\): ([\d.]+)", done.stdout + done.stderr)
    if done.returncode or not seconds:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    pieces = spm.SentencePieceProcessor(model_file=str(workdir / "data/spm8k.model"))
    lines = predictions.read_text(encoding="utf-8").splitlines()
    return [pieces.decode(line.split()) for line in lines], float(seconds.group(1))


def _versus_opennmt(models: list[tuple[str, object, dict]], lines: list[str]) -> None:
    """Each of ours then the peer's, `--vs_rounds` times, greedy and beam 5 at batch 32.

    models: (name, signature, extra arguments); several exports (`--compare`) are
    timed in the same alternation, so each one's ratio is against the same peer runs.
    The peer's speed varies from run to run by up to 2x on these machines (beam 5: 24
    and 48 sent/s in runs minutes apart), so besides the ratio of the means it prints
    the ratio of medians and the one against the peer's fastest run (the cautious one).
    """
    workdir = Path(_PEER_DIR.value)
    if not (workdir / "run/checkpoint").exists():
        raise app.UsageError(f"--opennmt_workdir {workdir} has no trained peer: run.sh WORKDIR N")
    refs = read_text(_REFERENCE.value)[: len(lines)] if _REFERENCE.value else None
    print("\nvs OpenNMT-tf, batch 32 (sent/s; mean words per output; sacreBLEU)")
    for beam in (1, 5):
        ours = {name: [] for name, *_ in models}
        outputs = {}
        peer = []
        # Untimed first: the peer's first run after training ran at half speed (its
        # greedy 48.5 sent/s, then 96.9, 112.2 and 96.9 in the 2026-12-02 runs).
        opennmt_translate(workdir, beam, 32)
        for round_ in range(1, _VS_ROUNDS.value + 1):
            for name, fn, extra in models:
                outputs[name], seconds = translate(fn, lines, 32, beam, extra)
                ours[name].append(len(lines) / seconds)
            peer_hyps, peer_seconds = opennmt_translate(workdir, beam, 32)
            peer.append(len(peer_hyps) / peer_seconds)  # it always translates all of test
            outputs["OpenNMT-tf"] = peer_hyps[: len(lines)]  # scored on ours' --limit
            mine = " | ".join(f"{name} {ours[name][-1]:6.1f}" for name, *_ in models)
            print(f"beam {beam} round {round_}: {mine} | OpenNMT-tf {peer[-1]:6.1f} sent/s")
        for name, out in outputs.items():
            words = np.mean([len(h.split()) for h in out])
            bleu = f"  sacreBLEU {sacrebleu.corpus_bleu(out, [refs]).score:.2f}" if refs else ""
            print(f"  {name}: {words:.2f} words per output{bleu}")
        for name, speeds in ours.items():
            print(
                f"beam {beam} {name} ratio vs OpenNMT-tf (sent/s): "
                f"{np.mean(speeds) / np.mean(peer):.2f} (of medians "
                f"{np.median(speeds) / np.median(peer):.2f}; against the peer's fastest run "
                f"{np.median(speeds) / np.max(peer):.2f})"
            )


def _compared_models() -> list[tuple[str, object, dict, object]]:
    """(name, signature, extra arguments, the loaded module where its shortlist is on)."""
    models = []
    for entry in _COMPARE.value:
        name, _, where = entry.partition("=")
        where, _, switch = where.partition(":")
        if not name or not where or switch not in ("", "shortlist", "full"):
            raise app.UsageError(f"--compare entry {entry!r}: name=DIR[:shortlist|:full]")
        loaded = tf.saved_model.load(resolve_saved_model(where))
        if switch:
            fn, extra = (
                loaded.signatures["translate_options"],
                {"shortlist": tf.constant(switch == "shortlist")},
            )
        else:
            fn, extra = loaded.signatures["translate_nbest"], {}
        models.append((name, fn, extra, loaded if switch == "shortlist" else None))
    return models


def _union_report(loaded, lines: list[str], references: list[str], batch_size: int) -> str:
    """Mean shortlist union per batch and the reference pieces it covers ("" when off)."""
    columns = getattr(loaded, "columns", None) if loaded is not None else None
    if columns is None or getattr(columns, "shortlist_candidates", None) is None:
        return ""
    table = LexicalShortlist(
        columns.shortlist_candidates.numpy(), columns.shortlist_frequent.numpy()
    )
    pieces = spm.SentencePieceProcessor(model_file=loaded.spm_model.asset_path.numpy().decode())
    order = [i for batch in length_batches(lines, batch_size) for i in batch]
    sources = [pieces.encode(lines[i]) for i in order]
    refs = [pieces.encode(references[i]) for i in order] if references else sources
    size, covered = shortlist_coverage(table, sources, refs, batch_size)
    share = f", {covered:.1%} of the reference pieces inside it" if references else ""
    return f"; shortlist union {size:.0f} pieces per batch{share}"


def _compare(models: list[tuple[str, object, dict, object]], lines: list[str]) -> None:
    """Exports of one model with different speed-ups, alternating, each vs the first."""
    refs = read_text(_REFERENCE.value)[: len(lines)] if _REFERENCE.value else []
    batch = _COMPARE_BATCH.value
    print(f"\n{len(models)} exports, batch {batch}, median of {_ROUNDS.value} alternating rounds")
    for beam in (int(b) for b in _COMPARE_BEAMS.value):
        speeds = {name: [] for name, *_ in models}
        outputs = {}
        for _ in range(_ROUNDS.value):
            for name, fn, extra, _ in models:
                outputs[name], seconds = translate(fn, lines, batch, beam, extra)
                speeds[name].append(len(lines) / seconds)
        first = models[0][0]
        base = float(np.median(speeds[first]))
        print(f"beam {beam}:")
        for name, _, _, loaded in models:
            speed = float(np.median(speeds[name]))
            same = sum(a == b for a, b in zip(outputs[name], outputs[first]))
            bleu = f"  sacreBLEU {sacrebleu.corpus_bleu(outputs[name], [refs]).score:.2f}"
            print(
                f"  {name:>16}: {speed:7.1f} sent/s  x{speed / base:.2f}  "
                f"{same}/{len(lines)} identical to {first}" + (bleu if refs else "")
                + _union_report(loaded, lines, refs, batch)
            )  # fmt: skip


def main(argv):
    del argv
    if _COMPARE.value:
        lines = read_text(_INPUT.value)[: _LIMIT.value]
        print(f"{len(lines)} sentences from {_INPUT.value}")
        models = _compared_models()
        _compare(models, lines)
        if _VS_OPENNMT.value:
            _versus_opennmt([model[:3] for model in models], lines)
        return
    path = resolve_saved_model(_MODEL.value)
    fn = tf.saved_model.load(path).signatures["translate_nbest"]
    lines = read_text(_INPUT.value)[: _LIMIT.value]
    print(f"model {path}; {len(lines)} sentences from {_INPUT.value}")
    print(f"{'batch':>5} {'beam':>4} {'sent/s':>9} {'words/s':>9} {'vs greedy':>9}")
    for batch in (int(b) for b in _BATCHES.value):
        sample = lines[: _BATCH1_LIMIT.value] if batch == 1 else lines
        greedy = None
        for beam in (int(b) for b in _BEAMS.value):
            sents, words = measure(fn, sample, batch, beam)
            greedy = greedy or sents
            print(f"{batch:>5} {beam:>4} {sents:>9.1f} {words:>9.1f} {sents / greedy:>9.2f}")
    if _VS_OPENNMT.value:
        _versus_opennmt([("seq2seq_tf", fn, {})], lines)


if __name__ == "__main__":
    cli.run(main)
