"""RNN decoder against an independent NumPy reference of one step, per placement.

The reference is written from the equations in decoders/rnn.py and layers/*.py
docstrings, reading only the weights out of the Keras layers: the cell gates,
the attention scores, the masked softmax, the context, the attentional vector
a_t = tanh(W_c [c_t; h_t]) and the output logits are computed by hand. Both
`step` (search) and `forward` over a few steps (training) must agree with it,
from random initial cell states and a random input-feed vector, so a wrong
query, a missing input feed or residual add, or swapped gates fail here.
"""

import numpy as np
import pytest
import tensorflow as tf
from support import randomize_weights

from seq2seq_tf.decoders.rnn import RNNDecoder
from seq2seq_tf.layers.memory import Memory

VOCAB, EMBED, UNITS, ATTN, MEM = 11, 5, 7, 6, 4
BATCH, SRC, STEPS = 2, 4, 3
MASK = np.array([[True, True, True, False], [True, True, True, True]])
ATOL = 1e-5


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _layer_norm(x, norm):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * _np(norm.gamma) + _np(norm.beta)


def _cell(cell_type, cell, x, states):
    """One step of a cell from its input x and previous states (the cells.py equations)."""
    kernel, recurrent, bias = _np(cell.kernel), _np(cell.recurrent_kernel), _np(cell.bias)
    if cell_type in ("lstm", "layer_norm_lstm"):
        h, c = states
        if cell_type == "lstm":
            z = x @ kernel + h @ recurrent + bias
        else:  # LN_x(x W) + LN_h(h U) + b
            z = _layer_norm(x @ kernel, cell.kernel_norm)
            z = z + _layer_norm(h @ recurrent, cell.recurrent_norm) + bias
        u = cell.units
        i, f, g, o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        shown = c if cell_type == "lstm" else _layer_norm(c, cell.state_norm)
        h = _sigmoid(o) * np.tanh(shown)
        return h, (h, c)
    assert cell_type == "gru"  # reset_after (keras' default): bias [2, 3u]
    (h,) = states
    u = cell.units
    xz = x @ kernel + bias[0]
    hz = h @ recurrent + bias[1]
    z = _sigmoid(xz[:, :u] + hz[:, :u])
    r = _sigmoid(xz[:, u : 2 * u] + hz[:, u : 2 * u])
    candidate = np.tanh(xz[:, 2 * u :] + r * hz[:, 2 * u :])
    h = z * h + (1 - z) * candidate
    return h, (h,)


def _attend(attention_type, att, query, memory, mask):
    """Scores of the query against the memory, masked softmax, context (attention.py)."""
    if attention_type == "luong_dot":
        scores = np.einsum("bsd,bd->bs", memory, query) * float(att.score_scale.numpy())
    elif attention_type == "luong_general":
        keys = memory @ _np(att.memory_layer.kernel)
        scores = np.einsum("bsd,bd->bs", keys, query) * float(att.score_scale.numpy())
    else:  # concat and Bahdanau: v . tanh(W h_s + U q (+ b))
        keys = memory @ _np(att.memory_layer.kernel)
        v = _np(att.v)
        if attention_type == "bahdanau_normalized":
            keys = keys + _np(att.b)
            v = float(att.g.numpy()) * v / np.linalg.norm(v)
        hidden = np.tanh(keys + (query @ _np(att.query_layer.kernel))[:, None])
        scores = hidden @ v
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    context = np.einsum("bs,bsd->bd", weights, memory)
    return context, weights


def reference_step(decoder, case, ids, state, memory, mask):
    """One decoder step in NumPy: (logits, cells, feed a_t, attention weights)."""
    cell_type, attention_type = case["cell_type"], case["attention_type"]
    placement, feeding = case["placement"], case["input_feeding"]
    embedded = _np(decoder.embedding.embeddings)[ids]
    cells = state["cells"]
    if placement == "bahdanau":  # the previous top h queries before the stack
        context, weights = _attend(attention_type, decoder.attention, cells[-1][0], memory, mask)
        first_input = np.concatenate([embedded, context], -1)
    elif feeding:  # x_t = [embed(y_{t-1}); a_{t-1}]
        first_input = np.concatenate([embedded, state["feed"]], -1)
    else:
        first_input = embedded
    x, new = _cell(cell_type, decoder.cells[0], first_input, cells[0])
    new_cells = [new]
    if placement == "gnmt":  # the bottom layer's output queries
        context, weights = _attend(attention_type, decoder.attention, x, memory, mask)
    for i in range(1, len(cells)):
        inputs = np.concatenate([x, context], -1) if placement == "gnmt" else x
        out, new = _cell(cell_type, decoder.cells[i], inputs, cells[i])
        x = out + x if case["residual"] else out
        new_cells.append(new)
    if placement == "luong":  # the top layer's h_t queries after the stack
        context, weights = _attend(attention_type, decoder.attention, x, memory, mask)
    feed = np.tanh(np.concatenate([context, x], -1) @ _np(decoder.attention_layer.kernel))
    if case.get("tie_embeddings"):
        logits = feed @ _np(decoder.embedding.embeddings).T + _np(decoder.output_bias)
    else:
        logits = feed @ _np(decoder.output_layer.kernel) + _np(decoder.output_layer.bias)
    return logits, new_cells, feed, weights


def _case(placement, feeding, residual, layers=2, cell_type="lstm", attention="luong_general"):
    return dict(
        placement=placement,
        input_feeding=feeding,
        residual=residual,
        num_layers=layers,
        cell_type=cell_type,
        attention_type=attention,
    )


