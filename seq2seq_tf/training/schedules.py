"""Learning-rate schedules: warmup then constant, cosine or inverse square root, times the
factors that reduce-on-plateau and a time budget set while training runs."""

from __future__ import annotations

import keras
import ml_collections
import tensorflow as tf


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
