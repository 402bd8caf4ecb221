"""DevTracker: the best checkpoint by the evaluator's metric, plateaus, early stopping."""

import json

import pytest
import tensorflow as tf

from seq2seq_tf import workdir
from seq2seq_tf.tasks.base import DevEvaluator
from seq2seq_tf.training.dev import DevTracker


class _ScriptedEvaluator(DevEvaluator):
    """Stands in for a task's dev evaluator: returns the next score of a script."""

    def __init__(self, scores, metric="bleu", label="BLEU"):
        self.scores = list(scores)
        self.metric, self.metric_label = metric, label

    def __call__(self, step):
        return {self.metric: self.scores.pop(0), "loss": 1.0 / step}


def _tracker(tmp_path, scores, metric="bleu", **train_fields):
    from seq2seq_tf.config import default_config

    config = default_config()
    for key, value in train_fields.items():
        config.train[key] = value
    weights = tf.Variable([0.0])
    step = tf.Variable(0, dtype=tf.int64)
    evaluator = _ScriptedEvaluator(scores, metric, metric.upper())
    tracker = DevTracker(evaluator, config, str(tmp_path), weights, step)
    return tracker, weights, step


def test_best_checkpoint_holds_the_best_dev_bleu_and_plateau_halves_the_rate(tmp_path):
    tracker, weights, step = _tracker(
        tmp_path, [10.0, 12.0, 11.0, 12.0, 9.0, 8.0], lr_schedule="plateau", plateau_patience=2
    )
    lr_scale = tf.Variable(1.0)
    decisions = []
    for current, marker in zip(range(100, 700, 100), range(1, 7)):
        step.assign(current)
        weights.assign([float(marker)])
        decisions.append(tracker(current, lr_scale))
    assert decisions == [False] * 6  # no early stopping configured
    assert (int(tracker.best_step), float(tracker.best_score)) == (200, 12.0)  # ties do not win
    assert int(tracker.evals_since_best) == 4
    assert int(tracker.last_eval_step) == 600
    assert float(lr_scale) == pytest.approx(0.25)  # halved after 2 and after 4 bad evaluations
    best = tf.train.latest_checkpoint(str(tmp_path / workdir.BEST_DIR))
    assert best.endswith("best-200")
    assert tf.train.load_checkpoint(best).get_tensor("model/.ATTRIBUTES/VARIABLE_VALUE")[0] == 2.0
    assert tf.train.load_checkpoint(best).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 200
    with open(tmp_path / workdir.BEST_FILE) as f:
        stored = json.load(f)
    assert stored["step"] == 200 and stored["metric"] == "bleu" and stored["bleu"] == 12.0
    assert stored["last"] == {"bleu": 8.0, "loss": 1.0 / 600}  # the last evaluation's metrics


def test_early_stopping_after_patience_evaluations_without_a_new_best(tmp_path):
    tracker, _, step = _tracker(tmp_path, [5.0, 4.0, 6.0, 6.0, 5.0], early_stopping_patience=2)
    lr_scale = tf.Variable(1.0)
    decisions = [tracker(s, lr_scale) for s in (1, 2, 3, 4, 5)]
    assert decisions == [False, False, False, False, True]
    assert float(lr_scale) == 1.0  # not a plateau schedule


def test_a_new_best_by_less_than_min_delta_is_kept_but_does_not_reset_patience(tmp_path):
    scores = [10.0, 99.0, 99.3, 99.6, 100.0]
    tracker, weights, step = _tracker(
        tmp_path, scores, early_stopping_patience=2, early_stopping_min_delta=0.5
    )
    lr_scale = tf.Variable(1.0)
    decisions = []
    for current in (1, 2, 3, 4):
        step.assign(current)
        decisions.append(tracker(current, lr_scale))
    # 99.3 and 99.6 improve by < 0.5: patience runs out at step 4; each is still the best.
    assert decisions == [False, False, False, True]
    assert float(tracker.best_score) == pytest.approx(99.6) and int(tracker.best_step) == 4


def test_the_evaluator_names_the_metric_and_the_counters_are_checkpointed(tmp_path):
    tracker, _, step = _tracker(tmp_path, [0.5, 0.75, 0.6], metric="accuracy")
    lr_scale = tf.Variable(1.0)
    for current in (1, 2, 3):
        step.assign(current)
        tracker(current, lr_scale)
    with open(tmp_path / workdir.BEST_FILE) as f:
        stored = json.load(f)
    assert stored["metric"] == "accuracy" and stored["accuracy"] == 0.75 and stored["step"] == 2
    assert "bleu" not in stored
    # What a resumed run needs to decide the same: all in the training checkpoint.
    variables = tracker.variables()
    assert set(variables) == {"best_score", "best_step", "evals_since_best", "last_eval_step"}
    path = tf.train.Checkpoint(**variables).write(str(tmp_path / "tracker"))
    resumed, _, _ = _tracker(tmp_path / "resumed", [], metric="accuracy")
    tf.train.Checkpoint(**resumed.variables()).read(path).assert_consumed()
    assert float(resumed.best_score) == 0.75 and int(resumed.best_step) == 2
    assert int(resumed.evals_since_best) == 1 and int(resumed.last_eval_step) == 3


def test_a_lower_is_better_metric_keeps_the_lowest_score(tmp_path):
    from seq2seq_tf.config import default_config

    config = default_config()
    config.train.early_stopping_patience = 2
    evaluator = _ScriptedEvaluator([2.5, 1.9, 2.0, 1.7, 1.8, 1.75], "bits_per_char", "bits/char")
    evaluator.higher_is_better = False
    weights, step = tf.Variable([0.0]), tf.Variable(0, dtype=tf.int64)
    tracker = DevTracker(evaluator, config, str(tmp_path), weights, step)
    lr_scale = tf.Variable(1.0)
    decisions = []
    for current in range(1, 7):
        step.assign(current)
        weights.assign([float(current)])
        decisions.append(tracker(current, lr_scale))
    assert int(tracker.best_step) == 4 and float(tracker.best_score) == pytest.approx(1.7)
    assert decisions == [False] * 5 + [True]  # two evaluations above 1.7: early stop
    best = tf.train.latest_checkpoint(str(tmp_path / workdir.BEST_DIR))
    assert tf.train.load_checkpoint(best).get_tensor("model/.ATTRIBUTES/VARIABLE_VALUE")[0] == 4.0
