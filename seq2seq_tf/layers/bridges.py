"""Bridges: the decoder's initial cell states from an encoder's `Memory`.

Each bridge is told the decoder's state layout (per layer, the width of each
of its cell's states, e.g. `[[512, 512], [512, 512]]` for two LSTM layers)
and returns, per layer, a tuple of `[batch, width]` tensors in that layout.

    zeros  the decoder starts from zeros (it learns everything from attention)
    copy   layer i starts from encoder layer i's final states (same layout)
    dense  tanh(W [all encoder final states] + b), split into every decoder state
    mean   tanh(W mean(memory values) + b), split likewise (Show, Attend and Tell:
           the initial h and c from the mean annotation vector)
"""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_tf.layers.memory import Memory

BRIDGE_TYPES = ("zeros", "copy", "dense", "mean")


class Bridge(keras.layers.Layer):
    """Args:
    state_sizes: per decoder layer the widths of its states.
    **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        memory: the encoder's `Memory`.

    Returns:
        per decoder layer a tuple of states, each `[batch, width]`.
    """

    def __init__(self, state_sizes, **kwargs):
        super().__init__(**kwargs)
        self.state_sizes = [list(layer) for layer in state_sizes]

    def _group(self, flat: list) -> list[tuple]:
        """Flat states, layer after layer, grouped per layer."""
        grouped, start = [], 0
        for layer in self.state_sizes:
            grouped.append(tuple(flat[start : start + len(layer)]))
            start += len(layer)
        return grouped

    def get_config(self) -> dict:
        return {**super().get_config(), "state_sizes": self.state_sizes}


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class ZerosBridge(Bridge):
    """Zeros for every state."""

    def call(self, memory: Memory):
        batch = ops.shape(memory.values)[0]
        return self._group(
            [
                ops.zeros((batch, size), self.compute_dtype)
                for layer in self.state_sizes
                for size in layer
            ]
        )


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class CopyBridge(Bridge):
    """The encoder's final states as they are (layers, states and widths must match)."""

    def call(self, memory: Memory):
        if memory.final_states is None:
            raise ValueError("the copy bridge needs an encoder with final states")
        return [tuple(states) for states in memory.final_states]


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class DenseBridge(Bridge):
    """One learned tanh projection of a summary to every decoder state, any shapes.

    Args:
        source: "final_states" (concatenated encoder final states, the dense
            bridge of OpenNMT) or "mean" (the mean of the memory values).
    """

    def __init__(self, state_sizes, source: str = "final_states", **kwargs):
        super().__init__(state_sizes, **kwargs)
        if source not in ("final_states", "mean"):
            raise ValueError(f"DenseBridge source must be final_states or mean, got {source!r}")
        self.source = source
        sizes = [size for layer in self.state_sizes for size in layer]
        self.projection = keras.layers.Dense(sum(sizes), activation="tanh", name="projection")

    def build(self, input_width: int):
        """`input_width`: width of the summary (all final states, or the memory's width)."""
        self.projection.build((None, input_width))
        self.built = True

    def call(self, memory: Memory):
        if self.source == "mean":
            summary = memory.mean()
        else:
            summary = ops.concatenate([t for layer in memory.final_states for t in layer], -1)
        projected = self.projection(summary)  # batch x sum(state sizes)
        sizes = [size for layer in self.state_sizes for size in layer]
        splits, total = [], 0
        for size in sizes[:-1]:
            total += size
            splits.append(total)
        return self._group(ops.split(projected, splits, axis=-1) if splits else [projected])

    def get_config(self) -> dict:
        return {**super().get_config(), "source": self.source}


def make_bridge(bridge_type: str, state_sizes, **kwargs) -> Bridge:
    """The bridge named in a config (one of BRIDGE_TYPES)."""
    kwargs.setdefault("name", "bridge")
    if bridge_type == "zeros":
        return ZerosBridge(state_sizes, **kwargs)
    if bridge_type == "copy":
        return CopyBridge(state_sizes, **kwargs)
    if bridge_type == "dense":
        return DenseBridge(state_sizes, "final_states", **kwargs)
    if bridge_type == "mean":
        return DenseBridge(state_sizes, "mean", **kwargs)
    raise ValueError(f"unknown bridge {bridge_type!r}; expected one of {BRIDGE_TYPES}")
