"""Learning-rate schedules: warmup then constant, cosine or inverse sqrt; plateau and clock
factors."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.config import default_config
from seq2seq_tf.training import schedules


def test_inverse_sqrt_schedule_warms_up_then_decays():
    schedule = schedules.InverseSqrtSchedule(1e-3, warmup_steps=100)
    values = [float(schedule(s)) for s in (0, 49, 99, 399, 9999)]
    np.testing.assert_allclose(values, [1e-5, 5e-4, 1e-3, 5e-4, 1e-4], rtol=1e-5)


def test_time_decay_factor_holds_then_falls_linearly_to_zero():
    factors = [schedules.time_decay_factor(t, 100.0, 0.25) for t in (0, 50, 75, 87.5, 100, 120)]
    np.testing.assert_allclose(factors, [1.0, 1.0, 1.0, 0.5, 0.0, 0.0])
    assert schedules.time_decay_factor(99.0, 100.0, 0.0) == 1.0  # off
    assert schedules.time_decay_factor(99.0, 0.0, 0.5) == 1.0  # no time budget


def _schedule(kind: str, warmup: int):
    config = default_config()
    config.train.lr_schedule = kind
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = warmup
    config.train.num_steps = 1010
    return schedules.make_schedule(config)


@pytest.mark.parametrize(
    "kind,warmup,steps,expected",
    [
        ("constant", 0, (0, 1, 500), (1e-3, 1e-3, 1e-3)),
        ("constant", 10, (0, 5, 10, 500), (1e-4, 5.5e-4, 1e-3, 1e-3)),
        ("plateau", 10, (0, 10, 500), (1e-4, 1e-3, 1e-3)),  # constant; the tracker lowers it
        ("cosine", 10, (0, 5, 10, 510, 1010), (0.0, 5e-4, 1e-3, 5.05e-4, 1e-5)),
        (
            "cosine",
            0,
            (0, 500, 1010),
            (1e-3, 1e-3 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 500 / 1010))), 1e-5),
        ),
        ("inverse_sqrt", 10, (9, 39), (1e-3, 5e-4)),
    ],
)
def test_make_schedule_warms_up_then_follows_its_kind(kind, warmup, steps, expected):
    schedule = _schedule(kind, warmup)
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-5, atol=1e-9)


def test_scaled_schedule_multiplies_by_the_plateau_and_clock_factors():
    base = _schedule("constant", 0)
    scale, time_scale = tf.Variable(1.0), tf.Variable(1.0)
    schedule = schedules.ScaledSchedule(base, scale, time_scale)
    assert float(schedule(5)) == pytest.approx(1e-3)
    scale.assign(0.5)
    time_scale.assign(0.2)
    assert float(schedule(5)) == pytest.approx(1e-4)
    assert float(schedules.ScaledSchedule(base, scale)(5)) == pytest.approx(5e-4)
