"""Our LSTM cell against keras.layers.LSTMCell, and the sequence layer around it."""

import keras
import numpy as np
import tensorflow as tf

from seq2seq_tf.cells import LSTMCell, Recurrent


def _copy_weights(ours: LSTMCell, reference: keras.layers.LSTMCell):
    reference.kernel.assign(ours.kernel)
    reference.recurrent_kernel.assign(ours.recurrent_kernel)
    reference.bias.assign(ours.bias)


def test_lstm_cell_equals_keras_forward_and_gradients():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    h = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    c = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    ours, reference = LSTMCell(4), keras.layers.LSTMCell(4)
    ours.build((None, 5))
    reference.build((None, 5))
    _copy_weights(ours, reference)

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


def test_recurrent_equals_keras_rnn_with_mask():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 6, 5)), tf.float32)
    mask = tf.constant([[True] * 6, [True] * 3 + [False] * 3])
    for backwards in (False, True):
        ours = Recurrent(4, go_backwards=backwards)
        ours.build((None, None, 5))
        cell = keras.layers.LSTMCell(4)
        reference = keras.layers.RNN(
            cell,
            return_sequences=True,
            return_state=True,
            go_backwards=backwards,
            zero_output_for_mask=True,
        )
        reference(x[:, :1], mask=mask[:, :1])
        _copy_weights(ours.cell, cell)
        out, h, c = ours(x, mask=mask)
        ref_out, ref_h, ref_c = reference(x, mask=mask)
        if backwards:
            ref_out = tf.reverse(ref_out, [1])
        np.testing.assert_allclose(out, ref_out, atol=1e-6)
        np.testing.assert_allclose(h, ref_h, atol=1e-6)
        np.testing.assert_allclose(c, ref_c, atol=1e-6)
        np.testing.assert_array_equal(out[1, 3:], 0.0)


def test_recurrent_matches_step_by_step_cell_calls():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(2, 4, 3)), tf.float32)
    layer = Recurrent(5)
    out, h, c = layer(x)
    state = layer.cell.get_initial_state(2)
    for t in range(4):
        step_out, state = layer.cell(x[:, t], state)
        np.testing.assert_allclose(out[:, t], step_out, atol=1e-6)
    np.testing.assert_allclose(h, state[0], atol=1e-6)
    np.testing.assert_allclose(c, state[1], atol=1e-6)


def test_cell_config_round_trip():
    cell = LSTMCell(7, name="c")
    clone = LSTMCell.from_config(cell.get_config())
    assert clone.units == 7 and clone.name == "c"
    layer = Recurrent(3, go_backwards=True)
    assert Recurrent.from_config(layer.get_config()).go_backwards
