"""The one training loop, driven by a task (see `tasks.base.Task`).

The loop owns what every task needs: the tf.distribute strategy, mixed
precision, gradient clipping, learning-rate schedules and time-budget
annealing, bad-step skipping, checkpoints with exact resume (model, optimizer,
step, input position, dropout streams, the task's carried state), SIGTERM,
the best checkpoint by the task's dev metric, early stopping, the progress line
and TensorBoard. The task gives it datasets, the loss, a dev evaluator and the
model. It runs under the strategy of `train.strategy` (the default one on a
single device).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from seq2seq_tf import config as config_lib
from seq2seq_tf.training import distribute
from seq2seq_tf.training.checkpoints import (
    TrainingError,
    checkpoint_paths,
    recover_checkpoint_index,
    restore_newest_good,
    save_checkpoint,
)
from seq2seq_tf.training.dev import DevTracker
from seq2seq_tf.training.optimizer import FusedAdam
from seq2seq_tf.training.progress import Progress, StopOnSignal
from seq2seq_tf.training.schedules import ScaledSchedule, make_schedule, time_decay_factor
from seq2seq_tf.workdir import (
    CHECKPOINT_DIR,
    TENSORBOARD_DIR,
    check_config_compatible,
    training_lock,
    write_config,
)


def build_training(
    config: ml_collections.ConfigDict, build_model: Callable, lr_scale=None, time_scale=None
):
    """Model and optimizer, with all variables created (so restore is immediate).

    `build_model()` makes the model; its layers take the `train.precision` dtype policy.
    `lr_scale` (a variable, default 1) multiplies the schedule; plateau lowers it.
    `time_scale` (a variable, optional) multiplies it too; the loop sets it from the clock.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.train.precision)  # layers take it when constructed
    try:
        model = build_model()
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


