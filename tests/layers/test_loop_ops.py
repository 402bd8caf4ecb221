"""The training loops' fast forms: each one changes no value and no gradient."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.layers import loop_ops
from seq2seq_tf.layers.loop_ops import (
    DeferredKernel,
    LoopKernels,
    gradient_sink,
    matmul_pretransposed,
    pretransposed,
)


def test_matmul_pretransposed_has_the_plain_matmul_gradients():
    x = tf.random.normal([3, 5], seed=1)
    kernel = tf.random.normal([5, 7], seed=2)
    upstream = tf.random.normal([3, 7], seed=3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        fast = matmul_pretransposed(x, *pretransposed(kernel))
        plain = tf.matmul(x, kernel)
        fast_sum, plain_sum = tf.reduce_sum(fast * upstream), tf.reduce_sum(plain * upstream)
    np.testing.assert_allclose(fast, plain, atol=1e-6)
    for a, b in zip(tape.gradient(fast_sum, [x, kernel]), tape.gradient(plain_sum, [x, kernel])):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_deferred_kernel_gradient_is_taken_once_through_the_sink():
    xs = tf.random.normal([4, 3, 5], seed=1)  # 4 steps of [batch 3, in 5]
    kernel = tf.random.normal([5, 7], seed=2)
    upstream = tf.random.normal([4, 3, 7], seed=3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xs, kernel])
        deferred = DeferredKernel(kernel)
        sink = gradient_sink([deferred], [4, 3, 7], tf.float32)
        fast = tf.stack([deferred(xs[t]) + sink[t] for t in range(4)])
        deferred.inputs = xs  # what a loop records, step by step
        plain = tf.einsum("tbi,io->tbo", xs, kernel)
        fast_sum, plain_sum = tf.reduce_sum(fast * upstream), tf.reduce_sum(plain * upstream)
    np.testing.assert_array_equal(sink, tf.zeros([4, 3, 7]))
    np.testing.assert_allclose(fast, plain, atol=1e-5)
    for a, b in zip(tape.gradient(fast_sum, [xs, kernel]), tape.gradient(plain_sum, [xs, kernel])):
        np.testing.assert_allclose(a, b, atol=1e-5)


STEPS, BATCH, UNITS, OUT = 5, 3, 4, 6
MODES = ("plain", "pretransposed", "deferred")


def _scan_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    tensor = lambda *shape: tf.constant(rng.normal(scale=0.7, size=shape), tf.float32)  # noqa: E731
    return {
        "x": tensor(STEPS, BATCH, UNITS),  # time-major pre-activations made before the loop
        "h0": tensor(BATCH, UNITS),
        "U": tf.Variable(tensor(UNITS, UNITS)),
        "W": tf.Variable(tensor(UNITS, OUT)),
        "upstream": tensor(STEPS, BATCH, OUT),
    }


def _kernels(data, mode: str) -> LoopKernels:
    groups = {"recurrence": ("U",), "output": ("W",)}
    return LoopKernels(
        {"U": data["U"], "W": data["W"]},
        tf.float32,
        training=mode != "plain",
        groups=groups if mode == "deferred" else None,
    )


def _run_scan(data, mode: str, graph: bool, deferred: bool | None = None):
    """z_t = x_t + h_{t-1} @ U (hoisted sink), h_t = tanh(z_t), y_t = tanh(h_t @ W) (per-step
    sink); returns the loss, ys, final h, and the gradients w.r.t. x, h0, U and W."""

    def run():
        with tf.GradientTape() as tape:
            tape.watch([data["x"], data["h0"]])
            kernels = _kernels(data, mode)
            expected = mode == "deferred" if deferred is None else deferred
            assert kernels.deferred == expected
            assert kernels.training == (mode != "plain")
            x = kernels.add_sink("recurrence", data["x"])

            def step(x_t, h, view):
                h = tf.tanh(view.sink("recurrence", x_t + view.matmul("U", h)))
                y = tf.tanh(view.sink("output", view.matmul("W", h)))
                return y, h

            ys, h = kernels.scan(step, x, data["h0"])
            loss = tf.reduce_sum(ys * data["upstream"]) + tf.reduce_sum(h * h)
        wrt = [data["x"], data["h0"], data["U"], data["W"]]
        return loss, ys, h, tape.gradient(loss, wrt)

    return tf.function(run)() if graph else run()


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_loop_kernels_modes_give_equal_values_and_gradients(graph, gradient_sinks):
    data = _scan_data()
    results = {mode: _run_scan(data, mode, graph) for mode in MODES}
    # Only the deferred form makes sinks: one hoisted (recurrence), one per-step (output).
    assert len(gradient_sinks) == 2
    loss, ys, h, grads = results["plain"]
    assert ys.shape == (STEPS, BATCH, OUT) and h.shape == (BATCH, UNITS)
    # The plain form against a Python loop of the same recurrence.
    h_ref, ys_ref = data["h0"], []
    for t in range(STEPS):
        h_ref = tf.tanh(data["x"][t] + h_ref @ data["U"])
        ys_ref.append(tf.tanh(h_ref @ data["W"]))
    np.testing.assert_allclose(ys, tf.stack(ys_ref), atol=1e-6)
    np.testing.assert_allclose(h, h_ref, atol=1e-6)
    for mode in MODES[1:]:
        other_loss, other_ys, other_h, other_grads = results[mode]
        np.testing.assert_allclose(other_loss, loss, rtol=1e-6, err_msg=mode)
        np.testing.assert_allclose(other_ys, ys, atol=1e-6, err_msg=mode)
        np.testing.assert_allclose(other_h, h, atol=1e-6, err_msg=mode)
        for name, a, b in zip(["x", "h0", "U", "W"], other_grads, grads):
            assert a is not None, (mode, name)
            assert np.any(np.asarray(b) != 0), name  # every input takes part
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"{mode}: {name}")


def test_options_switch_deferral_off_and_back():
    data = _scan_data()
    assert _kernels(data, "deferred").deferred
    with loop_ops.options(defer_weight_gradients=False):
        kernels = _kernels(data, "deferred")
        assert kernels.training and not kernels.deferred and kernels.groups == {}
        with loop_ops.options(defer_weight_gradients=True):
            assert _kernels(data, "deferred").deferred
        assert not _kernels(data, "deferred").deferred  # the outer choice is restored
    assert _kernels(data, "deferred").deferred


def test_deferral_off_gives_the_deferred_values_and_gradients(gradient_sinks):
    data = _scan_data(1)
    deferred = _run_scan(data, "deferred", graph=True)
    assert len(gradient_sinks) == 2
    with loop_ops.options(defer_weight_gradients=False):
        pretransposed_only = _run_scan(data, "deferred", True, deferred=False)  # groups unused
    assert len(gradient_sinks) == 2
    np.testing.assert_allclose(pretransposed_only[0], deferred[0], rtol=1e-6)
    for a, b in zip(pretransposed_only[3], deferred[3]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_deferred_loop_kernels_need_every_kernel_in_a_group():
    data = _scan_data()
    kernels = {"U": data["U"], "W": data["W"]}
    with pytest.raises(ValueError, match="'W'"):
        LoopKernels(kernels, tf.float32, training=True, groups={"recurrence": ("U",)})
    with pytest.raises(ValueError, match="'V'"):  # a group naming a kernel that is not there
        LoopKernels(kernels, tf.float32, training=True, groups={"g": ("U", "W", "V")})
    # Not deferred, nothing to check: inference, or deferral switched off.
    assert not LoopKernels(kernels, tf.float32, training=False, groups={"g": ("U",)}).deferred
    with loop_ops.options(defer_weight_gradients=False):
        assert not LoopKernels(kernels, tf.float32, training=True, groups={"g": ("U",)}).deferred


def test_view_outside_the_loop_multiplies_plainly():
    data = _scan_data()
    h = data["h0"]
    for mode in MODES:
        view = _kernels(data, mode).view()
        np.testing.assert_allclose(view.matmul("U", h), h @ data["U"], atol=1e-6, err_msg=mode)
        np.testing.assert_allclose(view.product("W")(h), h @ data["W"], atol=1e-6)
        pre = tf.ones((BATCH, OUT))
        np.testing.assert_array_equal(view.sink("output", pre), pre)  # no sink outside scan
