"""Bridges inside the model: Seq2Seq.initial_state against NumPy, from the source ids.

The encoder (embedding, per layer a forward and a backward LSTM over the real
tokens, directions concatenated) and each bridge (zeros, copy, dense, mean) are
recomputed in NumPy from the Keras weights, so the decoder's first cell states
are checked from end to end: a bridge that passes the wrong encoder state, the
wrong layer, or ignores the mask fails here.
"""

import numpy as np
import pytest
import tensorflow as tf
from support import make_seq2seq, randomize_weights

from seq2seq_tf.layers.bridges import BRIDGE_TYPES

SOURCE = np.array([[5, 6, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3], [9, 3, 0, 0, 0, 0]])
LENGTHS = (SOURCE != 0).sum(1)
ATOL = 1e-5


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _lstm(cell, x, h, c):
    z = x @ _np(cell.kernel) + h @ _np(cell.recurrent_kernel) + _np(cell.bias)
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _run(cell, inputs, length, backwards):
    """One direction over the real tokens of one sentence: outputs [src, units], (h, c)."""
    units = cell.units
    h, c = np.zeros(units), np.zeros(units)
    outputs = np.zeros((inputs.shape[0], units))
    order = range(length - 1, -1, -1) if backwards else range(length)
    for t in order:
        h, c = _lstm(cell, inputs[t][None], h[None], c[None])
        h, c = h[0], c[0]
        outputs[t] = h
    return outputs, (h, c)


def reference_encoder(encoder, source):
    """Memory values [batch, src, 2u] (zeros on padding) and per layer (h, c) [batch, 2u]."""
    embedded = _np(encoder.embedding.embeddings)[source]
    values, finals = [], []
    for b, length in enumerate((source != 0).sum(1)):
        x, layers = embedded[b], []
        for fw, bw in zip(encoder.forward_layers, encoder.backward_layers):
            fw_out, (fh, fc) = _run(fw.cell, x, length, backwards=False)
            bw_out, (bh, bc) = _run(bw.cell, x, length, backwards=True)
            x = np.concatenate([fw_out, bw_out], -1)
            layers.append((np.concatenate([fh, bh]), np.concatenate([fc, bc])))
        values.append(x)
        finals.append(layers)
    final_states = [
        tuple(np.stack([finals[b][i][j] for b in range(len(source))]) for j in range(2))
        for i in range(len(encoder.forward_layers))
    ]
    return np.stack(values), final_states


def reference_bridge(bridge_type, model, values, final_states):
    """The decoder's first cell states per bridges.py's docstring."""
    sizes = model.decoder.state_sizes
    if bridge_type == "zeros":
        return [tuple(np.zeros((len(values), s)) for s in layer) for layer in sizes]
    if bridge_type == "copy":
        return final_states
    if bridge_type == "dense":
        summary = np.concatenate([s for layer in final_states for s in layer], -1)
    else:  # mean over the real positions only
        summary = np.stack([values[b, : LENGTHS[b]].mean(0) for b in range(len(values))])
    dense = model.bridge.projection
    flat = np.tanh(summary @ _np(dense.kernel) + _np(dense.bias))
    grouped, start = [], 0
    for layer in sizes:
        grouped.append(tuple(flat[:, start + sum(layer[:j]) : start + sum(layer[: j + 1])]
                             for j in range(len(layer))))  # fmt: skip
        start += sum(layer)
    assert start == flat.shape[1]
    return grouped


@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_initial_state_matches_numpy_encoder_and_bridge(bridge_type):
    decoder_units = 6 if bridge_type == "copy" else 5  # copy needs the encoder's width
    model = make_seq2seq(
        20,
        embedding_dim=4,
        encoder_layers=2,
        encoder_units=3,
        decoder_layers=2,
        decoder_units=decoder_units,
        attention_units=5,
        bridge=bridge_type,
    )
    randomize_weights(model, seed=BRIDGE_TYPES.index(bridge_type))
    state = model.initial_state(tf.constant(SOURCE))
    values, final_states = reference_encoder(model.encoder, SOURCE)
    np.testing.assert_allclose(state["memory"], values, atol=ATOL)
    np.testing.assert_array_equal(state["mask"], SOURCE != 0)
    expected = reference_bridge(bridge_type, model, values, final_states)
    assert len(state["cells"]) == len(expected) == 2
    for i, (layer, want) in enumerate(zip(state["cells"], expected)):
        assert len(layer) == len(want) == 2
        for j, (got, ref) in enumerate(zip(layer, want)):
            np.testing.assert_allclose(got, ref, atol=ATOL, err_msg=f"layer {i} state {j}")
    if bridge_type != "zeros":  # the states are not trivially zero
        assert np.abs(np.asarray(state["cells"][0][1])).max() > 1e-2
    np.testing.assert_array_equal(state["feed"], np.zeros((3, 5)))
    np.testing.assert_array_equal(state["alignment"], np.zeros(SOURCE.shape))


def test_the_reference_tells_the_layers_and_states_apart():
    """Had the copy bridge passed c for h, or layer 1 for layer 0, the values would differ."""
    model = make_seq2seq(
        20, embedding_dim=4, encoder_layers=2, encoder_units=3, decoder_layers=2,
        decoder_units=6, attention_units=5, bridge="copy",
    )  # fmt: skip
    randomize_weights(model, seed=7)
    _, (first, second) = reference_encoder(model.encoder, SOURCE)
    assert np.abs(first[0] - first[1]).max() > 1e-2
    assert np.abs(first[0] - second[0]).max() > 1e-2
