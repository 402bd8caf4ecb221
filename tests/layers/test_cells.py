"""Our cells against their keras.layers twins, and the cell API (project_inputs, recurrent_step)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import KERAS_TWINS, copy_lstm_weights, randomize_weights

from seq2seq_tf.layers import loop_ops
from seq2seq_tf.layers.cells import (
    CELL_TYPES,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    RecurrentCell,
    SimpleRNNCell,
    make_cell,
    num_states,
)


def test_lstm_cell_equals_keras_forward_and_gradients():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    h = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    c = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    ours, reference = LSTMCell(4), keras.layers.LSTMCell(4)
    ours.build((None, 5))
    reference.build((None, 5))
    copy_lstm_weights(ours, reference)

    def run(cell):
        with tf.GradientTape() as tape:
            tape.watch([x, h, c])
            out, (h2, c2) = cell(x, [h, c])
            loss = tf.reduce_sum(out * 1.3 + h2 * 0.7 + c2 * c2)
        variables = [cell.kernel, cell.recurrent_kernel, cell.bias]
        return (out, h2, c2), tape.gradient(loss, [x, h, c] + variables)

    (o1, h1, c1), g1 = run(ours)
    (o2, h2, c2), g2 = run(reference)
    np.testing.assert_allclose(o1, o2, atol=1e-6)
    np.testing.assert_allclose(h1, h2, atol=1e-6)
    np.testing.assert_allclose(c1, c2, atol=1e-6)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_forget_bias_initialised_to_one():
    cell = LSTMCell(3)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_cell_config_round_trip():
    cell = LSTMCell(7, name="c")
    clone = LSTMCell.from_config(cell.get_config())
    assert clone.units == 7 and clone.name == "c"


@pytest.mark.parametrize("cell_type", ["gru", "gru_reset_before", "simple_rnn"])
def test_cell_equals_keras_forward_and_gradients(cell_type):
    rng = np.random.default_rng(10)
    x = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    h = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    ours, reference = make_cell(cell_type, 4), KERAS_TWINS[cell_type](4)
    ours.build((None, 5))
    reference.build((None, 5))
    randomize_weights(reference, 11)
    ours.set_weights(reference.get_weights())  # keras weights load unchanged

    def run(cell):
        with tf.GradientTape() as tape:
            tape.watch([x, h])
            out, (h2,) = cell(x, [h])
            loss = tf.reduce_sum(out * 1.3 + h2 * h2)
        variables = [cell.kernel, cell.recurrent_kernel, cell.bias]
        return (out, h2), tape.gradient(loss, [x, h] + variables)

    (o1, h1), g1 = run(ours)
    (o2, h2), g2 = run(reference)
    np.testing.assert_allclose(o1, o2, atol=1e-6)
    np.testing.assert_allclose(h1, h2, atol=1e-6)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_gru_weight_shapes_match_keras():
    for reset_after, bias_shape in ((True, (2, 12)), (False, (12,))):
        cell = GRUCell(4, reset_after=reset_after)
        cell.build((None, 5))
        assert tuple(cell.kernel.shape) == (5, 12)
        assert tuple(cell.recurrent_kernel.shape) == (4, 12)
        assert tuple(cell.bias.shape) == bias_shape


def _layer_norm(v, gamma, beta, eps=1e-3):
    mean = v.mean(-1, keepdims=True)
    var = v.var(-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * gamma + beta


def test_layer_norm_lstm_cell_matches_numpy_reference():
    rng = np.random.default_rng(16)
    cell = LayerNormLSTMCell(2)
    cell.build((None, 3))
    randomize_weights(cell, 17)
    w, u, bias = (v.numpy() for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    norms = [(n.gamma.numpy(), n.beta.numpy()) for n in (cell.kernel_norm, cell.recurrent_norm)]
    gamma_c, beta_c = cell.state_norm.gamma.numpy(), cell.state_norm.beta.numpy()
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731

    xs = rng.normal(size=(3, 2, 3)).astype("float32")  # 3 steps, batch 2
    h = np.zeros((2, 2), np.float32)
    c = np.zeros((2, 2), np.float32)
    state = cell.get_initial_state(2)
    for x in xs:
        gates = _layer_norm(x @ w, *norms[0]) + _layer_norm(h @ u, *norms[1]) + bias
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(_layer_norm(c, gamma_c, beta_c))
        out, state = cell(tf.constant(x), state)
        np.testing.assert_allclose(out, h, atol=1e-5)
        np.testing.assert_allclose(state[0], h, atol=1e-5)
        np.testing.assert_allclose(state[1], c, atol=1e-5)  # the carried c is not normalized


def test_layer_norm_lstm_hoists_normalized_projection():
    cell = LayerNormLSTMCell(3)
    x = tf.random.normal((2, 4, 5))
    cell.build((None, 5))
    projected = cell.project_inputs(x)  # [batch, time, 4u]
    for t in range(4):
        np.testing.assert_allclose(projected[:, t], cell.project_inputs(x[:, t]), atol=1e-6)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_fast_matmuls_give_the_plain_values_and_gradients(cell_type):
    """project_inputs(matmul=...) and recurrent_step(matmul=...) with the training loop's
    pretransposed products change no number, gradients included."""
    rng = np.random.default_rng(30)
    cell = make_cell(cell_type, 4)
    cell.build((None, 5))
    randomize_weights(cell, 31)
    x = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    states = [tf.constant(rng.normal(size=(3, 4)), tf.float32) for _ in cell.state_size]
    mask = tf.constant(rng.integers(0, 2, size=(3, 4)) * 2.0, tf.float32)

    def run(fast: bool):
        with tf.GradientTape() as tape:
            tape.watch([x, *states])
            kernels = loop_ops.LoopKernels(
                {"input": cell.kernel, "recurrent": cell.recurrent_kernel},
                tf.float32,
                training=fast,
            )
            assert not kernels.deferred  # no groups: pretransposed at most
            projected = cell.project_inputs(x, kernels.product("input") if fast else None)
            out, new = cell.recurrent_step(
                projected, states, mask, kernels.product("recurrent") if fast else None
            )
            loss = tf.reduce_sum(tf.sin(out)) + sum(tf.reduce_sum(s * s) for s in new)
        return [out, *new], tape.gradient(loss, [x, *states, *cell.trainable_variables])

    fast_values, fast_grads = run(True)
    plain_values, plain_grads = run(False)
    assert len(fast_grads) == 1 + len(states) + len(cell.trainable_variables)
    for a, b in zip(fast_values, plain_values):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for a, b in zip(fast_grads, plain_grads):
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_recurrent_step_multiplies_with_the_given_matmul(cell_type):
    """`matmul` replaces h @ recurrent_kernel (except for GRU with the reset gate before,
    whose recurrent matmul is split by columns and takes no `matmul`)."""
    rng = np.random.default_rng(32)
    cell = make_cell(cell_type, 4)
    cell.build((None, 5))
    randomize_weights(cell, 33)
    x = tf.constant(rng.normal(size=(2, 5)), tf.float32)
    states = [tf.constant(rng.normal(size=(2, 4)), tf.float32) for _ in cell.state_size]
    kernel = cell.recurrent_kernel.numpy()
    other = rng.normal(size=kernel.shape).astype("float32")  # (layer norm: not a rescaling)
    projected = cell.project_inputs(x)
    replaced = cell.recurrent_step(projected, states, matmul=lambda h: h @ other)
    plain = cell.recurrent_step(projected, states)
    cell.recurrent_kernel.assign(other)
    reference = cell.recurrent_step(projected, states)
    if cell_type == "gru_reset_before":
        np.testing.assert_allclose(replaced[0], plain[0], atol=1e-6)
        assert not np.allclose(replaced[0], reference[0], atol=1e-3)
    else:
        np.testing.assert_allclose(replaced[0], reference[0], atol=1e-5)
        for a, b in zip(replaced[1], reference[1]):
            np.testing.assert_allclose(a, b, atol=1e-5)
        assert not np.allclose(replaced[0], plain[0], atol=1e-3)
    # project_inputs likewise multiplies with its matmul (x -> x @ kernel).
    np.testing.assert_allclose(
        cell.project_inputs(x, matmul=lambda v: tf.zeros((2, kernel.shape[1]))),
        cell.project_inputs(tf.zeros_like(x)),
        atol=1e-6,
    )


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_config_round_trip_every_type(cell_type):
    cell = make_cell(cell_type, 5, dropout=0.1, recurrent_dropout=0.2, seed=3, name="c")
    assert isinstance(cell, RecurrentCell)
    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(revived) is type(cell) and revived.get_config() == cell.get_config()
    cell.build((None, 3))
    revived.build((None, 3))
    assert [w.shape for w in cell.weights] == [w.shape for w in revived.weights]


def test_make_cell_types_and_unknown_type():
    assert isinstance(make_cell("lstm", 2), LSTMCell)
    assert isinstance(make_cell("simple_rnn", 2), SimpleRNNCell)
    assert isinstance(make_cell("layer_norm_lstm", 2), LayerNormLSTMCell)
    assert make_cell("gru", 2).reset_after and not make_cell("gru_reset_before", 2).reset_after
    with pytest.raises(ValueError, match="'gruu'"):
        make_cell("gruu", 2)
    assert [num_states(t) for t in CELL_TYPES] == [2, 1, 1, 1, 2]


def test_dropout_free_cells_have_only_their_weights():
    # No seed-generator variable unless a rate is set: checkpoints of old LSTM layers still match.
    assert not hasattr(LSTMCell(2), "seed_generator")
    assert hasattr(LSTMCell(2, recurrent_dropout=0.1), "seed_generator")
