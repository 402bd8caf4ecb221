"""Our recurrent cells, and the layer that runs one over a whole sequence.

A cell splits its step into two parts: `project_inputs` (x W + b), which does
not depend on the previous state, and `recurrent_step`, which does. Over a
whole sequence, `Recurrent` projects all time steps in one matmul and runs only
`recurrent_step` inside `keras.layers.RNN`'s loop. Step by step (search),
`call` does both.

`LSTMCell`, `GRUCell` and `SimpleRNNCell` use the weight shapes, names and gate
orders of their `keras.layers` twins, so keras weights load unchanged.

Dropout (`dropout` on the inputs, `recurrent_dropout` on h_{t-1} before the
recurrent matmul) is variational, as in keras (Gal & Ghahramani, 2016): one mask
per sequence, reused at every step. Because the input projection is hoisted out
of the loop, the input mask is applied to the inputs *before* `project_inputs`,
and the recurrent mask travels through the loop as an extra, never-changing
state; `Recurrent` does both. Masks are drawn by `get_dropout_masks`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _check_rate(name: str, rate: float) -> float:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate}")
    return float(rate)


def _last_dim(x):
    """Static last dimension when known, else the dynamic one."""
    return x.shape[-1] if x.shape[-1] is not None else ops.shape(x)[-1]


@tf.custom_gradient
def matmul_pretransposed(x, kernel, kernel_t):
    """x @ kernel whose gradient multiplies by `kernel_t` (kernel transposed) as is.

    On CPU a matmul against a transposed operand runs about 3.5x slower than
    against the same matrix stored transposed (TF 2.21, 64x2048 @ 2048x512:
    7.2 ms vs 2.0 ms), and the input gradient of every matmul inside a
    training loop is exactly that product. Transposing the kernel once per
    sequence, outside the loop, and handing it in keeps the loop's backward
    pass on the fast form. `kernel_t` gets no gradient: `kernel`'s is complete.
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

    Autodiff of a loop gives a kernel used at every step its gradient step by
    step: a batch-deep outer product x_t^T dz_t per step, added into an
    accumulator the size of the kernel, i.e. a small matmul and a full pass over
    the kernel's memory per step. Here each step multiplies by a gradient-free
    kernel (its input gradient by the stored transpose, as `matmul_pretransposed`)
    and the loop keeps its inputs; `gradient_sink` adds zeros to the step outputs
    whose gradient is every step's dz at once, and turns them into the kernel's
    gradient with one (time x batch)-deep matmul.

    The loop sets `recorded` (this step's input, via `__call__`) and, after the
    loop, `inputs`: every step's input, laid out as the sink (`[..., in]`).
    """

    def __init__(self, kernel, kernel_t=None):
        self.kernel = tf.convert_to_tensor(kernel)
        kernel_t = tf.transpose(self.kernel) if kernel_t is None else kernel_t
        # Made once, outside the loop; the gradient-carrying `kernel` goes to the sink.
        self._frozen = tf.stop_gradient(self.kernel), tf.stop_gradient(kernel_t)
        self.recorded = None
        self.inputs = None

    def __call__(self, x):
        self.recorded = x
        kernel, kernel_t = self._frozen

        @tf.custom_gradient
        def product(x):
            return tf.matmul(x, kernel), lambda upstream: tf.matmul(upstream, kernel_t)

        return product(x)


def gradient_sink(deferred: list[DeferredKernel], shape, dtype) -> tf.Tensor:
    """Zeros of `shape` ([..., out]) to add to the outputs x @ kernel of `deferred`.

    Their gradient is the loop's output gradients dz for all steps; from it each
    kernel gets inputs^T dz, reading `DeferredKernel.inputs`, which the caller sets
    after the loop (the backward pass runs after the whole forward pass).
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


def loop_matmul(x, kernel, pair=None):
    """x @ kernel; with `pair` from `pretransposed(kernel)` or a `DeferredKernel`,
    a form whose gradient is faster inside a training loop."""
    if pair is None:
        return ops.matmul(x, ops.cast(kernel, x.dtype))
    if isinstance(pair, DeferredKernel):
        return pair(x)
    return matmul_pretransposed(x, *pair)


class RecurrentCell(keras.layers.Layer):
    """Plumbing shared by our cells: states, dropout masks, `call`, config.

    Subclasses set `num_states` and implement `build`, `project_inputs` and
    `recurrent_step(projected, states, recurrent_mask=None, kernels=None)`.

    Args:
        units: size of each state and of the output.
        dropout: input dropout rate (only with `training=True`).
        recurrent_dropout: rate of dropout on h_{t-1} before the recurrent
            matmul (only with `training=True`).
        seed: seed of the dropout masks; a seed generator (a non-trainable
            variable) exists only when a rate is non-zero, so dropout-free cells
            keep exactly the variables of the original LSTM cell.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, input_dim]`.
        states: list of `num_states` tensors, each `[batch, units]`.
        training: dropout is active only when true.
        dropout_masks: optional `(input_mask, recurrent_mask)` from
            `get_dropout_masks`, for a caller stepping through a sequence who
            wants the same masks at every step. Without it, a training call
            draws fresh masks (i.e. not variational across calls).

    Returns:
        `(output [batch, units], new_states)`, the states as a list.
    """

    num_states = 1
    # project_inputs is x W + input_bias (the decoder splits W by input rows to hoist part).
    affine_inputs = True
    # recurrent_step adds h_in @ recurrent_kernel to `projected` before anything else,
    # so the gradient of `projected` is that matmul's output gradient (see DeferredKernel).
    additive_recurrence = False

    @property
    def input_bias(self):
        """b of project_inputs' x W + b (for cells whose projection is affine)."""
        return self.bias

    def __init__(
        self,
        units: int,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.state_size = [units] * self.num_states
        self.output_size = units
        if self.dropout > 0 or self.recurrent_dropout > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def project_inputs(self, inputs: tf.Tensor, kernels=None) -> tf.Tensor:
        """The state-independent part of a step, x W + input_bias, for `[..., input_dim]`.

        `kernels`: `pretransposed(self.kernel)` made once outside a training loop
        (2-D inputs only; see `matmul_pretransposed`).
        """
        return loop_matmul(inputs, self.kernel, kernels) + ops.cast(self.input_bias, inputs.dtype)

    def recurrent_step(self, projected: tf.Tensor, states, recurrent_mask=None, kernels=None):
        """One step from `project_inputs`' output and the previous states.

        `kernels`: `loop_kernels()` made once outside a training loop (faster
        backward pass); None computes the same thing directly.
        """
        raise NotImplementedError

    def loop_kernels(self, dtype="float32"):
        """The recurrent kernel and its transpose, for `recurrent_step(kernels=...)`."""
        return pretransposed(ops.cast(self.recurrent_kernel, dtype))

    def get_dropout_masks(
        self, batch_size, input_dim: int, training: bool | None = None
    ) -> tuple[tf.Tensor | None, tf.Tensor | None]:
        """Draws `(input_mask [batch, input_dim], recurrent_mask [batch, units])`.

        Masks hold 0 or 1 / (1 - rate) (inverted dropout, so no rescaling at
        inference). Each is None when not training or its rate is 0, so callers
        skip the multiply entirely at inference.
        """
        input_mask = recurrent_mask = None
        if training and self.dropout > 0:
            input_mask = keras.random.dropout(
                ops.ones((batch_size, input_dim), self.compute_dtype),
                self.dropout,
                seed=self.seed_generator,
            )
        if training and self.recurrent_dropout > 0:
            recurrent_mask = keras.random.dropout(
                ops.ones((batch_size, self.units), self.compute_dtype),
                self.recurrent_dropout,
                seed=self.seed_generator,
            )
        return input_mask, recurrent_mask

    def call(self, inputs, states, training=None, dropout_masks=None):
        states = list(states)
        if not training:
            input_mask = recurrent_mask = None
        elif dropout_masks is None:
            batch_size = ops.shape(inputs)[0]
            input_mask, recurrent_mask = self.get_dropout_masks(
                batch_size, _last_dim(inputs), training
            )
        else:
            input_mask, recurrent_mask = dropout_masks
        if input_mask is not None:
            inputs = inputs * ops.cast(input_mask, inputs.dtype)
        return self.recurrent_step(self.project_inputs(inputs), states, recurrent_mask)

    def get_initial_state(self, batch_size=None) -> list[tf.Tensor]:
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
            for _ in range(self.num_states)
        ]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }

    def _recurrent_input(self, h_prev, recurrent_mask):
        """h_{t-1} as the recurrent matmul sees it (dropped out or not)."""
        if recurrent_mask is None:
            return h_prev
        return h_prev * ops.cast(recurrent_mask, h_prev.dtype)


