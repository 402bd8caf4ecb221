"""One of our cells over a whole sequence: initial state in, outputs and final state out.

The input projection x W + b of every step is one matmul before the loop
(`cell.project_inputs`); only `cell.recurrent_step` runs inside
`keras.layers.RNN`'s loop. The final state comes back, and a caller may hand
one in, so a sequence cut into windows (truncated backpropagation through
time) gives the same outputs as one unsplit pass.
"""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from seq2seq_tf.layers import fused_lstm, loop_ops
from seq2seq_tf.layers.cells import RecurrentCell, last_dim, make_cell
from seq2seq_tf.layers.fused_lstm import IMPLEMENTATIONS, FusedLSTM, unfusable_reason


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
        self._matmul = None

    def build(self, input_shape):
        self.built = True

    @contextlib.contextmanager
    def recurrent_matmul(self, matmul):
        """Runs the loop with this `h -> h @ recurrent_kernel` (keras' cell call takes no extra)."""
        self._matmul = matmul
        try:
            yield
        finally:
            self._matmul = None

    def call(self, inputs, states, training=None):
        if not self.carries_mask:
            return self.cell.recurrent_step(inputs, list(states), matmul=self._matmul)
        *cell_states, mask = states
        output, new_states = self.cell.recurrent_step(
            inputs, cell_states, recurrent_mask=mask, matmul=self._matmul
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
        implementation: "loop" (our step loop), "fused" (the same weights through
            `keras.layers.LSTM`, cuDNN's fused kernel on a GPU; plain LSTM without
            recurrent dropout only, see `layers.fused_lstm`) or "auto" (fused when
            a GPU is visible and the cell allows it, else loop). Both give the same
            results and use the same variables.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, time, input_dim]`.
        mask: `[batch, time]` bool, right-padded. Padded steps neither change the
            state nor produce output (zeros), so results do not depend on padding.
        initial_state: optional list of the cell's states, each `[batch, units]`
            (default zeros), e.g. the final state of the previous window.

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
        implementation: str = "loop",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        self.implementation = implementation
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
        self._unfusable = unfusable_reason(self.cell, recurrent_dropout)
        if implementation == "fused" and self._unfusable:
            raise ValueError(f"implementation 'fused': {self._unfusable}")
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
        if not self._unfusable:
            # Set past Keras' and TF's trackers: it holds this cell's variables, no new ones.
            object.__setattr__(self, "_fused", FusedLSTM(self.cell))
        self.built = True

    def uses_fused(self, initial_state=None) -> bool:
        """Whether a call (traced now, on this machine) runs the fused path."""
        if self.implementation == "loop" or initial_state is not None:
            return False
        if fused_lstm.loop_forced():  # an export (see `fused_lstm.loop_only`)
            return False
        if self.implementation == "fused":
            return True
        # auto: cuDNN's LSTM runs float32 and float16, not bfloat16.
        fusable_dtype = self.cell.compute_dtype in ("float32", "float16")
        return not self._unfusable and fusable_dtype and fused_lstm.gpu_visible()

    def call(self, inputs, mask=None, training=None, initial_state=None):
        batch_size = ops.shape(inputs)[0]
        input_mask, recurrent_mask = self.cell.get_dropout_masks(
            batch_size, last_dim(inputs), training
        )
        if input_mask is not None:
            # [batch, 1, input_dim]: the same mask at every step of a sequence.
            inputs = inputs * ops.cast(ops.expand_dims(input_mask, 1), inputs.dtype)
        if self.implementation == "fused" and initial_state is not None:
            raise ValueError("implementation 'fused' takes no initial_state; use 'auto' or 'loop'")
        if self.uses_fused(initial_state):
            if mask is None:
                mask = ops.ones(ops.shape(inputs)[:2], "bool")
            outputs, h, c = self._fused(inputs, mask, go_backwards=self.go_backwards)
            return outputs, h, c
        projected = self.cell.project_inputs(inputs)  # [batch, time, gates * units]
        # Training: the recurrent kernel in the loop's fast form, with its gradient
        # after the loop where the product adds straight into `projected`.
        # (Not when a backward pass starts from a given state: its h_{t-1} on the
        # first real token is that state, not the zeros the padding steps output.)
        defer = self.cell.additive_recurrence and not (
            self.go_backwards and initial_state is not None
        )
        kernels = loop_ops.LoopKernels(
            {"recurrent": self.cell.recurrent_kernel},
            projected.dtype,
            training=bool(training),
            groups={"projected": ("recurrent",)} if defer else None,
        )
        projected = kernels.add_sink("projected", projected)
        rnn = self.rnn if recurrent_mask is None else self.rnn_with_mask
        initial = None
        if initial_state is not None or recurrent_mask is not None:
            initial = list(initial_state or self.cell.get_initial_state(batch_size))
            if recurrent_mask is not None:
                initial.append(recurrent_mask)
        with rnn.cell.recurrent_matmul(kernels.product("recurrent")):
            outputs, *states = rnn(projected, initial_state=initial, mask=mask, training=training)
        if recurrent_mask is not None:
            states = states[:-1]
        if kernels.deferred:
            # h_{t-1} of every step in processing order: the initial state, then the
            # outputs (zero on padding, where the state stays put or dz is zero).
            first = ops.zeros_like(outputs[:, :1])
            if initial_state is not None:
                first = ops.expand_dims(ops.cast(initial_state[0], outputs.dtype), 1)
            previous = ops.concatenate([first, outputs[:, :-1]], axis=1)
            if recurrent_mask is not None:
                previous = previous * ops.cast(ops.expand_dims(recurrent_mask, 1), previous.dtype)
            if self.go_backwards:  # the sink, and so its gradient, is in input order
                previous = ops.flip(previous, axis=1)
            kernels.set_inputs("recurrent", previous)
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
            "implementation": self.implementation,
        }
