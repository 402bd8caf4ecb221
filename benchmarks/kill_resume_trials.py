"""Kill training with SIGKILL at random steps, rerun the same command, compare loss curves.

    python benchmarks/kill_resume_trials.py --trials=10
    python benchmarks/kill_resume_trials.py --trials=10 --task=language_model

A small model on a generated toy corpus trains --steps steps once without
interruption (the reference curve). Then, per trial, the same run starts in a
fresh workdir, is killed with SIGKILL as soon as its log shows a randomly drawn
step, and the same command is run again until it finishes. Every run uses
`tf.config.experimental.enable_op_determinism()` and a fixed seed, with dropout
on, so a resume that restores model, optimizer, step, learning-rate position,
input position and dropout RNG gives the reference curve exactly.

With --task=language_model the run is a small character language model on a
generated text (windows of one stream with the state carried between them), so
a resume must also restore the carried state and the stream position, and the
kill steps fall in the middle of passes.

The per-step training loss is read back from TensorBoard (for steps run twice,
the resumed run's value). A trial matches when every step's loss equals the
reference within --rtol (default 1e-6, i.e. float32 rounding and nothing more).
"""

from __future__ import annotations

import glob
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

_TRIALS = flags.DEFINE_integer("trials", 10, "Kill-and-resume trials.")
_STEPS = flags.DEFINE_integer("steps", 60, "Training steps of every run.")
_EVERY = flags.DEFINE_integer("checkpoint_every", 5, "Steps between checkpoints.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for the kill steps.")
_RTOL = flags.DEFINE_float("rtol", 1e-6, "Relative tolerance per step loss.")
_WORKDIR = flags.DEFINE_string("workdir", "", "Where runs go (default: a temporary directory).")
_TASK = flags.DEFINE_enum("task", "translation", ["translation", "language_model"], "Which task.")

_STEP_LINE = re.compile(r"step (\d+)/\d+  loss")
_RUN = """
import sys
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
sys.path.insert(0, {root!r})
from absl import logging
logging.set_verbosity("info")
from seq2seq_tf.training import loop as train
from seq2seq_tf.config import default_config

config = default_config()
config.data.train_src, config.data.train_tgt = {data!r} + "/train.src", {data!r} + "/train.tgt"
config.data.spm_model = {data!r} + "/spm.model"
config.data.max_src_len = config.data.max_tgt_len = 48
config.data.batch_size = 32
config.data.bucket_boundaries = (10, 16, 24)
config.data.shuffle_buffer = 1000
m = config.model
m.embedding_dim, m.encoder_units, m.decoder_units, m.attention_units = 16, 16, 32, 32
m.encoder_layers = m.decoder_layers = 1
m.dropout = 0.2
config.train.num_steps = {steps}
config.train.learning_rate = 5e-3
config.train.lr_schedule = "cosine"
config.train.warmup_steps = 10
config.train.log_every = 1
config.train.checkpoint_every = {every}
train.train_and_evaluate(config, sys.argv[1])
"""


_RUN_LM = """
import sys
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
sys.path.insert(0, {root!r})
from absl import logging
logging.set_verbosity("info")
from seq2seq_tf.training import loop as train
from seq2seq_tf.config import default_config

config = default_config()
config.task = "language_model"
config.lm.train_text = {data!r} + "/train.txt"
config.lm.window = 16
config.data.batch_size = 8
m = config.model
m.embedding_dim, m.decoder_units, m.decoder_layers = 16, 32, 2
m.dropout = m.recurrent_dropout = 0.2
config.train.num_steps = {steps}
config.train.learning_rate = 5e-3
config.train.lr_schedule = "cosine"
config.train.warmup_steps = 10
config.train.label_smoothing = 0.0
config.train.eval_every = 0
config.train.log_every = 1
config.train.checkpoint_every = {every}
train.train_and_evaluate(config, sys.argv[1])
"""


