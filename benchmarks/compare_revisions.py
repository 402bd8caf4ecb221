"""Old code against new, alternating in one run: training tokens/s and decoding sentences/s.

    git worktree add /tmp/old <commit before the change>
    python benchmarks/compare_revisions.py --old=/tmp/old --data_dir=data/multi30k \
        --workdir=runs/m30k --rounds=3

Each round runs, for the old tree and then the new one (each as its own process,
with its own benchmarks/ script and `PYTHONPATH` on its own package):
- `train_throughput.py --noreference` on the same Multi30k batches (target tokens/s);
- with `--workdir`, an export of the same checkpoint by each tree's own export
  command (done once, before the rounds), then `decode_throughput.py` greedy and
  beam 5 at batch 32 over `--input` (sentences/s), and whether both trees'
  translations agree.
It prints every round and the ratio new / old of the means. Run it alone: two
timing jobs on two cores spoil each other.
"""

from __future__ import annotations

import os
import pathlib
import re
import statistics
import subprocess
import sys

from absl import flags

from seq2seq_tf import cli

NEW = pathlib.Path(__file__).resolve().parents[1]
_OLD = flags.DEFINE_string("old", None, "Checkout of the old code (a git worktree).")
_DATA = flags.DEFINE_string("data_dir", "data/multi30k", "Prepared Multi30k (train_throughput).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Trained workdir to export and decode with.")
_INPUT = flags.DEFINE_string("input", None, "Sources to decode (default: data_dir's test set).")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
_STEPS = flags.DEFINE_integer("steps", 25, "Measured training steps per run.")
_WARMUP = flags.DEFINE_integer("warmup", 5, "Unmeasured training steps per run.")
_OUT = flags.DEFINE_string("out_dir", "/tmp/compare_revisions", "Exports and logs.")
flags.mark_flags_as_required(["old"])


def _run(tree: pathlib.Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{tree}: {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def _train_rate(tree: pathlib.Path) -> float:
    out = _run(
        tree,
        "benchmarks/train_throughput.py",
        f"--data_dir={os.path.abspath(_DATA.value)}",
        f"--steps={_STEPS.value}",
        f"--warmup={_WARMUP.value}",
        "--noreference",
    )
    return float(re.search(r"^seq2seq_tf .*?([\d.]+) tgt tok/s", out, re.M).group(1))


def _decode_rates(tree: pathlib.Path, model_dir: str, sources: str) -> dict[int, float]:
    out = _run(
        tree,
        "benchmarks/decode_throughput.py",
        f"--model_dir={model_dir}",
        f"--input={sources}",
        "--beams=1,5",
        "--batches=32",
    )
    rows = re.findall(r"^\s+32\s+(\d+)\s+([\d.]+)", out, re.M)
    return {int(beam): float(rate) for beam, rate in rows}


def _translations(tree: pathlib.Path, model_dir: str, sources: str, out: str) -> list[str]:
    _run(tree, "-m", "seq2seq_tf.translate", f"--model_dir={model_dir}", f"--input={sources}",
         f"--output={out}", "--beam_width=5")  # fmt: skip
    return pathlib.Path(out).read_text(encoding="utf-8").splitlines()


def _ratio(name: str, old: list[float], new: list[float]) -> None:
    ratio = statistics.mean(new) / statistics.mean(old)
    print(f"{name}: old {statistics.mean(old):.1f}, new {statistics.mean(new):.1f}; "
          f"new / old = {ratio:.3f}")  # fmt: skip


def main(argv):
    old = pathlib.Path(_OLD.value).resolve()
    trees = {"old": old, "new": NEW}
    out_dir = pathlib.Path(_OUT.value)
    out_dir.mkdir(parents=True, exist_ok=True)
    exports = {}
    sources = _INPUT.value or os.path.abspath(os.path.join(_DATA.value, "test_2016_flickr.en"))
    if _WORKDIR.value:
        workdir = os.path.abspath(_WORKDIR.value)
        for name, tree in trees.items():
            export_dir = out_dir / f"export_{name}"
            if not export_dir.exists():
                _run(tree, "-m", "seq2seq_tf.export", f"--workdir={workdir}",
                     f"--export_dir={export_dir}", "--version=1")  # fmt: skip
            exports[name] = str(export_dir / "1")
        same = [
            _translations(tree, exports[name], sources, str(out_dir / f"{name}.hyp"))
            for name, tree in trees.items()
        ]
        agree = sum(a == b for a, b in zip(*same))
        print(f"beam 5 translations equal: {agree}/{len(same[0])}")
    rates = {(name, kind): [] for name in trees for kind in ("train", 1, 5)}
    for round_ in range(1, _ROUNDS.value + 1):
        for name, tree in trees.items():
            rates[(name, "train")].append(_train_rate(tree))
            line = f"round {round_} {name}: {rates[(name, 'train')][-1]:.0f} tgt tok/s"
            if exports:
                decode = _decode_rates(tree, exports[name], sources)
                for beam in (1, 5):
                    rates[(name, beam)].append(decode[beam])
                line += f"; decode batch 32: greedy {decode[1]:.1f}, beam 5 {decode[5]:.1f} sent/s"
            print(line, flush=True)
    _ratio("training tgt tok/s", rates[("old", "train")], rates[("new", "train")])
    if exports:
        _ratio("greedy sent/s", rates[("old", 1)], rates[("new", 1)])
        _ratio("beam 5 sent/s", rates[("old", 5)], rates[("new", 5)])


if __name__ == "__main__":
    cli.run(main)
