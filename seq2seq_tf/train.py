"""Training: `python -m seq2seq_tf.train --config=configs/quickstart.py --workdir=runs/x`.

One loop for every `tf.distribute.Strategy` (the default one on a single
device). The checkpoint holds the model, the optimizer, the step and the input
iterator, so running the same command again resumes where the run stopped.
The workdir keeps what export needs: config.json, the SentencePiece model, the
checkpoints, and TensorBoard logs under workdir/tensorboard.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import ml_collections  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from seq2seq_tf import config as config_lib  # noqa: E402
from seq2seq_tf import data, distribute, tokenizer  # noqa: E402
from seq2seq_tf.model import Seq2Seq, build_model, token_cross_entropy  # noqa: E402
from seq2seq_tf.optimizer import FusedAdam  # noqa: E402
from seq2seq_tf.workdir import (  # noqa: E402
    BEST_DIR,
    BEST_FILE,
    CHECKPOINT_DIR,
    TENSORBOARD_DIR,
    prepare_workdir,
)


class InverseSqrtSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak`, then peak * sqrt(warmup / step) (Vaswani et al., 2017)."""

    def __init__(self, peak: float, warmup_steps: int):
        self.peak = float(peak)
        self.warmup_steps = max(int(warmup_steps), 1)

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warmup = float(self.warmup_steps)
        return self.peak * tf.minimum(step / warmup, tf.sqrt(warmup / step))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule times variable factors: what reduce-on-plateau lowers (and checkpoints),
    and the clock's decay at the end of a time budget (set every step, not checkpointed)."""

    def __init__(self, schedule, scale: tf.Variable, time_scale: tf.Variable | None = None):
        self.schedule = schedule
        self.scale = scale
        self.time_scale = time_scale

    def __call__(self, step):
        rate = self.schedule(step) * tf.cast(self.scale, tf.float32)
        if self.time_scale is not None:
            rate = rate * tf.cast(self.time_scale, tf.float32)
        return rate

    def get_config(self):
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule)}


def make_schedule(config: ml_collections.ConfigDict):
    """The learning-rate schedule of `config.train` (every kind warms up linearly)."""
    t = config.train
    warmup = max(int(t.warmup_steps), 0)
    if t.lr_schedule == "inverse_sqrt":
        return InverseSqrtSchedule(t.learning_rate, warmup)
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


def time_decay_factor(elapsed_s: float, budget_s: float, fraction: float) -> float:
    """Learning-rate factor of a time budget: 1, then linear to 0 over its last `fraction`.

    A run stopped by the clock otherwise ends at its peak rate; annealing to zero
    in the time that is left is what a fixed budget rewards (warmup-stable-decay).
    """
    if fraction <= 0 or budget_s <= 0:
        return 1.0
    left = 1.0 - elapsed_s / budget_s
    return min(1.0, max(left / fraction, 0.0))


def build_training(
    config: ml_collections.ConfigDict, vocab_size: int, lr_scale=None, time_scale=None
):
    """Model and optimizer, with all variables created (so restore is immediate).

    `lr_scale` (a variable, default 1) multiplies the schedule; plateau lowers it.
    `time_scale` (a variable, optional) multiplies it too; the loop sets it from the clock.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.train.precision)  # layers take it when constructed
    try:
        model = build_model(config.model, vocab_size)
    finally:
        keras.config.set_dtype_policy(previous)
    if lr_scale is None:
        lr_scale = tf.Variable(1.0, trainable=False, name="lr_scale")
    schedule = ScaledSchedule(make_schedule(config), lr_scale, time_scale)
    optimizer = FusedAdam(learning_rate=schedule)
    if config.train.precision == "mixed_float16":  # float16 gradients underflow unscaled
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return model, optimizer


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. only non-finite steps); the message says why and what is kept."""