def _forget_bias_init(units: int):
    def init(shape, dtype=None):
        # Forget-gate bias 1 (Jozefowicz et al., 2015), as keras' unit_forget_bias.
        return ops.concatenate(
            [
                ops.zeros((units,), dtype),
                ops.ones((units,), dtype),
                ops.zeros((2 * units,), dtype),
            ]
        )

    return init


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class LSTMCell(RecurrentCell):
    """Standard LSTM cell (Hochreiter & Schmidhuber) with forget-gate bias 1.

    Gate order (i, f, c, o) and weights match `keras.layers.LSTMCell`.
    States are `[h, c]`; returns `(h, [h, c])`. See `RecurrentCell` for the
    arguments.
    """

    num_states = 2
    additive_recurrence = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(
            shape=(4 * self.units,), initializer=_forget_bias_init(self.units), name="bias"
        )

    def recurrent_step(self, projected, states, recurrent_mask=None, kernels=None):
        """One step from projected inputs `[batch, 4 * units]` and `[h, c]`."""
        h_prev, c_prev = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        z = projected + loop_matmul(h_in, self.recurrent_kernel, kernels)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class GRUCell(RecurrentCell):
    """GRU cell (Cho et al., 2014), equal to `keras.layers.GRUCell`.

    Gate order (z, r, h) and weights match keras: kernel `[input_dim, 3 * units]`,
    recurrent_kernel `[units, 3 * units]`, bias `[2, 3 * units]` (input and
    recurrent bias) when `reset_after`, else `[3 * units]`.

    With `reset_after=True` (keras' default, the cuDNN variant) the reset gate
    scales h U_h + b_h after the matmul, so the whole h U is one matmul per step.
    With `reset_after=False` (the original paper) the candidate's recurrent part
    is (r * h_{t-1}) U_h, which depends on r and therefore on the state: only
    x W + b_input is hoisted into `project_inputs`, and each step does two
    recurrent matmuls (one for z and r, one for the candidate).

    Args:
        units: size of h.
        reset_after: where the reset gate is applied, see above.
        **kwargs: `dropout`, `recurrent_dropout`, `seed` and layer arguments,
            see `RecurrentCell`.

    States are `[h]`; returns `(h, [h])`.
    """

    num_states = 1

    def __init__(self, units: int, reset_after: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 3 * self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        bias_shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self.bias = self.add_weight(shape=bias_shape, initializer="zeros", name="bias")

    @property
    def input_bias(self):
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_step(self, projected, states, recurrent_mask=None, kernels=None):
        """One step from projected inputs `[batch, 3 * units]` and `[h]`.

        Without `reset_after` the recurrent matmul is split by columns and
        `kernels` is not used.
        """
        (h_prev,) = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        kernel = ops.cast(self.recurrent_kernel, h_in.dtype)
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        if self.reset_after:
            inner = loop_matmul(h_in, self.recurrent_kernel, kernels)
            inner = inner + ops.cast(self.bias[1], h_in.dtype)
            r_z, r_r, r_h = ops.split(inner, 3, axis=-1)
            z = ops.sigmoid(x_z + r_z)
            r = ops.sigmoid(x_r + r_r)
            candidate = ops.tanh(x_h + r * r_h)
        else:
            r_z, r_r = ops.split(ops.matmul(h_in, kernel[:, : 2 * self.units]), 2, axis=-1)
            z = ops.sigmoid(x_z + r_z)
            r = ops.sigmoid(x_r + r_r)
            candidate = ops.tanh(x_h + ops.matmul(r * h_in, kernel[:, 2 * self.units :]))
        h = z * h_prev + (1 - z) * candidate
        return h, [h]

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class SimpleRNNCell(RecurrentCell):
    """Elman cell h_t = tanh(x_t W + h_{t-1} U + b), equal to `keras.layers.SimpleRNNCell`.

    States are `[h]`; returns `(h, [h])`. See `RecurrentCell` for the arguments.
    """

    num_states = 1
    additive_recurrence = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def recurrent_step(self, projected, states, recurrent_mask=None, kernels=None):
        """One step from projected inputs `[batch, units]` and `[h]`."""
        (h_prev,) = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        h = ops.tanh(projected + loop_matmul(h_in, self.recurrent_kernel, kernels))
        return h, [h]


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class LayerNormLSTMCell(LSTMCell):
    """LSTM with layer normalization (Ba et al., 2016, eqs. 20-22).

        gates = LN_x(x W) + LN_h(h_{t-1} U) + b       (each LN over the 4u gates)
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(LN_c(c_t))

    The separate norms keep the input and recurrent contributions on the same
    scale whatever the input width. LN_x(x W) is per step but does not depend on
    the state, so `project_inputs` still hoists it (returns LN_x(x W) + b).

    As in the paper, the carried state is the un-normalized c_t; LN_c only feeds
    the output. (tensorflow_addons' LayerNormLSTMCell instead carries LN_c(c_t).)
    Each LN is a `keras.layers.LayerNormalization` sublayer (gamma 1, beta 0),
    named kernel_norm, recurrent_norm and state_norm. Kernel, recurrent kernel
    and bias (forget-gate bias 1) are as in `LSTMCell`.

    Args:
        units: size of h and c.
        norm_epsilon: epsilon of the three layer norms (keras' and tfa's 1e-3).
        **kwargs: `dropout`, `recurrent_dropout`, `seed` and layer arguments,
            see `RecurrentCell`.

    States are `[h, c]`; returns `(h, [h, c])`.
    """

    affine_inputs = False  # LN_x(x W) does not split over input rows
    additive_recurrence = False  # LN_h(h U) sits between the matmul and the sum

    def __init__(self, units: int, norm_epsilon: float = 1e-3, **kwargs):
        super().__init__(units, **kwargs)
        self.norm_epsilon = norm_epsilon
        self.kernel_norm = keras.layers.LayerNormalization(epsilon=norm_epsilon, name="kernel_norm")
        self.recurrent_norm = keras.layers.LayerNormalization(
            epsilon=norm_epsilon, name="recurrent_norm"
        )
        self.state_norm = keras.layers.LayerNormalization(epsilon=norm_epsilon, name="state_norm")

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel_norm.build((None, 4 * self.units))
        self.recurrent_norm.build((None, 4 * self.units))
        self.state_norm.build((None, self.units))

    def project_inputs(self, inputs, kernels=None):
        """LN_x(x W) + b for any leading shape: `[..., input_dim]` -> `[..., 4 * units]`."""
        xw = loop_matmul(inputs, self.kernel, kernels)
        return self.kernel_norm(xw) + ops.cast(self.bias, inputs.dtype)

    def recurrent_step(self, projected, states, recurrent_mask=None, kernels=None):
        """One step from projected inputs `[batch, 4 * units]` and `[h, c]`."""
        h_prev, c_prev = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        hu = loop_matmul(h_in, self.recurrent_kernel, kernels)
        z = projected + self.recurrent_norm(hu)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(self.state_norm(c))
        return h, [h, c]

    def get_config(self) -> dict:
        return {**super().get_config(), "norm_epsilon": self.norm_epsilon}


CELL_TYPES = ("lstm", "gru", "gru_reset_before", "simple_rnn", "layer_norm_lstm")


def make_cell(cell_type: str, units: int, **kwargs) -> RecurrentCell:
    """Builds a cell by name, so configs can pick one with a string.

    Args:
        cell_type: one of `CELL_TYPES`; "gru_reset_before" is a GRU with
            `reset_after=False`.
        units: cell size.
        **kwargs: forwarded to the cell (dropout, recurrent_dropout, seed, name, ...).
    """
    if cell_type == "lstm":
        return LSTMCell(units, **kwargs)
    if cell_type == "gru":
        return GRUCell(units, reset_after=True, **kwargs)
    if cell_type == "gru_reset_before":
        return GRUCell(units, reset_after=False, **kwargs)
    if cell_type == "simple_rnn":
        return SimpleRNNCell(units, **kwargs)
    if cell_type == "layer_norm_lstm":
        return LayerNormLSTMCell(units, **kwargs)
    raise ValueError(f"Unknown cell_type {cell_type!r}; expected one of {', '.join(CELL_TYPES)}")


class _ProjectedStep(keras.layers.Layer):
    """Adapter that lets keras.layers.RNN run only a cell's recurrent part.

    Holds no weights of its own; the wrapped cell is built by `Recurrent`. With
    `carries_mask`, the last state is a recurrent dropout mask `[batch, units]`
    that goes through the loop unchanged, so every step of a sequence sees the
    same mask without any Python-side caching.
    """

    def __init__(self, cell: RecurrentCell, carries_mask: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.carries_mask = carries_mask
        self.state_size = list(cell.state_size) + ([cell.units] if carries_mask else [])
        self.output_size = cell.output_size

    def build(self, input_shape):
        self.built = True

    # Set by `Recurrent.call` for the duration of one training loop (see `loop_kernels`).
    kernels = None

    def call(self, inputs, states, training=None):
        if not self.carries_mask:
            return self.cell.recurrent_step(inputs, list(states), kernels=self.kernels)
        *cell_states, mask = states
        output, new_states = self.cell.recurrent_step(
            inputs, cell_states, recurrent_mask=mask, kernels=self.kernels
        )
        return output, [*new_states, mask]

    def get_initial_state(self, batch_size=None):
        states = self.cell.get_initial_state(batch_size)
        if self.carries_mask:
            states.append(ops.ones((batch_size, self.cell.units), self.cell.compute_dtype))
        return states


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class Recurrent(keras.layers.Layer):
    """Runs one of our cells over a sequence with inputs projected outside the loop.

    Args:
        units: cell size.
        go_backwards: process the sequence from its last real token to its first.
            Outputs are returned in the original time order either way.
        cell_type: see `make_cell`.
        dropout: variational input dropout (one mask per sequence, applied
            before the hoisted projection).
        recurrent_dropout: variational dropout on h_{t-1} before the recurrent
            matmul (one mask per sequence, carried through the loop).
        seed: seed of the dropout masks.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, time, input_dim]`.
        mask: `[batch, time]` bool, right-padded. Padded steps neither change the
            state nor produce output (zeros), so results do not depend on padding.

    Returns:
        `(outputs [batch, time, units], *final_states)`, each final state
        `[batch, units]`, in the cell's order: `(outputs, h, c)` for the LSTMs,
        `(outputs, h)` for GRU and SimpleRNN.
    """

    def __init__(
        self,
        units: int,
        go_backwards: bool = False,
        cell_type: str = "lstm",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.go_backwards = go_backwards
        self.cell_type = cell_type
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.cell = make_cell(
            cell_type,
            units,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            name="cell",
        )
        self.rnn = self._make_rnn(carries_mask=False)
        if recurrent_dropout > 0:
            # A second loop whose state carries the mask; weightless, so only an
            # attribute when needed (dropout-free layers keep their old structure).
            self.rnn_with_mask = self._make_rnn(carries_mask=True)

    def _make_rnn(self, carries_mask: bool) -> keras.layers.RNN:
        return keras.layers.RNN(
            _ProjectedStep(self.cell, carries_mask=carries_mask),
            return_sequences=True,
            return_state=True,
            go_backwards=self.go_backwards,
            zero_output_for_mask=True,
        )

    def build(self, input_shape):
        self.cell.build(input_shape)
        self.built = True

    def call(self, inputs, mask=None, training=None):
        batch_size = ops.shape(inputs)[0]
        input_mask, recurrent_mask = self.cell.get_dropout_masks(
            batch_size, _last_dim(inputs), training
        )
        if input_mask is not None:
            # [batch, 1, input_dim]: the same mask at every step of a sequence.
            inputs = inputs * ops.cast(ops.expand_dims(input_mask, 1), inputs.dtype)
        projected = self.cell.project_inputs(inputs)  # [batch, time, gates * units]
        rnn = self.rnn if recurrent_mask is None else self.rnn_with_mask
        # Training: the transposed recurrent kernel is made here, once, for the
        # loop's backward pass (see `matmul_pretransposed`), and where the cell
        # allows, the recurrent kernel's gradient is one matmul after the loop.
        kernels = self.cell.loop_kernels(projected.dtype) if training else None
        deferred = None
        if kernels is not None and self.cell.additive_recurrence:
            kernels = deferred = DeferredKernel(*kernels)
            projected = projected + gradient_sink([deferred], ops.shape(projected), projected.dtype)
        rnn.cell.kernels = kernels
        try:
            if recurrent_mask is None:
                outputs, *states = rnn(projected, mask=mask, training=training)
            else:
                initial = [*self.cell.get_initial_state(batch_size), recurrent_mask]
                outputs, *states = rnn(
                    projected, initial_state=initial, mask=mask, training=training
                )
                states = states[:-1]
        finally:
            rnn.cell.kernels = None
        if deferred is not None:
            # h_{t-1} of every step in processing order: the initial zeros, then the
            # outputs (zero on padding, where the state stays zero or dz is zero).
            previous = ops.concatenate([ops.zeros_like(outputs[:, :1]), outputs[:, :-1]], axis=1)
            if recurrent_mask is not None:
                previous = previous * ops.cast(ops.expand_dims(recurrent_mask, 1), previous.dtype)
            if self.go_backwards:  # the sink, and so its gradient, is in input order
                previous = ops.flip(previous, axis=1)
            deferred.inputs = tf.stop_gradient(previous)
        if self.go_backwards:
            outputs = ops.flip(outputs, axis=1)  # keras returns them in processing order
        return (outputs, *states)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "go_backwards": self.go_backwards,
            "cell_type": self.cell_type,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


def zeros_state(batch_size, units: int, dtype=tf.float32) -> list[tf.Tensor]:
    """`[h, c]` of zeros, for a stack's initial state."""
    return [tf.zeros([batch_size, units], dtype), tf.zeros([batch_size, units], dtype)]