def make_train_step(
    model: keras.Model,
    optimizer,
    config: ml_collections.ConfigDict,
    loss_sums: Callable,
    input_signature,
    strategy=None,
):
    """The compiled step: forward, loss, clipped gradients, update.

    Args:
        loss_sums: the task's `(model, batch, training) -> (smoothed loss sum, NLL sum,
            tokens)` over one replica's batch.
        input_signature: the batch's `tf.TensorSpec`s (a tuple).

    Returns:
        `train_step(*batch) -> (loss sum, NLL sum, tokens, gradient norm, applied)`: a
        step whose loss or gradients are not finite changes no weight and returns
        applied = False. Under mixed_float16 the loss is scaled and such a step lowers
        the loss scale instead.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    clip_norm = float(config.train.clip_norm)
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def gradients(*batch):
        """Global (all-replica) clipped gradients, their norm, the sums and finiteness."""
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            loss_sum, nll_sum, tokens = loss_sums(model, batch, training=True)
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

    if replicas == 1:

        @tf.function(input_signature=list(input_signature))
        def train_step(*batch):
            grads, sums, finite = gradients(*batch)
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
    def compute(*batch):
        grads, sums, finite = strategy.run(gradients, args=batch)
        total = [strategy.reduce("sum", x, axis=None) for x in sums[:3]]
        first = strategy.experimental_local_results
        return grads, (*total, first(sums[3])[0]), first(finite)[0]

    @tf.function(reduce_retracing=True)
    def apply(grads):
        def replica_apply(grads):
            optimizer.apply([g / replicas for g in grads], model.trainable_variables)

        strategy.run(replica_apply, args=(grads,))

    def train_step(*batch):
        grads, sums, finite = compute(*batch)
        if bool(finite) or loss_scaled:
            apply(grads)
        return (*sums, finite)

    return train_step


def _write_hparams(config: ml_collections.ConfigDict, workdir: str, writer) -> None:
    """Records the config in TensorBoard's hparams plugin (one trial per workdir)."""
    from tensorboard.plugins.hparams import api as hparams_api

    flat = {}
    for group, fields in config.to_dict().items():
        if not isinstance(fields, dict):  # a top-level field such as `task`
            fields, group = {group: fields}, ""
        for name, value in fields.items():
            if not isinstance(value, (bool, int, float, str)):
                value = str(value)
            flat[f"{group}.{name}" if group else name] = value
    with writer.as_default():
        hparams_api.hparams(flat, trial_id=os.path.basename(os.path.abspath(workdir)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains (or resumes) the task of `config` until the step budget, time budget or
    early stopping. Returns the last training metrics, with where and why it stopped
    (`step`, `stopped`, and `interrupted`: True when a signal stopped it early)."""
    from seq2seq_tf.tasks import make_task

    config_lib.validate(config)
    strategy = distribute.make_strategy(config.train.strategy, config.train.tpu)
    return train(make_task(config), config, workdir, strategy)


def train(task, config: ml_collections.ConfigDict, workdir: str, strategy) -> dict:
    """The loop itself (see the module docstring); `task` is a `tasks.base.Task`.

    The chief holds the workdir's lock for the whole run and refuses a workdir
    trained with another model before anything there changes.
    """
    chief = distribute.is_chief(strategy)
    with training_lock(workdir) if chief else contextlib.nullcontext():
        if chief:
            check_config_compatible(config, workdir)
        return _Session(task, config, workdir, strategy).run()


class _Session:
    """One training run: what it builds and restores at start, then the loop over steps."""

    def __init__(self, task, config: ml_collections.ConfigDict, workdir: str, strategy):
        keras.utils.set_random_seed(config.data.seed)
        self.task, self.config, self.strategy = task, config, strategy
        self.chief = distribute.is_chief(strategy)
        self.chief_workdir = workdir
        if not self.chief:  # collective saves run here too, into a scratch directory
            workdir = distribute.worker_scratch_dir(strategy, workdir)
        self.workdir = workdir
        task.prepare(workdir)
        with strategy.scope():  # model and optimizer variables live on every replica
            self.lr_scale = tf.Variable(1.0, trainable=False, name="lr_scale")
            self.time_scale = tf.Variable(1.0, trainable=False, name="time_scale")
            self.model, self.optimizer = build_training(
                config, task.build_model, self.lr_scale, self.time_scale
            )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.examples = tf.Variable(0, dtype=tf.int64, trainable=False, name="examples")
        self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
        params = f"{self.model.count_params():,}"
        logging.info("model: %s parameters, %s", params, task.describe())
        dataset = task.train_dataset()
        self.iterator = iter(dataset)  # checkpointable; split across replicas per step
        self.writer = self._writer("train")
        self.evaluator = None
        if config.train.eval_every:
            self.evaluator = task.dev_evaluator(self.model, self._writer)
        self.tracker = None
        if self.evaluator is not None:  # every worker decides the same (plateau, stop)
            self.tracker = DevTracker(self.evaluator, config, workdir, self.model, self.step)
        self.manager = self._checkpoint_manager()
        self._resume()
        if self.chief:  # only now: a failed restore leaves the workdir as it was
            write_config(config, workdir, **task.workdir_fields())
        signature = tuple(tf.TensorSpec(s.shape, s.dtype) for s in dataset.element_spec)
        self.train_step = make_train_step(
            self.model, self.optimizer, config, task.loss_sums, signature, strategy
        )
        self.per_epoch = max(task.examples_per_epoch(), 1)
        self.bad_in_a_row = 0

    def _writer(self, name: str):
        if not self.chief:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(os.path.join(self.workdir, TENSORBOARD_DIR, name))

    def _checkpoint_manager(self) -> tf.train.CheckpointManager:
        # Dropout's random streams: Keras keeps their positions in seed-generator variables
        # that a checkpoint of the model does not reach; without them a resumed run would
        # draw the masks of the run's first steps again.
        rng = [v.value for v in self.model.non_trainable_variables if "seed_generator" in v.path]
        checkpoint = tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            dropout_rng=rng,
            step=self.step,
            iterator=self.iterator,
            examples=self.examples,
            skipped=self.skipped,
            lr_scale=self.lr_scale,
            **(self.tracker.variables() if self.tracker else {}),
            **self.task.checkpoint_items(),
        )
        directory = os.path.join(self.workdir, CHECKPOINT_DIR)
        recover_checkpoint_index(directory)
        return tf.train.CheckpointManager(
            checkpoint,
            directory,
            max_to_keep=self.config.train.keep_checkpoints,
            step_counter=self.step,
        )

    def _resume(self) -> None:
        """Restores the newest good checkpoint (the chief's, on other workers), if any."""
        resume_from = self.manager.checkpoints
        if not self.chief:
            resume_from = checkpoint_paths(os.path.join(self.chief_workdir, CHECKPOINT_DIR))
        if resume_from:
            restored = restore_newest_good(self.manager.checkpoint, resume_from)
            logging.info("resumed from %s at step %d", restored, int(self.step))
        else:
            _write_hparams(self.config, self.workdir, self.writer)

    def _train_one(self, batch, progress: Progress) -> int:
        """One step on `batch`; counts a skipped (non-finite) step. Returns the new step."""
        inputs = distribute.split_across_replicas(self.strategy, batch)
        *sums, applied = self.train_step(*inputs)
        self.examples.assign_add(tf.shape(batch[0], out_type=tf.int64)[0])
        self.step.assign_add(1)
        current = int(self.step)
        if bool(applied):
            progress.add(*sums)
            self.bad_in_a_row = 0
            return current
        self.skipped.assign_add(1)
        self.bad_in_a_row += 1
        logging.warning(
            "step %d: non-finite loss or gradients (loss sum %s, gradient norm %s); "
            "skipped, no weight changed (%d in a row, %d in all)",
            current, float(sums[0]), float(sums[3]), self.bad_in_a_row, int(self.skipped),
        )  # fmt: skip
        if self.bad_in_a_row >= int(self.config.train.max_bad_steps):
            raise TrainingError(
                f"{self.bad_in_a_row} non-finite steps in a row (train.max_bad_steps) up to "
                f"step {current}; stopped without saving. The last good checkpoint is "
                f"{self.manager.latest_checkpoint}; lower train.learning_rate or check the "
                "data around this point"
            )
        return current

    def _log(self, current: int, progress: Progress) -> dict:
        metrics = progress.report(current, float(self.optimizer.learning_rate))
        metrics["epoch"] = int(self.examples) / self.per_epoch
        metrics["skipped_steps"] = int(self.skipped)
        with self.writer.as_default(step=current):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        return metrics

    def _save(self, current: int) -> None:
        save_checkpoint(self.manager, current)
        if not self.chief:
            tf.io.gfile.rmtree(os.path.dirname(self.workdir))

    def run(self) -> dict:
        """Steps until the step budget, the time budget, early stopping or SIGTERM."""
        t = self.config.train
        num_steps, eval_every = int(t.num_steps), int(t.eval_every)
        max_time, time_decay = float(t.max_time_s), float(t.time_decay_fraction)
        start = time.perf_counter()
        deadline = start + max_time if max_time > 0 else None
        progress = Progress(int(self.step), num_steps, deadline, unit=self.task.progress_unit)
        metrics: dict = {}
        stop_reason = f"step budget {num_steps}"
        interrupted = False
        with StopOnSignal(signal.SIGTERM, signal.SIGINT) as stop_signal:
            while int(self.step) < num_steps:
                if time_decay:
                    elapsed = time.perf_counter() - start
                    self.time_scale.assign(time_decay_factor(elapsed, max_time, time_decay))
                current = self._train_one(next(self.iterator), progress)
                out_of_time = max_time > 0 and time.perf_counter() - start > max_time
                signalled = stop_signal.received  # one reading, so a late signal waits a step
                last = current == num_steps or out_of_time or signalled is not None
                if current % t.log_every == 0 or last:
                    metrics = self._log(current, progress)
                stop = False
                if self.tracker and (current % eval_every == 0 or (last and not signalled)):
                    stop = self.tracker(current, self.lr_scale)
                if current % t.checkpoint_every == 0 or last or stop:
                    self._save(current)
                if signalled:
                    stop_reason = f"{signalled}: checkpoint saved, rerun to resume"
                    interrupted = True
                elif out_of_time:
                    stop_reason = f"time budget {max_time:.0f}s"
                elif stop:
                    stop_reason = f"early stopping at step {current} of {num_steps}"
                if signalled or out_of_time or stop:
                    break
        return self._finish(metrics, stop_reason, interrupted)

    def _finish(self, metrics: dict, stop_reason: str, interrupted: bool) -> dict:
        self.writer.flush()
        epochs = int(self.examples) / self.per_epoch
        best = ""
        if self.tracker:
            score, at = float(self.tracker.best_score), int(self.tracker.best_step)
            best = f"; best dev {self.evaluator.metric_label} {score:.2f} at step {at}"
            metrics.update(best_step=at, **{f"best_dev_{self.evaluator.metric}": score})
        logging.info(
            "stopped at step %d (%s), %.2f epochs; checkpoints in %s%s",
            int(self.step), stop_reason, epochs, self.manager.directory, best,
        )  # fmt: skip
        metrics.update(
            step=int(self.step), epoch=epochs, stopped=stop_reason, interrupted=interrupted
        )
        return metrics