def make_train_step(model: Seq2Seq, optimizer, config: ml_collections.ConfigDict, strategy=None):
    """The compiled step: forward, loss, clipped gradients, update.

    Returns (loss sum, NLL sum, tokens, gradient norm, applied): a step whose loss or
    gradients are not finite changes no weight and returns applied = False. Under
    mixed_float16 the loss is scaled and such a step lowers the loss scale instead.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    label_smoothing = float(config.train.label_smoothing)
    clip_norm = float(config.train.clip_norm)
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def gradients(source, target_in, target_out):
        """Global (all-replica) clipped gradients, their norm, the sums and finiteness."""
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            logits, labels = model.real_token_logits(source, target_in, target_out, training=True)
            smoothed, nll = token_cross_entropy(logits, labels, label_smoothing)
            loss_sum, nll_sum = tf.reduce_sum(smoothed), tf.reduce_sum(nll)
            tokens = tf.cast(tf.size(labels), tf.float32)
            loss = loss_sum / tf.maximum(context.all_reduce("sum", tokens), 1.0)
            if loss_scaled:
                loss = optimizer.scale_loss(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        if replicas > 1:  # global norm and finiteness need the summed gradients
            # Densified: the embeddings' IndexedSlices do not sum across replicas. Keras's
            # Adam squares IndexedSlices slice by slice (a token seen k times gets the sum
            # of k squares as second moment, not the square of the sum), so embedding
            # updates on several replicas differ from one device's (measured: v up to 2.5x;
            # every other moment equal). One device keeps Keras's sparse behaviour: the
            # dense form learned the toy task far slower (demo dev BLEU at step 1,500:
            # 20.1 dense, 99.5 sparse).
            grads = context.all_reduce("sum", [tf.convert_to_tensor(g) for g in grads])
        scale = tf.cast(optimizer.scale_loss(1.0), tf.float32) if loss_scaled else 1.0
        grads, grad_norm = tf.clip_by_global_norm(grads, clip_norm * scale)
        grad_norm = grad_norm / scale
        finite = tf.math.is_finite(grad_norm) & tf.math.is_finite(
            context.all_reduce("sum", loss_sum)
        )
        return grads, (loss_sum, nll_sum, tokens, grad_norm), finite

    spec = tf.TensorSpec([None, None], tf.int32)
    if replicas == 1:

        @tf.function(input_signature=[spec, spec, spec])
        def train_step(source, target_in, target_out):
            grads, sums, finite = gradients(source, target_in, target_out)
            if loss_scaled:  # it skips non-finite steps itself and lowers the scale
                optimizer.apply(grads, model.trainable_variables)
                return (*sums, finite)

            def apply():
                optimizer.apply(grads, model.trainable_variables)
                return tf.constant(True)

            return (*sums, tf.cond(finite, apply, lambda: False))

        return train_step

    # Several replicas: Keras's cross-replica update cannot sit inside a tf.cond, so
    # the step is two functions and a bad step never reaches the optimizer. Keras sums
    # the replicas' gradients again, so each replica hands it 1/n of the global sum.
    @tf.function(reduce_retracing=True)
    def compute(source, target_in, target_out):
        grads, sums, finite = strategy.run(gradients, args=(source, target_in, target_out))
        total = [strategy.reduce("sum", x, axis=None) for x in sums[:3]]
        first = strategy.experimental_local_results
        return grads, (*total, first(sums[3])[0]), first(finite)[0]

    @tf.function(reduce_retracing=True)
    def apply(grads):
        def replica_apply(grads):
            optimizer.apply([g / replicas for g in grads], model.trainable_variables)

        strategy.run(replica_apply, args=(grads,))

    def train_step(source, target_in, target_out):
        grads, sums, finite = compute(source, target_in, target_out)
        if bool(finite) or loss_scaled:
            apply(grads)
        return (*sums, finite)

    return train_step


class _Progress:
    """Running sums between log lines, and the progress line itself."""

    def __init__(self, start_step: int, num_steps: int, deadline: float | None = None):
        self.num_steps = num_steps
        self.deadline = deadline  # perf_counter() at which the time budget ends, if any
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
            "step_time_ms": 1000.0 * elapsed / max(step - self.step0, 1),
        }
        eta = (self.num_steps - step) / max(metrics["steps_per_sec"], 1e-9)
        if self.deadline is not None:  # a time budget ends the run first
            eta = max(min(eta, self.deadline - time.perf_counter()), 0.0)
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


class _StopOnSignal:
    """Notes SIGTERM (the usual preemption signal) so the loop can checkpoint and exit."""

    def __init__(self, *signals):
        self.signals = signals
        self.received: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        logging.warning("%s received: saving a checkpoint after this step", self.received)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def restore_newest_good(checkpoint: tf.train.Checkpoint, paths: list[str]) -> str:
    """Restores the newest of `paths` that reads back whole; warns about each one skipped.

    Raises:
        TrainingError: none of them can be restored.
    """
    for path in reversed(paths):
        try:
            checkpoint.restore(path).assert_consumed()
            return path
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as err:
            logging.warning(
                "checkpoint %s is unreadable (%s: %s); falling back to the one before it",
                path, type(err).__name__, str(err).splitlines()[0][:200],
            )  # fmt: skip
    raise TrainingError(f"none of the checkpoints {paths} can be restored; use a new workdir")


def save_checkpoint(manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves, or stops training with a message naming the directory and the last good save.

    TensorFlow writes a checkpoint under a temporary name and renames it when whole,
    and the checkpoint list changes only after that, so a failed write (full disk,
    lost permission) is never what a rerun resumes from.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as err:
        raise TrainingError(
            f"could not write the step {step} checkpoint to {manager.directory} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:300]}); free space or fix "
            f"permissions there and rerun: it resumes from {manager.latest_checkpoint}"
        ) from err


class _DevTracker:
    """Dev evaluations and what they decide: best checkpoint, plateau, early stop.

    Its counters are variables in the training checkpoint, so a resumed run makes
    the same decisions as an uninterrupted one.
    """

    def __init__(self, evaluator, config: ml_collections.ConfigDict, workdir: str, model, step):
        self.evaluator = evaluator
        self.train = config.train
        self.workdir = workdir
        self.best_bleu = tf.Variable(-1.0, trainable=False, name="best_bleu")
        self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
        self.evals_since_best = tf.Variable(0, dtype=tf.int64, trainable=False, name="since_best")
        self.last_eval_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="last_eval")
        self.best_manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model, step=step),
            os.path.join(workdir, BEST_DIR),
            max_to_keep=1,
            checkpoint_name="best",
        )

    def variables(self) -> dict:
        return {
            "best_bleu": self.best_bleu,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "last_eval_step": self.last_eval_step,
        }

    def __call__(self, step: int, lr_scale: tf.Variable) -> bool:
        """Evaluates at `step`; returns True when early stopping says stop."""
        metrics = self.evaluator(step)
        self.last_eval_step.assign(step)
        if metrics["bleu"] > float(self.best_bleu):
            self.best_bleu.assign(metrics["bleu"])
            self.best_step.assign(step)
            self.evals_since_best.assign(0)
            path = self.best_manager.save(checkpoint_number=step)
            logging.info("new best dev BLEU %.2f at step %d: %s", metrics["bleu"], step, path)
        else:
            self.evals_since_best.assign_add(1)
            since = int(self.evals_since_best)
            logging.info(
                "dev BLEU %.2f; best %.2f at step %d (%d evaluations ago)",
                metrics["bleu"],
                float(self.best_bleu),
                int(self.best_step),
                since,
            )
            plateau = self.train.lr_schedule == "plateau"
            if plateau and since % int(self.train.plateau_patience) == 0:
                lr_scale.assign(lr_scale * self.train.plateau_factor)
                logging.info("plateau: learning rate now %.3g of the schedule", lr_scale.numpy())
        with tf.io.gfile.GFile(os.path.join(self.workdir, BEST_FILE), "w") as f:
            json.dump(
                {"step": int(self.best_step), "bleu": float(self.best_bleu), "last": metrics},
                f,
                indent=2,
            )
        patience = int(self.train.early_stopping_patience)
        if patience and int(self.evals_since_best) >= patience:
            logging.info(
                "early stopping: no better dev BLEU in %d evaluations (best %.2f at step %d)",
                patience,
                float(self.best_bleu),
                int(self.best_step),
            )
            return True
        return False


def _write_hparams(config: ml_collections.ConfigDict, workdir: str, writer) -> None:
    """Records the config in TensorBoard's hparams plugin (one trial per workdir)."""
    from tensorboard.plugins.hparams import api as hparams_api

    flat = {}
    for group, fields in config.to_dict().items():
        for name, value in fields.items():
            if not isinstance(value, (bool, int, float, str)):
                value = str(value)
            flat[f"{group}.{name}"] = value
    with writer.as_default():
        hparams_api.hparams(flat, trial_id=os.path.basename(os.path.abspath(workdir)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains (or resumes) until the step budget, time budget or early stopping.

    Runs under the strategy of `train.strategy`. Returns the last training
    metrics, with where and why it stopped.
    """
    config_lib.validate(config)
    strategy = distribute.make_strategy(config.train.strategy, config.train.tpu)
    return _train(config, workdir, strategy)


def _train(config: ml_collections.ConfigDict, workdir: str, strategy) -> dict:
    from seq2seq_tf.evaluate import DevEvaluator

    keras.utils.set_random_seed(config.data.seed)
    chief = distribute.is_chief(strategy)
    chief_workdir = workdir
    if not chief:  # collective saves run here too, into a scratch directory deleted after
        workdir = distribute.worker_scratch_dir(strategy, workdir)
    d = config.data
    src_lines, tgt_lines = data.check_parallel(d.train_src, d.train_tgt)
    vocab_size = prepare_workdir(config, workdir)
    sp = tokenizer.make_tokenizer(tokenizer.read_model_proto(d.spm_model))
    stats = data.corpus_stats(src_lines, tgt_lines, sp, d.max_src_len, d.max_tgt_len, "train")
    del src_lines, tgt_lines
    boundaries = tuple(int(b) for b in d.bucket_boundaries)
    if not boundaries:
        boundaries = data.derive_bucket_boundaries(stats.lengths)
        logging.info("bucket boundaries from the training data: %s", boundaries)

    with strategy.scope():  # model and optimizer variables live on every replica
        lr_scale = tf.Variable(1.0, trainable=False, name="lr_scale")
        time_scale = tf.Variable(1.0, trainable=False, name="time_scale")
        model, optimizer = build_training(config, vocab_size, lr_scale, time_scale)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    examples = tf.Variable(0, dtype=tf.int64, trainable=False, name="examples")
    skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
    logging.info("model: %s parameters, vocabulary %d", f"{model.count_params():,}", vocab_size)
    dataset = data.make_train_dataset(
        d.train_src,
        d.train_tgt,
        sp,
        batch_size=d.batch_size,
        max_src_len=d.max_src_len,
        max_tgt_len=d.max_tgt_len,
        bucket_boundaries=boundaries,
        shuffle_buffer=d.shuffle_buffer,
        seed=d.seed,
        batch_tokens=d.batch_tokens,
    )
    iterator = iter(dataset)  # checkpointable; batches are split across replicas per step
    summaries = os.path.join(workdir, TENSORBOARD_DIR)
    writer = (
        tf.summary.create_file_writer(os.path.join(summaries, "train"))
        if chief
        else tf.summary.create_noop_writer()
    )
    tracker = None
    if d.dev_src and config.train.eval_every:  # every worker decides the same (plateau, stop)
        dev_writer = (
            tf.summary.create_file_writer(os.path.join(summaries, "dev"))
            if chief
            else tf.summary.create_noop_writer()
        )
        tracker = _DevTracker(DevEvaluator(model, config, dev_writer), config, workdir, model, step)
    # Dropout's random streams: Keras keeps their positions in seed-generator variables
    # that a checkpoint of the model does not reach; without them a resumed run would
    # draw the masks of the run's first steps again.
    dropout_rng = [v.value for v in model.non_trainable_variables if "seed_generator" in v.path]
    checkpoint = tf.train.Checkpoint(
        model=model,
        optimizer=optimizer,
        dropout_rng=dropout_rng,
        step=step,
        iterator=iterator,
        examples=examples,
        skipped=skipped,
        lr_scale=lr_scale,
        **(tracker.variables() if tracker else {}),
    )
    manager = tf.train.CheckpointManager(
        checkpoint,
        os.path.join(workdir, CHECKPOINT_DIR),
        max_to_keep=config.train.keep_checkpoints,
        step_counter=step,
    )
    resume_from = manager.checkpoints
    if not chief:
        state = tf.train.get_checkpoint_state(os.path.join(chief_workdir, CHECKPOINT_DIR))
        resume_from = list(state.all_model_checkpoint_paths) if state else []
    if resume_from:
        restored = restore_newest_good(checkpoint, resume_from)
        logging.info("resumed from %s at step %d", restored, int(step))
    else:
        _write_hparams(config, workdir, writer)

    train_step = make_train_step(model, optimizer, config, strategy)
    num_steps = int(config.train.num_steps)
    eval_every = int(config.train.eval_every)
    max_time = float(config.train.max_time_s)
    time_decay = float(config.train.time_decay_fraction)
    metrics: dict = {}
    start = time.perf_counter()
    progress = _Progress(int(step), num_steps, start + max_time if max_time > 0 else None)
    stop_reason = f"step budget {num_steps}"
    max_bad = int(config.train.max_bad_steps)
    bad_in_a_row = 0
    with _StopOnSignal(signal.SIGTERM) as stop_signal:
        while int(step) < num_steps:
            if time_decay:
                elapsed = time.perf_counter() - start
                time_scale.assign(time_decay_factor(elapsed, max_time, time_decay))
            batch = next(iterator)
            *sums, applied = train_step(*distribute.split_across_replicas(strategy, batch))
            examples.assign_add(tf.shape(batch[0], out_type=tf.int64)[0])
            step.assign_add(1)
            current = int(step)
            if bool(applied):
                progress.add(*sums)
                bad_in_a_row = 0
            else:
                skipped.assign_add(1)
                bad_in_a_row += 1
                logging.warning(
                    "step %d: non-finite loss or gradients (loss sum %s, gradient norm %s); "
                    "skipped, no weight changed (%d in a row, %d in all)",
                    current, float(sums[0]), float(sums[3]), bad_in_a_row, int(skipped),
                )  # fmt: skip
                if bad_in_a_row >= max_bad:
                    raise TrainingError(
                        f"{bad_in_a_row} non-finite steps in a row (train.max_bad_steps) up to "
                        f"step {current}; stopped without saving. The last good checkpoint is "
                        f"{manager.latest_checkpoint}; lower train.learning_rate or check the "
                        "data around this point"
                    )
            out_of_time = max_time > 0 and time.perf_counter() - start > max_time
            signalled = stop_signal.received  # one reading, so a late signal waits a step
            last = current == num_steps or out_of_time or signalled is not None
            if current % config.train.log_every == 0 or last:
                metrics = progress.report(current, float(optimizer.learning_rate))
                metrics["epoch"] = int(examples) / max(stats.kept, 1)
                metrics["skipped_steps"] = int(skipped)
                with writer.as_default(step=current):
                    for name, value in metrics.items():
                        tf.summary.scalar(name, value)
            stop = False
            if tracker and (current % eval_every == 0 or (last and not signalled)):
                stop = tracker(current, lr_scale)
            if current % config.train.checkpoint_every == 0 or last or stop:
                save_checkpoint(manager, current)
                if not chief:
                    tf.io.gfile.rmtree(os.path.dirname(workdir))
            if signalled:
                stop_reason = f"{signalled}: checkpoint saved, rerun to resume"
                break
            if out_of_time:
                stop_reason = f"time budget {max_time:.0f}s"
                break
            if stop:
                stop_reason = "early stopping"
                break
    writer.flush()
    logging.info(
        "stopped at step %d (%s), %.2f epochs; checkpoints in %s%s",
        int(step),
        stop_reason,
        int(examples) / max(stats.kept, 1),
        manager.directory,
        f"; best dev BLEU {float(tracker.best_bleu):.2f} at step {int(tracker.best_step)}"
        if tracker
        else "",
    )
    metrics.update(step=int(step), epoch=int(examples) / max(stats.kept, 1), stopped=stop_reason)
    if tracker:
        metrics.update(best_step=int(tracker.best_step), best_dev_bleu=float(tracker.best_bleu))
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