def _make_lm_data(data: str) -> None:
    """About 3,400 characters: a pass is 26 windows of 8 x 16, so most kills land mid-pass."""
    rng = random.Random(0)
    words = "the cat sat on a mat and dog ran to it so we go by my love thy".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(170)]
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "train.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _make_data(data: str) -> None:
    subprocess.run(
        [sys.executable, "data_scripts/make_toy_corpus.py", f"--out_dir={data}",
         "--num_train=3000", "--num_dev=10", "--num_test=10"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "data_scripts/train_sentencepiece.py",
         f"--inputs={data}/train.src,{data}/train.tgt", f"--model_prefix={data}/spm",
         "--vocab_size=300", "--model_type=bpe"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip


def read_losses(workdir: str) -> dict[int, float]:
    """Step -> training loss from TensorBoard; a step written twice keeps the later value."""
    import tensorflow as tf

    points = []
    for path in glob.glob(os.path.join(workdir, "tensorboard", "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "loss":
                    loss = float(tf.make_ndarray(value.tensor))
                    points.append((event.wall_time, event.step, loss))
    return {step: loss for _, step, loss in sorted(points)}


def _run_until(script: str, workdir: str, kill_at: int | None) -> tuple[int | None, int]:
    """Runs one training command; with kill_at, SIGKILLs it once the log shows that step.

    Returns the last step the log showed before a kill (None when it ran to the end)
    and the step the run resumed from (0 for a fresh start).
    """
    process = subprocess.Popen(
        [sys.executable, script, workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last, resumed = None, 0
    for line in process.stderr:
        if "resumed from" in line:
            resumed = int(line.rsplit("at step ", 1)[1].split()[0])
        logged = _STEP_LINE.search(line)
        if kill_at is not None and logged:
            last = int(logged.group(1))
            if last >= kill_at:
                process.send_signal(signal.SIGKILL)
                break
    process.wait()
    if kill_at is None and process.returncode != 0:
        raise RuntimeError(f"training in {workdir} failed with exit code {process.returncode}")
    return last, resumed


def main(argv):
    base = _WORKDIR.value or tempfile.mkdtemp(prefix="kill_resume_")
    data = os.path.join(base, "data")
    language_model = _TASK.value == "language_model"
    (_make_lm_data if language_model else _make_data)(data)
    script = os.path.join(base, "run.py")
    template = _RUN_LM if language_model else _RUN
    with open(script, "w") as f:
        f.write(template.format(root=str(ROOT), data=data, steps=_STEPS.value, every=_EVERY.value))

    start = time.perf_counter()
    _run_until(script, os.path.join(base, "reference"), None)
    reference = read_losses(os.path.join(base, "reference"))
    if sorted(reference) != list(range(1, _STEPS.value + 1)):
        raise RuntimeError(f"reference run logged steps {sorted(reference)}")
    rng = random.Random(_SEED.value)
    kill_steps = sorted(rng.sample(range(2, _STEPS.value - 1), _TRIALS.value))
    matched = 0
    print(f"{_TASK.value} reference: {_STEPS.value} steps, loss {reference[1]:.4f} -> "
          f"{reference[_STEPS.value]:.4f}; checkpoint every {_EVERY.value} steps")  # fmt: skip
    for trial, kill_at in enumerate(kill_steps, 1):
        workdir = os.path.join(base, f"trial{trial}")
        killed_after, _ = _run_until(script, workdir, kill_at)
        _, resumed = _run_until(script, workdir, None)
        losses = read_losses(workdir)
        same_steps = sorted(losses) == sorted(reference)
        worst = max(
            (abs(losses[s] - reference[s]) / max(abs(reference[s]), 1e-12) for s in reference),
            default=float("inf"),
        ) if same_steps else float("inf")  # fmt: skip
        # Killed before the first checkpoint, the rerun starts afresh (resumed from 0).
        ok = killed_after is not None and same_steps and worst <= _RTOL.value
        matched += ok
        print(
            f"trial {trial:2d}: SIGKILL after step {killed_after} (drawn {kill_at}), resumed "
            f"from step {resumed}; steps logged "
            f"{len(losses)}/{len(reference)}, max relative loss difference {worst:.2e}: "
            f"{'match' if ok else 'MISMATCH'}"
        )
    print(
        f"{matched}/{len(kill_steps)} kill-and-resume trials matched the uninterrupted loss "
        f"curve (rtol {_RTOL.value:g}); {time.perf_counter() - start:.0f}s; runs in {base}"
    )
    return 0 if matched == len(kill_steps) else 1


if __name__ == "__main__":
    cli.run(main)
