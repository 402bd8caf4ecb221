"""Our recurrent cells: LSTM, GRU, simple (tanh) RNN and layer-norm LSTM.

A cell splits its step into two parts: `project_inputs` (x W + b), which does
not depend on the previous state, and `recurrent_step`, which does. Over a
whole sequence, `layers.recurrent.Recurrent` projects all time steps in one
matmul and runs only `recurrent_step` inside its loop. Step by step (search),
`call` does both. Both take an optional `matmul` (x -> x @ kernel): a training
loop passes the fast forms of `layers.loop_ops`; None multiplies directly.

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


def last_dim(x):
    """Static last dimension when known, else the dynamic one."""
    return x.shape[-1] if x.shape[-1] is not None else ops.shape(x)[-1]


def _plain_matmul(kernel):
    return lambda x: ops.matmul(x, ops.cast(kernel, x.dtype))


class RecurrentCell(keras.layers.Layer):
    """Plumbing shared by our cells: states, dropout masks, `call`, config.

    Subclasses set `num_states` and implement `build`, `project_inputs` and
    `recurrent_step(projected, states, recurrent_mask=None, matmul=None)`.

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
    # so the gradient of `projected` is that matmul's output gradient (see layers.loop_ops).
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

    def project_inputs(self, inputs, matmul=None):
        """The state-independent part of a step, x W + input_bias, for `[..., input_dim]`.

        `matmul`: x -> x @ kernel in a training loop's fast form (2-D inputs).
        """
        xw = (matmul or _plain_matmul(self.kernel))(inputs)
        return xw + ops.cast(self.input_bias, inputs.dtype)

    def recurrent_step(self, projected, states, recurrent_mask=None, matmul=None):
        """One step from `project_inputs`' output and the previous states.

        `matmul`: h -> h @ recurrent_kernel in a training loop's fast form; None
        multiplies directly (the same values).
        """
        raise NotImplementedError

    def _recurrent_matmul(self, matmul):
        return matmul or _plain_matmul(self.recurrent_kernel)

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
                batch_size, last_dim(inputs), training
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

    def recurrent_step(self, projected, states, recurrent_mask=None, matmul=None):
        """One step from projected inputs `[batch, 4 * units]` and `[h, c]`."""
        h_prev, c_prev = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        z = projected + self._recurrent_matmul(matmul)(h_in)
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

    def recurrent_step(self, projected, states, recurrent_mask=None, matmul=None):
        """One step from projected inputs `[batch, 3 * units]` and `[h]`.

        Without `reset_after` the recurrent matmul is split by columns and
        `matmul` is not used.
        """
        (h_prev,) = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        kernel = ops.cast(self.recurrent_kernel, h_in.dtype)
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        if self.reset_after:
            inner = self._recurrent_matmul(matmul)(h_in)
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

    def recurrent_step(self, projected, states, recurrent_mask=None, matmul=None):
        """One step from projected inputs `[batch, units]` and `[h]`."""
        (h_prev,) = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        h = ops.tanh(projected + self._recurrent_matmul(matmul)(h_in))
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

    def project_inputs(self, inputs, matmul=None):
        """LN_x(x W) + b for any leading shape: `[..., input_dim]` -> `[..., 4 * units]`."""
        xw = (matmul or _plain_matmul(self.kernel))(inputs)
        return self.kernel_norm(xw) + ops.cast(self.bias, inputs.dtype)

    def recurrent_step(self, projected, states, recurrent_mask=None, matmul=None):
        """One step from projected inputs `[batch, 4 * units]` and `[h, c]`."""
        h_prev, c_prev = states
        h_in = self._recurrent_input(h_prev, recurrent_mask)
        hu = self._recurrent_matmul(matmul)(h_in)
        z = projected + self.recurrent_norm(hu)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(self.state_norm(c))
        return h, [h, c]

    def get_config(self) -> dict:
        return {**super().get_config(), "norm_epsilon": self.norm_epsilon}


CELL_TYPES = ("lstm", "gru", "gru_reset_before", "simple_rnn", "layer_norm_lstm")


def num_states(cell_type: str) -> int:
    """How many state tensors a cell of this type carries (2 for the LSTMs: h and c)."""
    return make_cell(cell_type, 1).num_states


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
