"""What dev evaluations decide during training: the best checkpoint, plateaus, early stop."""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from seq2seq_tf.workdir import BEST_DIR, BEST_FILE


class DevTracker:
    """Dev evaluations and what they decide: best checkpoint, plateau, early stop.

    The evaluator names the metric the best checkpoint is chosen by
    (`evaluator.metric`, higher is better unless `evaluator.higher_is_better` is
    False; `evaluator.metric_label` for the log).
    Its counters are variables in the training checkpoint, so a resumed run makes
    the same decisions as an uninterrupted one.
    """

    def __init__(self, evaluator, config: ml_collections.ConfigDict, workdir: str, model, step):
        self.evaluator = evaluator
        self.train = config.train
        self.workdir = workdir
        self.sign = 1.0 if getattr(evaluator, "higher_is_better", True) else -1.0
        self.best_score = tf.Variable(-self.sign * np.inf, trainable=False, name="best_score")
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
            "best_score": self.best_score,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "last_eval_step": self.last_eval_step,
        }

    def _gain(self, score: float, than: float) -> float:
        """How much better `score` is than `than` (positive: better), in the metric's units."""
        return self.sign * (score - than)

    def __call__(self, step: int, lr_scale: tf.Variable) -> bool:
        """Evaluates at `step`; returns True when early stopping says stop."""
        metrics = self.evaluator(step)
        name, label = self.evaluator.metric, self.evaluator.metric_label
        score = float(metrics[name])
        self.last_eval_step.assign(step)
        previous = float(self.best_score)
        if self._gain(score, previous) > 0:
            self.best_score.assign(score)
            self.best_step.assign(step)
            path = self.best_manager.save(checkpoint_number=step)
            logging.info("new best dev %s %.2f at step %d: %s", label, score, step, path)
        # Patience counts evaluations without an improvement of more than min_delta.
        if self._gain(score, previous) > float(self.train.early_stopping_min_delta):
            self.evals_since_best.assign(0)
        else:
            self.evals_since_best.assign_add(1)
        if self._gain(score, previous) <= 0:
            since = int(self.evals_since_best)
            best, at = float(self.best_score), int(self.best_step)
            logging.info(
                "dev %s %.2f; best %.2f at step %d (%d evaluations ago)",
                label, score, best, at, since,
            )  # fmt: skip
            plateau = self.train.lr_schedule == "plateau"
            if plateau and since % int(self.train.plateau_patience) == 0:
                lr_scale.assign(lr_scale * self.train.plateau_factor)
                logging.info("plateau: learning rate now %.3g of the schedule", lr_scale.numpy())
        with tf.io.gfile.GFile(os.path.join(self.workdir, BEST_FILE), "w") as f:
            best = float(self.best_score)
            record = {"step": int(self.best_step), "metric": name, name: best, "last": metrics}
            json.dump(record, f, indent=2)
        patience = int(self.train.early_stopping_patience)
        if patience and int(self.evals_since_best) >= patience:
            logging.info(
                "early stopping: no dev %s better by more than %g in %d evaluations "
                "(best %.2f at step %d)",
                label,
                float(self.train.early_stopping_min_delta),
                patience,
                float(self.best_score),
                int(self.best_step),
            )
            return True
        return False
