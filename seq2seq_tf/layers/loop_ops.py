"""The speed tricks of training loops; the only module that knows them.

A recurrent layer multiplies by the same kernels at every step of a
`tf.while_loop`. Autodiff of such a loop does two costly things that the
forward pass does not need:

1. Each step's input gradient dz W^T multiplies by a transposed operand. On CPU
   that runs about 3.5x slower than the same product against a matrix stored
   transposed (TF 2.21, 64x2048 @ 2048x512: 7.2 ms vs 2.0 ms). Here each
   kernel is transposed once per sequence, outside the loop
   (`matmul_pretransposed`).
2. Each step adds a batch-deep outer product x_t^T dz_t into a kernel-sized
   accumulator: a small matmul and a full pass over the kernel's memory per
   step. Where a product goes straight into a pre-activation, the loop keeps
   its inputs instead, and one (time x batch)-deep matmul after the loop gives
   the kernel's gradient (`DeferredKernel`, `gradient_sink`; measured 1.09x
   target tokens/s on rnn-base).

Layers use them through one interface, `LoopKernels`: they name the kernels
their step multiplies by and which of them add into the same pre-activation
(a group), then write their step as if every product were `x @ W`:

    kernels = LoopKernels(named, dtype, training=True, groups=groups)
    hoisted = kernels.add_sink("layer_0", hoisted)        # pre-activation made before the loop
    outputs, state = kernels.scan(step_fn, hoisted, state)  # step_fn(x_t, state, view)
    # in step_fn: view.matmul("recurrent_0", h) and pre + view.sink("layer_1")

With `training=False` the same calls are plain matmuls and no sinks, so search
and inference run the step body unchanged. Every fast form has a test of
equality (values and gradients) with the plain one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import tensorflow as tf
from keras import ops

_OPTIONS = {"defer_weight_gradients": True}


@contextlib.contextmanager
def options(defer_weight_gradients: bool = True) -> Iterator[None]:
    """Scoped choice of the tricks, read when a training loop is traced.

    `defer_weight_gradients=False` keeps per-step kernel gradients (pretransposed
    kernels only); benchmarks use it to measure what deferral buys.
    """
    previous = dict(_OPTIONS)
    _OPTIONS["defer_weight_gradients"] = bool(defer_weight_gradients)
    try:
        yield
    finally:
        _OPTIONS.update(previous)


@tf.custom_gradient
def matmul_pretransposed(x, kernel, kernel_t):
    """x @ kernel whose gradient multiplies by `kernel_t` (kernel transposed) as is.

    `kernel_t` gets no gradient: `kernel`'s is complete.
    """

    def grad(upstream):
        return (
            tf.matmul(upstream, kernel_t),
            tf.matmul(x, upstream, transpose_a=True),
            tf.zeros_like(kernel_t),
        )

    return tf.matmul(x, kernel), grad


def pretransposed(kernel) -> tuple[tf.Tensor, tf.Tensor]:
    """`(kernel, kernel transposed)` for `matmul_pretransposed`, made once outside a loop."""
    kernel = tf.convert_to_tensor(kernel)
    return kernel, tf.transpose(kernel)


class DeferredKernel:
    """x @ kernel inside a training loop, with the kernel's gradient taken after the loop.

    Each step multiplies by a gradient-free kernel (its input gradient by the
    stored transpose) and the loop keeps its inputs; `gradient_sink` adds zeros to
    the pre-activation whose gradient is every step's dz at once, and turns them
    into the kernel's gradient. `inputs` (every step's input, laid out as the
    sink, `[..., in]`) is set after the loop: the backward pass reads it, and it
    runs after the whole forward pass.
    """

    def __init__(self, kernel, kernel_t=None):
        self.kernel = tf.convert_to_tensor(kernel)
        kernel_t = tf.transpose(self.kernel) if kernel_t is None else kernel_t
        # Made once, outside the loop; the gradient-carrying `kernel` goes to the sink.
        self._frozen = tf.stop_gradient(self.kernel), tf.stop_gradient(kernel_t)
        self.inputs = None

    def __call__(self, x):
        kernel, kernel_t = self._frozen

        @tf.custom_gradient
        def product(x):
            return tf.matmul(x, kernel), lambda upstream: tf.matmul(upstream, kernel_t)

        return product(x)


def gradient_sink(deferred: list[DeferredKernel], shape, dtype) -> tf.Tensor:
    """Zeros of `shape` (`[..., out]`) to add to the pre-activation x @ kernel of `deferred`.

    Their gradient is the loop's output gradients dz for all steps; from it each
    kernel gets inputs^T dz, reading `DeferredKernel.inputs`.
    """

    @tf.custom_gradient
    def sink(*kernels):
        def grad(upstream):
            flat = tf.reshape(upstream, [-1, tf.shape(upstream)[-1]])
            return [
                tf.matmul(tf.reshape(d.inputs, [-1, tf.shape(d.kernel)[0]]), flat, transpose_a=True)
                for d in deferred
            ]

        return tf.zeros(shape, dtype), grad

    return sink(*[d.kernel for d in deferred])


class LoopKernels:
    """The kernels one loop multiplies by, in the form its mode makes fastest.

    Args:
        kernels: name -> kernel `[in, out]` (a variable or a slice of one).
        dtype: compute dtype of the loop.
        training: False: plain matmuls (search, inference). True: pretransposed
            kernels, and deferred weight gradients when `groups` is given and
            `options(defer_weight_gradients=...)` allows.
        groups: pre-activation name -> names of the kernels whose products are
            added straight into it (nothing between the matmul and the sum). Only
            layers whose every product is additive pass groups.
    """

    def __init__(
        self,
        kernels: Mapping[str, tf.Tensor],
        dtype,
        training: bool = False,
        groups: Mapping[str, tuple[str, ...]] | None = None,
    ):
        self.dtype = dtype
        self.training = bool(training)
        self.deferred = bool(training and groups and _OPTIONS["defer_weight_gradients"])
        self.groups = dict(groups or {}) if self.deferred else {}
        if not self.training:
            self._products = {name: _plain(kernel) for name, kernel in kernels.items()}
        elif not self.deferred:
            self._products = {
                name: _pretransposed_product(ops.cast(kernel, dtype))
                for name, kernel in kernels.items()
            }
        else:
            grouped = {name for names in self.groups.values() for name in names}
            if set(kernels) != grouped:  # a kernel without a sink would get no gradient
                raise ValueError(f"kernels {sorted(set(kernels) ^ grouped)} are not in one group")
            self._products = {
                name: DeferredKernel(*pretransposed(ops.cast(kernel, dtype)))
                for name, kernel in kernels.items()
            }
        self._hoisted: set[str] = set()

    def matmul(self, name: str, x):
        """x @ kernels[name] (outside `scan`: a loop that rebuilds inputs, see `set_inputs`)."""
        return self._products[name](x)

    def product(self, name: str) -> Callable:
        """`x -> x @ kernels[name]`, for a cell's `matmul` argument."""
        return self._products[name]

    def add_sink(self, group: str, preactivation):
        """A pre-activation computed for every step before the loop, with its group's sink."""
        if not self.deferred:
            return preactivation
        self._hoisted.add(group)
        members = [self._products[name] for name in self.groups[group]]
        return preactivation + gradient_sink(members, ops.shape(preactivation), preactivation.dtype)

    def set_inputs(self, name: str, inputs) -> None:
        """Every step's input of kernel `name`, laid out as its sink, for a loop run elsewhere."""
        if self.deferred:
            self._products[name].inputs = tf.stop_gradient(inputs)

    def scan(self, step_fn: Callable, inputs, state):
        """Runs `step_fn(x_t, state, view) -> (output_t, state)` over time-major inputs.

        Args:
            inputs: `[time, batch, ...]`.
            state: any nest of tensors.

        Returns:
            `(outputs [time, batch, ...], final state)`.
        """
        steps, batch = tf.shape(inputs)[0], tf.shape(inputs)[1]
        per_step = [g for g in self.groups if g not in self._hoisted]
        sinks = {}
        for group in per_step:
            members = [self._products[name] for name in self.groups[group]]
            shape = [steps, batch, tf.shape(members[0].kernel)[1]]
            zeros = gradient_sink(members, shape, inputs.dtype)
            sinks[group] = tf.TensorArray(inputs.dtype, size=steps).unstack(zeros)
        recorded = sorted({name for names in self.groups.values() for name in names})
        # Read through a TensorArray: the gradient of inputs[t] would build a
        # full-size zero tensor at every step.
        inputs_ta = tf.TensorArray(inputs.dtype, size=steps).unstack(inputs)
        outputs = tf.TensorArray(inputs.dtype, size=steps)
        records = [tf.TensorArray(inputs.dtype, size=steps) for _ in recorded]

        def body(t, loop_state, outputs, records):
            view = _StepView(self, {g: ta.read(t) for g, ta in sinks.items()})
            output, loop_state = step_fn(inputs_ta.read(t), loop_state, view)
            records = [ta.write(t, view.recorded[name]) for ta, name in zip(records, recorded)]
            return t + 1, loop_state, outputs.write(t, output), records

        _, state, outputs, records = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), state, outputs, records),
            maximum_iterations=steps,  # lets XLA size the TensorArrays
        )
        for name, ta in zip(recorded, records):
            self._products[name].inputs = tf.stop_gradient(ta.stack())  # [steps, batch, in]
        return outputs.stack(), state

    def view(self) -> _StepView:
        """The per-step interface outside `scan` (one step of search): plain products."""
        return _StepView(self, {})


class _StepView:
    """What a step body sees: `matmul(name, x)` and `sink(group)`."""

    def __init__(self, kernels: LoopKernels, sinks: dict):
        self._kernels = kernels
        self._sinks = sinks
        self.recorded: dict = {}

    def matmul(self, name: str, x):
        self.recorded[name] = x
        return self._kernels.matmul(name, x)

    def product(self, name: str) -> Callable:
        return lambda x: self.matmul(name, x)

    def sink(self, group: str, preactivation):
        """The pre-activation with this step's sink added (unchanged when not deferred)."""
        sink = self._sinks.get(group)
        return preactivation if sink is None else preactivation + sink


def _plain(kernel) -> Callable:
    return lambda x: ops.matmul(x, ops.cast(kernel, x.dtype))


def _pretransposed_product(kernel) -> Callable:
    pair = pretransposed(kernel)
    return lambda x: matmul_pretransposed(x, *pair)
