"""Our recurrent cells, and the layer that runs one over a whole sequence.

A cell splits its step into two parts: `project_inputs` (x W + b), which does
not depend on the previous state, and `recurrent_step`, which does. Over a
whole sequence, `Recurrent` projects all time steps in one matmul and runs only
`recurrent_step` inside `keras.layers.RNN`'s loop. Step by step (search),
`call` does both. Weights and gate order (i, f, c, o) match
`keras.layers.LSTMCell`, so its weights load unchanged.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class LSTMCell(keras.layers.Layer):
    """Standard LSTM cell (Hochreiter & Schmidhuber) with forget-gate bias 1.

    Args:
        units: size of h and c.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, input_dim]`.
        states: `[h, c]`, each `[batch, units]`.

    Returns:
        `(h, [h, c])`.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), initializer="orthogonal", name="recurrent_kernel"
        )

        def bias_init(shape, dtype=None):
            # Forget-gate bias 1 (Jozefowicz et al., 2015), as keras' unit_forget_bias.
            u = self.units
            return ops.concatenate(
                [ops.zeros((u,), dtype), ops.ones((u,), dtype), ops.zeros((2 * u,), dtype)]
            )

        self.bias = self.add_weight(shape=(4 * self.units,), initializer=bias_init, name="bias")

    def project_inputs(self, inputs):
        """x W + b for any leading shape: `[..., input_dim]` -> `[..., 4 * units]`."""
        return ops.matmul(inputs, ops.cast(self.kernel, inputs.dtype)) + ops.cast(
            self.bias, inputs.dtype
        )

    def recurrent_step(self, projected, states):
        """One step from projected inputs `[batch, 4 * units]` and `[h, c]`."""
        h_prev, c_prev = states
        z = projected + ops.matmul(h_prev, ops.cast(self.recurrent_kernel, h_prev.dtype))
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    def call(self, inputs, states, training=None):
        return self.recurrent_step(self.project_inputs(inputs), states)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in range(2)]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _ProjectedStep(keras.layers.Layer):
    """Adapter that lets keras.layers.RNN run only a cell's recurrent part.

    Holds no weights of its own; the wrapped cell is built by `Recurrent`.
    """

    def __init__(self, cell: LSTMCell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size
        self.output_size = cell.output_size

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, states, training=None):
        return self.cell.recurrent_step(inputs, states)

    def get_initial_state(self, batch_size=None):
        return self.cell.get_initial_state(batch_size)


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class Recurrent(keras.layers.Layer):
    """Runs an LSTMCell over a sequence with inputs projected outside the loop.

    Args:
        units: cell size.
        go_backwards: process the sequence from its last real token to its first.
            Outputs are returned in the original time order either way.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, time, input_dim]`.
        mask: `[batch, time]` bool, right-padded. Padded steps neither change the
            state nor produce output (zeros), so results do not depend on padding.

    Returns:
        `(outputs [batch, time, units], h [batch, units], c [batch, units])`.
    """

    def __init__(self, units: int, go_backwards: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.go_backwards = go_backwards
        self.cell = LSTMCell(units, name="cell")
        self.rnn = keras.layers.RNN(
            _ProjectedStep(self.cell),
            return_sequences=True,
            return_state=True,
            go_backwards=go_backwards,
            zero_output_for_mask=True,
        )

    def build(self, input_shape):
        self.cell.build(input_shape)
        self.built = True

    def call(self, inputs, mask=None, training=None):
        projected = self.cell.project_inputs(inputs)  # [batch, time, 4 * units]
        outputs, h, c = self.rnn(projected, mask=mask, training=training)
        if self.go_backwards:
            outputs = ops.flip(outputs, axis=1)  # keras returns them in processing order
        return outputs, h, c

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units, "go_backwards": self.go_backwards}


def zeros_state(batch_size, units: int, dtype=tf.float32):
    """`[h, c]` of zeros, for a stack's initial state."""
    return [tf.zeros([batch_size, units], dtype), tf.zeros([batch_size, units], dtype)]