CASES = [
    _case("luong", True, False),
    _case("luong", False, False),
    _case("luong", True, True, layers=3),
    _case("luong", True, False, layers=1, attention="luong_concat"),
    _case("luong", True, True, cell_type="gru"),
    _case("luong", True, False, cell_type="layer_norm_lstm"),
    _case("bahdanau", False, False, attention="bahdanau"),
    _case("bahdanau", False, True, layers=3, attention="bahdanau_normalized"),
    _case("bahdanau", False, False, cell_type="gru", attention="luong_general"),
    _case("gnmt", True, False),
    _case("gnmt", False, False, attention="bahdanau"),
    _case("gnmt", True, True, layers=3),
    _case("gnmt", True, True, cell_type="layer_norm_lstm", attention="bahdanau_normalized"),
    {**_case("luong", True, False, attention="luong_dot"), "tie_embeddings": True},
]


def _ids(case) -> str:
    feeding = "feed" if case["input_feeding"] else "nofeed"
    residual = "-residual" if case["residual"] else ""
    tied = "-tied" if case.get("tie_embeddings") else ""
    return (
        f"{case['placement']}-{feeding}{residual}-{case['num_layers']}x{case['cell_type']}-"
        f"{case['attention_type']}{tied}"
    )


def _setup(case, seed):
    """A built decoder with random weights, a memory with padding, and a random state."""
    memory_dim = UNITS if case["attention_type"] == "luong_dot" else MEM
    embedding_dim = ATTN if case.get("tie_embeddings") else EMBED
    decoder = RNNDecoder(
        VOCAB,
        embedding_dim,
        case["num_layers"],
        UNITS,
        attention_units=ATTN,
        attention_type=case["attention_type"],
        cell_type=case["cell_type"],
        input_feeding=case["input_feeding"],
        residual=case["residual"],
        tie_embeddings=case.get("tie_embeddings", False),
        placement=case["placement"],
    )
    decoder.build(memory_dim)
    randomize_weights(decoder, seed)
    rng = np.random.default_rng(seed + 100)
    values = rng.normal(size=(BATCH, SRC, memory_dim)).astype("float32")
    values[~MASK] = 50.0  # padding must get no weight whatever it holds
    cell_states = [
        tuple(rng.normal(scale=0.5, size=(BATCH, UNITS)).astype("float32") for _ in sizes)
        for sizes in decoder.state_sizes
    ]
    state = decoder.initial_state(
        BATCH,
        Memory(tf.constant(values), tf.constant(MASK)),
        [tuple(tf.constant(s) for s in layer) for layer in cell_states],
    )
    feed = rng.normal(scale=0.5, size=(BATCH, ATTN)).astype("float32")
    state = {**state, "feed": tf.constant(feed)}  # a non-zero a_{t-1}: input feeding shows
    reference = {"cells": [tuple(_np(s) for s in layer) for layer in cell_states], "feed": feed}
    ids = rng.integers(1, VOCAB, size=(BATCH, STEPS))
    return decoder, state, reference, _np(values), ids


def _check_state(got, cells, feed, weights, where):
    np.testing.assert_allclose(got["feed"], feed, atol=ATOL, err_msg=f"{where}: feed")
    np.testing.assert_allclose(got["alignment"], weights, atol=ATOL, err_msg=f"{where}: weights")
    assert np.all(got["alignment"].numpy()[~MASK] == 0.0), f"{where}: padding got weight"
    for i, (layer, want) in enumerate(zip(got["cells"], cells)):
        for j, (a, b) in enumerate(zip(layer, want)):
            np.testing.assert_allclose(a, b, atol=ATOL, err_msg=f"{where}: layer {i} state {j}")


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_step_and_forward_match_the_numpy_reference(case):
    decoder, state, reference, memory, ids = _setup(case, seed=len(_ids(case)))
    # step, step by step from the same random state
    step_state, ref_state = state, reference
    expected_features = []
    for t in range(STEPS):
        logits, step_state = decoder.step(tf.constant(ids[:, t], tf.int32), step_state)
        ref_logits, cells, feed, weights = reference_step(
            decoder, case, ids[:, t], ref_state, memory, MASK
        )
        np.testing.assert_allclose(logits, ref_logits, atol=ATOL, err_msg=f"step {t}: logits")
        _check_state(step_state, cells, feed, weights, f"step {t}")
        ref_state = {"cells": cells, "feed": feed}
        expected_features.append(feed)
    # forward: the whole sequence under teacher forcing from the same state
    features, final = decoder.forward(tf.constant(ids, tf.int32), state)
    np.testing.assert_allclose(features, np.stack(expected_features), atol=ATOL)
    _check_state(final, cells, feed, weights, "forward final")
    np.testing.assert_allclose(
        decoder.output_logits(features[-1]), ref_logits, atol=ATOL, err_msg="forward logits"
    )


def test_input_feeding_and_residual_change_the_step():
    """The reference itself is sensitive: a_{t-1} and the residual add change the logits."""
    case = _case("gnmt", True, True, layers=3)
    decoder, state, reference, memory, ids = _setup(case, seed=1)
    base, *_ = reference_step(decoder, case, ids[:, 0], reference, memory, MASK)
    no_feed = {**reference, "feed": np.zeros_like(reference["feed"])}
    fed_zeros, *_ = reference_step(decoder, case, ids[:, 0], no_feed, memory, MASK)
    unresidual, *_ = reference_step(
        decoder, {**case, "residual": False}, ids[:, 0], reference, memory, MASK
    )
    assert np.abs(base - fed_zeros).max() > 1e-2
    assert np.abs(base - unresidual).max() > 1e-2
    logits, _ = decoder.step(tf.constant(ids[:, 0], tf.int32), state)
    np.testing.assert_allclose(logits, base, atol=ATOL)
