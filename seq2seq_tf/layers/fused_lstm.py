"""Our LSTM's weights through `keras.layers.LSTM`, i.e. cuDNN's fused kernel on a GPU.

A step loop on a GPU launches a few small kernels per time step; cuDNN's fused
LSTM runs the whole sequence in one. `LSTMCell` keeps keras' weight layout
(kernel `[in, 4u]`, recurrent_kernel `[u, 4u]`, bias `[4u]`, gates i, f, c, o),
so a `keras.layers.LSTM` whose cell holds *our* variables computes the same
function: on a GPU keras runs it as `tf.raw_ops.CudnnRNNV3`, elsewhere as its
generic loop. No variable is created or copied, so checkpoints do not depend on
the path.

What cuDNN needs, done here rather than left to keras:
- right-padded sequences given by their lengths; keras asserts that a mask is
  strictly right-padded and has no empty row, so the mask handed to it is
  rebuilt from the lengths, with empty rows run for one step and zeroed after;
- the backward direction reverses each sequence within its own length
  (`tf.reverse_sequence`), not the padded tensor, so no padding comes first.
Results then equal `layers.recurrent.Recurrent`'s loop: zeros on padding, final
states at each sequence's last real token (zeros for an empty one).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import keras
import tensorflow as tf
from keras import ops

from seq2seq_tf.layers.cells import LSTMCell

IMPLEMENTATIONS = ("auto", "loop", "fused")


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (where keras runs the LSTM through cuDNN)."""
    return bool(tf.config.list_logical_devices("GPU"))


def unfusable_reason(cell, recurrent_dropout: float = 0.0) -> str | None:
    """Why this cell cannot run through the fused kernel, or None when it can.

    cuDNN's LSTM is the plain LSTM (sigmoid gates, tanh, one bias) without
    recurrent dropout; layer norm, GRU and simple RNN cells are other functions.
    """
    if type(cell) is not LSTMCell:
        return f"the fused kernel runs the plain LSTM only, not {type(cell).__name__}"
    if recurrent_dropout or cell.recurrent_dropout:
        return "the fused kernel has no recurrent dropout"
    return None


class FusedLSTM:
    """Runs an `LSTMCell`'s variables over a right-padded batch with keras' LSTM.

    Not a Keras layer on purpose: it must stay out of the owner's tracked
    weights and checkpoints (it holds the owner's variables, nothing of its own).

    Args:
        cell: a built `LSTMCell`.
    """

    def __init__(self, cell: LSTMCell):
        # keras draws its initializers' seeds from Python's `random` when a layer is
        # constructed; these initializers never run, and without the restore every layer
        # built after this one would start from other weights than without the fused
        # path (a seeded run would change with `model.encoder_kernel`).
        seeds = random.getstate()
        try:
            lstm = keras.layers.LSTM(
                cell.units,
                return_sequences=True,
                return_state=True,
                use_cudnn="auto",  # cuDNN where keras can, else its generic loop
                dtype=cell.dtype_policy,
                name=f"{cell.name}_fused",
            )
        finally:
            random.setstate(seeds)
        lstm.cell.kernel = cell.kernel
        lstm.cell.recurrent_kernel = cell.recurrent_kernel
        lstm.cell.bias = cell.bias
        lstm.cell.built = True
        lstm.built = True
        self.lstm = lstm

    def __call__(self, inputs, mask, go_backwards: bool = False) -> tuple:
        """Outputs and final states of the cell over `inputs`.

        Args:
            inputs: `[batch, time, input_dim]`.
            mask: `[batch, time]` bool, right-padded (its row sums are the lengths).
            go_backwards: each sequence from its last real token to its first;
                outputs come back in input order.

        Returns:
            `(outputs [batch, time, units], h [batch, units], c [batch, units])`,
            outputs zero on padding, states at each sequence's last real token.
        """
        steps = ops.shape(inputs)[1]
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        if go_backwards:
            inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
        # cuDNN (and keras' mask check) refuse an empty sequence: run one step, then zero it.
        run_mask = tf.sequence_mask(tf.maximum(lengths, 1), steps)
        outputs, h, c = self.lstm(inputs, mask=run_mask)
        valid = tf.sequence_mask(lengths, steps)
        outputs = outputs * tf.cast(valid[:, :, None], outputs.dtype)
        if go_backwards:
            outputs = tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0)
        nonempty = tf.cast(lengths > 0, h.dtype)[:, None]
        return outputs, h * nonempty, c * nonempty


_OPTIONS = {"loop_only": False}


@contextlib.contextmanager
def loop_only() -> Iterator[None]:
    """Traces every `Recurrent` in this scope with our loop, whatever its implementation.

    For exports: a SavedModel traced with cuDNN ops runs only on a GPU, one traced
    with the loop runs anywhere, with the same weights and the same results.
    """
    previous = _OPTIONS["loop_only"]
    _OPTIONS["loop_only"] = True
    try:
        yield
    finally:
        _OPTIONS["loop_only"] = previous


def loop_forced() -> bool:
    """Whether a `loop_only` scope is active."""
    return _OPTIONS["loop_only"]
