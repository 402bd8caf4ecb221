"""The compiled train step itself (not a stand-in): a poisoned batch changes nothing but
the counters, a good one changes every trained weight, and under mixed_float16 a bad
step lowers the loss scale."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from support import tiny_config

from seq2seq_tf.tasks.translation import TranslationTask
from seq2seq_tf.training import loop


def _setup(toy_data, tmp_path, precision="float32", poison=None):
    """Model, optimizer, the real compiled step and one real batch.

    `poison(model, batch, training) -> extra loss` is added to the task's loss sum.
    """
    config = tiny_config(toy_data, precision=precision)
    task = TranslationTask(config)
    task.prepare(str(tmp_path))
    model, optimizer = loop.build_training(config, task.build_model)
    batch = next(iter(task.train_dataset()))

    def loss_sums(model, batch, training):
        loss_sum, nll_sum, tokens = task.loss_sums(model, batch, training)
        if poison is not None:
            loss_sum = loss_sum + poison(model, batch, training)
        return loss_sum, nll_sum, tokens

    signature = tuple(tf.TensorSpec(t.shape, t.dtype) for t in batch)
    step = loop.make_train_step(model, optimizer, config, loss_sums, signature)
    return model, optimizer, step, batch


def _state(model, optimizer) -> list[np.ndarray]:
    """Every model weight and every optimizer variable (slots, iterations, loss scale)."""
    return [np.array(v.numpy()) for v in [*model.weights, *optimizer.variables]]


def _same(before, after) -> bool:
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after))


def _embedding(model):
    return next(w for w in model.trainable_variables if "embedding" in w.path)


def test_a_good_step_changes_every_trained_weight_and_counts(toy_data, tmp_path):
    model, optimizer, step, batch = _setup(toy_data, tmp_path)
    before = [w.numpy().copy() for w in model.trainable_variables]
    *sums, applied = step(*batch)
    assert bool(applied) and np.isfinite(float(sums[0])) and int(optimizer.iterations) == 1
    unchanged = [
        w.path for w, b in zip(model.trainable_variables, before) if np.array_equal(w.numpy(), b)
    ]
    assert unchanged == []


def test_a_nan_in_the_batch_s_embedding_rows_is_skipped_and_changes_nothing(toy_data, tmp_path):
    model, optimizer, step, batch = _setup(toy_data, tmp_path)
    step(*batch)  # one good step first: Adam's slots are not all zero
    embedding = _embedding(model)
    token = int(batch[0][0, 0])
    row = embedding[token].numpy()
    embedding[token].assign(np.full_like(row, np.nan))
    before = _state(model, optimizer)
    *sums, applied = step(*batch)
    assert not bool(applied) and not np.isfinite(float(sums[0]))
    assert _same(before, _state(model, optimizer))  # weights, slots and iterations
    embedding[token].assign(row)
    *_, applied = step(*batch)
    assert bool(applied) and int(optimizer.iterations) == 2


def _inf_gradient(model, batch, training):
    """A finite loss term (0) whose gradient is NaN: d/dw sqrt(|w| * 0) at w = 0 * inf."""
    first = _embedding(model)[0, 0]
    return tf.cast(tf.sqrt(tf.abs(first) * 0.0), tf.float32)


def test_a_non_finite_gradient_with_a_finite_loss_is_skipped_and_changes_nothing(
    toy_data, tmp_path
):
    model, optimizer, step, batch = _setup(toy_data, tmp_path, poison=_inf_gradient)
    before = _state(model, optimizer)
    *sums, applied = step(*batch)
    assert np.isfinite(float(sums[0])) and not np.isfinite(float(sums[3]))  # loss ok, |g| not
    assert not bool(applied)
    assert _same(before, _state(model, optimizer))


def test_mixed_float16_lowers_the_loss_scale_on_a_bad_step_and_changes_no_weight(
    toy_data, tmp_path
):
    model, optimizer, step, batch = _setup(toy_data, tmp_path, "mixed_float16", _inf_gradient)
    scale = float(optimizer.dynamic_scale)
    weights = [w.numpy().copy() for w in model.trainable_variables]
    *_, applied = step(*batch)
    assert not bool(applied)
    assert float(optimizer.dynamic_scale) == pytest.approx(scale / 2)
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_variables, weights))


def test_mixed_float16_good_steps_update_the_float32_weights(toy_data, tmp_path):
    model, optimizer, step, batch = _setup(toy_data, tmp_path, "mixed_float16")
    before = [w.numpy().copy() for w in model.trainable_variables]
    for _ in range(2):
        *sums, applied = step(*batch)
        assert bool(applied) and np.isfinite(float(sums[0]))
    changed = [not np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_variables, before)]
    assert all(changed) and {w.dtype for w in model.trainable_variables} == {"float32"}


def test_clip_norm_bounds_the_applied_update(toy_data, tmp_path):
    """train.clip_norm: the optimizer receives gradients of that global norm (Adam's
    update hides their size, so the check is on what it is handed); the step
    reports the norm before clipping."""
    config_clip = 1e-3
    model, optimizer, step, batch = _setup(toy_data, tmp_path)
    seen = tf.Variable(-1.0)  # written inside the compiled step
    original = optimizer.apply

    def spy(grads, variables=None):
        seen.assign(tf.linalg.global_norm([tf.convert_to_tensor(g) for g in grads]))
        return original(grads, variables)

    optimizer.apply = spy
    step_clipped = loop.make_train_step(
        model,
        optimizer,
        tiny_config(toy_data, clip_norm=config_clip),
        TranslationTask(tiny_config(toy_data)).loss_sums,
        tuple(tf.TensorSpec(t.shape, t.dtype) for t in batch),
    )
    *sums, applied = step_clipped(*batch)
    assert bool(applied) and float(sums[3]) > 10 * config_clip  # the raw norm is reported
    assert float(seen) == pytest.approx(config_clip, rel=1e-3)
