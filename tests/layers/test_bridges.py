"""Bridges: the decoder's first cell states from a Memory, against NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.layers.bridges import (
    BRIDGE_TYPES,
    CopyBridge,
    DenseBridge,
    ZerosBridge,
    make_bridge,
)
from seq2seq_tf.layers.memory import Memory

BATCH, LENGTH, WIDTH = 3, 5, 6
LENGTHS = [5, 2, 3]
STATE_SIZES = [[4, 4], [3]]  # an LSTM layer (h, c) under a single-state layer, unequal widths


def _memory(seed: int = 0) -> Memory:
    """Values `[3, 5, 6]` with large numbers on padding (a bridge must ignore them), and two
    encoder layers' final states: (h, c) then (h,), each `[3, 6]`."""
    rng = np.random.default_rng(seed)
    mask = np.arange(LENGTH)[None] < np.array(LENGTHS)[:, None]
    values = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    values[~mask] = 100.0
    final = tuple(
        tuple(tf.constant(rng.normal(size=(BATCH, WIDTH)), tf.float32) for _ in range(n))
        for n in (2, 1)
    )
    return Memory(tf.constant(values), tf.constant(mask), final)


def _sizes(states) -> list[list[tuple]]:
    return [[tuple(s.shape) for s in layer] for layer in states]


def _expected_shapes(state_sizes) -> list[list[tuple]]:
    return [[(BATCH, size) for size in layer] for layer in state_sizes]


def _split(flat: np.ndarray, state_sizes) -> list[list[np.ndarray]]:
    grouped, start = [], 0
    for layer in state_sizes:
        grouped.append([])
        for size in layer:
            grouped[-1].append(flat[:, start : start + size])
            start += size
    assert start == flat.shape[1]
    return grouped


def _check_equal(states, expected):
    assert len(states) == len(expected)
    for layer, want_layer in zip(states, expected):
        assert isinstance(layer, tuple) and len(layer) == len(want_layer)
        for got, want in zip(layer, want_layer):
            np.testing.assert_allclose(got, want, atol=1e-6)


def test_zeros_bridge_gives_zeros_in_the_decoder_layout():
    states = ZerosBridge(STATE_SIZES)(_memory())
    assert _sizes(states) == _expected_shapes(STATE_SIZES)
    zeros = [[np.zeros(shape) for shape in layer] for layer in _expected_shapes(STATE_SIZES)]
    _check_equal(states, zeros)


def test_copy_bridge_returns_the_final_states_as_they_are():
    memory = _memory()
    states = CopyBridge([[WIDTH, WIDTH], [WIDTH]])(memory)
    assert _sizes(states) == [[(BATCH, WIDTH)] * 2, [(BATCH, WIDTH)]]
    for layer, source in zip(states, memory.final_states):
        assert isinstance(layer, tuple) and len(layer) == len(source)
        for got, want in zip(layer, source):
            assert got is want  # not a copy, not a projection
    with pytest.raises(ValueError, match="final states"):
        CopyBridge([[WIDTH]])(Memory(memory.values, memory.mask, None))


def _dense_weights(bridge: DenseBridge):
    return bridge.projection.kernel.numpy(), bridge.projection.bias.numpy()


def test_dense_bridge_is_tanh_of_the_concatenated_final_states_split_by_state_sizes():
    memory = _memory(1)
    bridge = make_bridge("dense", STATE_SIZES)
    assert isinstance(bridge, DenseBridge) and bridge.source == "final_states"
    bridge.build(3 * WIDTH)
    rng = np.random.default_rng(2)
    for weight in bridge.weights:  # a non-zero bias too
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    kernel, bias = _dense_weights(bridge)
    assert kernel.shape == (3 * WIDTH, 11) and bias.shape == (11,)
    states = bridge(memory)
    assert _sizes(states) == _expected_shapes(STATE_SIZES)
    summary = np.concatenate([s.numpy() for layer in memory.final_states for s in layer], -1)
    _check_equal(states, _split(np.tanh(summary @ kernel + bias), STATE_SIZES))


def test_mean_bridge_is_tanh_of_the_masked_mean_of_the_values():
    memory = _memory(3)
    bridge = make_bridge("mean", STATE_SIZES)
    assert isinstance(bridge, DenseBridge) and bridge.source == "mean"
    bridge.build(WIDTH)
    rng = np.random.default_rng(4)
    for weight in bridge.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    kernel, bias = _dense_weights(bridge)
    assert kernel.shape == (WIDTH, 11)
    states = bridge(memory)
    assert _sizes(states) == _expected_shapes(STATE_SIZES)
    values = memory.values.numpy()
    mean = np.stack([values[b, : LENGTHS[b]].mean(0) for b in range(BATCH)])  # real positions
    np.testing.assert_allclose(memory.mean(), mean, atol=1e-6)
    _check_equal(states, _split(np.tanh(mean @ kernel + bias), STATE_SIZES))
    # Padding does not count: other values there change nothing.
    padded = np.where(memory.mask.numpy()[..., None], values, -7.0).astype("float32")
    again = bridge(Memory(tf.constant(padded), memory.mask, None))  # mean needs no final states
    _check_equal(again, [[s.numpy() for s in layer] for layer in states])


def test_mean_of_a_memory_without_real_positions_is_zero():
    memory = _memory()
    empty = Memory(memory.values, tf.zeros_like(memory.mask), None)
    np.testing.assert_array_equal(empty.mean(), np.zeros((BATCH, WIDTH)))


def test_a_single_state_dense_bridge_is_not_split():
    memory = _memory(5)
    bridge = DenseBridge([[4]], source="mean")
    bridge.build(WIDTH)
    (layer,) = bridge(memory)
    kernel, bias = _dense_weights(bridge)
    (state,) = layer
    np.testing.assert_allclose(state, np.tanh(memory.mean().numpy() @ kernel + bias), atol=1e-6)


@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_get_config_round_trip(bridge_type):
    bridge = make_bridge(bridge_type, STATE_SIZES)
    assert bridge.name == "bridge"
    config = bridge.get_config()
    assert config["state_sizes"] == STATE_SIZES
    clone = type(bridge).from_config(config)
    assert clone.get_config() == config and clone.state_sizes == STATE_SIZES
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(bridge))
    assert type(revived) is type(bridge) and revived.get_config() == config
    if isinstance(bridge, DenseBridge):
        assert revived.source == ("mean" if bridge_type == "mean" else "final_states")
        memory = _memory(6)
        width = WIDTH if bridge_type == "mean" else 3 * WIDTH
        bridge.build(width)
        revived.build(width)
        revived.set_weights(bridge.get_weights())
        _check_equal(revived(memory), [[s.numpy() for s in layer] for layer in bridge(memory)])


def test_unknown_bridge_and_source():
    with pytest.raises(ValueError, match="'nope'"):
        make_bridge("nope", STATE_SIZES)
    with pytest.raises(ValueError, match="'max'"):
        DenseBridge(STATE_SIZES, source="max")
