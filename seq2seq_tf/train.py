"""Training: `python -m seq2seq_tf.train --config=configs/quickstart.py --workdir=runs/x`.

One loop for every `tf.distribute.Strategy` (the default one on a single
device). The checkpoint holds the model, the optimizer, the step and the input
iterator, so running the same command again resumes where the run stopped.
The workdir keeps what export needs: config.json, the SentencePiece model, the
checkpoints, and TensorBoard logs under workdir/tensorboard.
"""

from __future__ import annotations

import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import ml_collections  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from seq2seq_tf import config as config_lib  # noqa: E402
from seq2seq_tf import data, tokenizer  # noqa: E402
from seq2seq_tf.model import Seq2Seq, build_model, sequence_loss  # noqa: E402
from seq2seq_tf.workdir import CHECKPOINT_DIR, TENSORBOARD_DIR, prepare_workdir  # noqa: E402


def make_schedule(config: ml_collections.ConfigDict):
    """The learning-rate schedule of `config.train` (both kinds warm up linearly)."""
    t = config.train
    warmup = max(int(t.warmup_steps), 0)
    if t.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else t.learning_rate,
            decay_steps=max(int(t.num_steps) - warmup, 1),
            alpha=0.01,
            warmup_target=t.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if warmup == 0:
        return keras.optimizers.schedules.PiecewiseConstantDecay([1], [t.learning_rate] * 2)
    return keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=t.learning_rate / warmup,
        decay_steps=warmup,
        end_learning_rate=t.learning_rate,
        power=1.0,
    )


def build_training(config: ml_collections.ConfigDict, vocab_size: int):
    """Model and optimizer, with all variables created (so restore is immediate)."""
    model = build_model(config.model, vocab_size)
    optimizer = keras.optimizers.Adam(learning_rate=make_schedule(config))
    optimizer.build(model.trainable_variables)
    return model, optimizer


def make_train_step(model: Seq2Seq, optimizer, config: ml_collections.ConfigDict):
    """The compiled step: forward, loss, clipped gradients, update; returns sums."""
    strategy = tf.distribute.get_strategy()
    label_smoothing = float(config.train.label_smoothing)
    clip_norm = float(config.train.clip_norm)
    spec = tf.TensorSpec([None, None], tf.int32)

    def replica_step(source, target_in, target_out):
        with tf.GradientTape() as tape:
            logits = model((source, target_in), training=True)
            loss_sum, nll_sum, tokens = sequence_loss(logits, target_out, label_smoothing)
            global_tokens = tf.distribute.get_replica_context().all_reduce("sum", tokens)
            loss = loss_sum / tf.maximum(global_tokens, 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
        grads, grad_norm = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply(grads, model.trainable_variables)
        return loss_sum, nll_sum, tokens, grad_norm

    @tf.function(input_signature=[spec, spec, spec])
    def train_step(source, target_in, target_out):
        loss_sum, nll_sum, tokens, grad_norm = strategy.run(
            replica_step, args=(source, target_in, target_out)
        )
        reduce = lambda x: strategy.reduce("sum", x, axis=None)  # noqa: E731
        return (
            reduce(loss_sum),
            reduce(nll_sum),
            reduce(tokens),
            strategy.experimental_local_results(grad_norm)[0],
        )

    return train_step


class _Progress:
    """Running sums between log lines, and the progress line itself."""

    def __init__(self, start_step: int, num_steps: int):
        self.num_steps = num_steps
        self.reset(start_step)

    def reset(self, step: int):
        self.step0, self.time0 = step, time.perf_counter()
        self.loss = self.nll = self.tokens = self.grad_norm = 0.0
        self.count = 0

    def add(self, loss_sum, nll_sum, tokens, grad_norm):
        self.loss += float(loss_sum)
        self.nll += float(nll_sum)
        self.tokens += float(tokens)
        self.grad_norm += float(grad_norm)
        self.count += 1

    def report(self, step: int, learning_rate: float) -> dict:
        elapsed = max(time.perf_counter() - self.time0, 1e-9)
        tokens = max(self.tokens, 1.0)
        nll = self.nll / tokens
        metrics = {
            "loss": self.loss / tokens,
            "perplexity": math.exp(min(nll, 50.0)),
            "learning_rate": learning_rate,
            "grad_norm": self.grad_norm / max(self.count, 1),
            "tokens_per_sec": self.tokens / elapsed,
            "steps_per_sec": (step - self.step0) / elapsed,
        }
        eta = (self.num_steps - step) / max(metrics["steps_per_sec"], 1e-9)
        logging.info(
            "step %d/%d  loss %.3f  ppl %.2f  lr %.2e  |g| %.2f  %.0f tgt tok/s  %.2f steps/s  "
            "ETA %dm%02ds",
            step,
            self.num_steps,
            metrics["loss"],
            metrics["perplexity"],
            learning_rate,
            metrics["grad_norm"],
            metrics["tokens_per_sec"],
            metrics["steps_per_sec"],
            int(eta) // 60,
            int(eta) % 60,
        )
        self.reset(step)
        return metrics


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains (or resumes) until config.train.num_steps; returns the last metrics."""
    config_lib.validate(config)
    keras.utils.set_random_seed(config.data.seed)
    d = config.data
    src_lines, tgt_lines = data.check_parallel(d.train_src, d.train_tgt)
    vocab_size = prepare_workdir(config, workdir)
    sp = tokenizer.make_tokenizer(tokenizer.read_model_proto(d.spm_model))
    data.corpus_stats(src_lines, tgt_lines, sp, d.max_src_len, d.max_tgt_len, "train")
    del src_lines, tgt_lines

    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model, optimizer = build_training(config, vocab_size)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    logging.info("model: %s parameters, vocabulary %d", f"{model.count_params():,}", vocab_size)
    dataset = data.make_train_dataset(
        d.train_src,
        d.train_tgt,
        sp,
        batch_size=d.batch_size,
        max_src_len=d.max_src_len,
        max_tgt_len=d.max_tgt_len,
        bucket_boundaries=tuple(d.bucket_boundaries),
        shuffle_buffer=d.shuffle_buffer,
        seed=d.seed,
    )
    iterator = iter(dataset)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, iterator=iterator)
    manager = tf.train.CheckpointManager(
        checkpoint,
        os.path.join(workdir, CHECKPOINT_DIR),
        max_to_keep=config.train.keep_checkpoints,
        step_counter=step,
    )
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_consumed()
        logging.info("resumed from %s at step %d", manager.latest_checkpoint, int(step))

    train_step = make_train_step(model, optimizer, config)
    writer = tf.summary.create_file_writer(os.path.join(workdir, TENSORBOARD_DIR, "train"))
    num_steps = int(config.train.num_steps)
    progress = _Progress(int(step), num_steps)
    metrics: dict = {}
    while int(step) < num_steps:
        source, target_in, target_out = next(iterator)
        progress.add(*train_step(source, target_in, target_out))
        step.assign_add(1)
        current = int(step)
        if current % config.train.log_every == 0 or current == num_steps:
            lr = float(optimizer.learning_rate)
            metrics = progress.report(current, lr)
            with writer.as_default(step=current):
                for name, value in metrics.items():
                    tf.summary.scalar(name, value)
        if current % config.train.checkpoint_every == 0 or current == num_steps:
            manager.save(checkpoint_number=current)
    writer.flush()
    logging.info("done at step %d; checkpoints in %s", int(step), manager.directory)
    return metrics


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).")
    flags.DEFINE_string("workdir", None, "Where checkpoints and logs go.")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)


if __name__ == "__main__":
    run()
