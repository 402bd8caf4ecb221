"""What an encoder hands the decoder: the memory to attend over and what bridges need."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
from keras import ops


class Memory(NamedTuple):
    """An encoded input.

    values: `[batch, length, dim]`, zeros on padding. Length is source pieces for
        text, H·W grid positions for an image.
    mask: `[batch, length]` bool, True on real positions.
    final_states: per encoder layer a tuple of its final states, each
        `[batch, dim]` (RNN encoders; the copy and dense bridges read them), or None.
    """

    values: tf.Tensor
    mask: tf.Tensor
    final_states: tuple | None = None

    def mean(self) -> tf.Tensor:
        """Mean of the values over real positions, `[batch, dim]` (Show, Attend and Tell's
        initial-state input)."""
        weights = ops.cast(self.mask, self.values.dtype)[..., None]  # batch x length x 1
        total = ops.sum(self.values * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)
