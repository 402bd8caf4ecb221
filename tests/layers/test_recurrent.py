"""Recurrent: one of our cells over a sequence, against keras.layers.RNN and step-by-step calls."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import KERAS_TWINS, copy_lstm_weights, randomize_weights

from seq2seq_tf.layers import loop_ops
from seq2seq_tf.layers.cells import CELL_TYPES, make_cell
from seq2seq_tf.layers.recurrent import Recurrent


def _plain_loops(monkeypatch) -> None:
    """Every loop multiplies plainly (LoopKernels with training=False): autodiff's reference."""

    class PlainLoopKernels(loop_ops.LoopKernels):
        def __init__(self, kernels, dtype, training=False, groups=None):
            super().__init__(kernels, dtype, training=False, groups=groups)

    monkeypatch.setattr(loop_ops, "LoopKernels", PlainLoopKernels)


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
        copy_lstm_weights(ours.cell, cell)
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


def test_recurrent_config_round_trip():
    layer = Recurrent(3, go_backwards=True)
    assert Recurrent.from_config(layer.get_config()).go_backwards


@pytest.mark.parametrize("cell_type", sorted(KERAS_TWINS))
def test_recurrent_equals_keras_rnn_with_mask_every_type(cell_type):
    rng = np.random.default_rng(12)
    x = tf.constant(rng.normal(size=(2, 6, 5)), tf.float32)
    mask = tf.constant([[True] * 6, [True] * 3 + [False] * 3])
    for backwards in (False, True):
        ours = Recurrent(4, go_backwards=backwards, cell_type=cell_type)
        ours.build((None, None, 5))
        cell = KERAS_TWINS[cell_type](4)
        reference = keras.layers.RNN(
            cell,
            return_sequences=True,
            return_state=True,
            go_backwards=backwards,
            zero_output_for_mask=True,
        )
        reference(x[:, :1], mask=mask[:, :1])
        randomize_weights(cell, 13)
        ours.cell.set_weights(cell.get_weights())
        out, *states = ours(x, mask=mask)
        ref_out, *ref_states = reference(x, mask=mask)
        if backwards:
            ref_out = tf.reverse(ref_out, [1])
        assert len(states) == len(ref_states) == len(ours.cell.state_size)
        np.testing.assert_allclose(out, ref_out, atol=1e-5)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(s, r, atol=1e-5)
        np.testing.assert_array_equal(out[1, 3:], 0.0)


def _step_by_step(cell, x, lengths, backwards, dropout_masks=None, training=None):
    """Runs `cell` one example, one real step at a time: `[batch, time, units]`, final states."""
    batch, time = x.shape[0], x.shape[1]
    outputs = np.zeros((batch, time, cell.units), np.float32)
    finals = []
    for b in range(batch):
        state = cell.get_initial_state(1)
        steps = range(lengths[b])
        for t in reversed(steps) if backwards else steps:
            masks = None
            if dropout_masks is not None:
                masks = tuple(None if m is None else m[b : b + 1] for m in dropout_masks)
            out, state = cell(x[b : b + 1, t], state, training=training, dropout_masks=masks)
            outputs[b, t] = out[0]
        finals.append([s[0] for s in state])
    return outputs, [np.stack(s) for s in zip(*finals)]


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_recurrent_matches_step_by_step_every_type(cell_type):
    rng = np.random.default_rng(14)
    x = tf.constant(rng.normal(size=(3, 5, 3)), tf.float32)
    lengths = [5, 2, 4]
    mask = tf.sequence_mask(lengths, 5)
    for backwards in (False, True):
        layer = Recurrent(4, go_backwards=backwards, cell_type=cell_type)
        layer.build((None, None, 3))
        randomize_weights(layer.cell, 15)
        out, *states = layer(x, mask=mask)
        ref_out, ref_states = _step_by_step(layer.cell, x, lengths, backwards)
        np.testing.assert_allclose(out, ref_out, atol=1e-5)  # zeros on padding included
        assert len(states) == len(ref_states)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(s, r, atol=1e-5)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_dropout_inactive_when_not_training(cell_type):
    rng = np.random.default_rng(18)
    x = tf.constant(rng.normal(size=(2, 5, 3)), tf.float32)
    mask = tf.sequence_mask([5, 3], 5)
    plain = Recurrent(4, cell_type=cell_type)
    dropped = Recurrent(4, cell_type=cell_type, dropout=0.5, recurrent_dropout=0.5, seed=1)
    plain.build((None, None, 3))
    dropped.build((None, None, 3))
    randomize_weights(plain.cell, 19)
    dropped.cell.set_weights(plain.cell.get_weights())
    for training in (False, None):
        for a, b in zip(plain(x, mask=mask), dropped(x, mask=mask, training=training)):
            np.testing.assert_array_equal(a, b)
        state = plain.cell.get_initial_state(2)
        a = plain.cell(x[:, 0], state)
        b = dropped.cell(x[:, 0], state, training=training)
        np.testing.assert_array_equal(a[0], b[0])
    # ...and active when training.
    out, *_ = dropped(x, mask=mask, training=True)
    assert not np.allclose(out, plain(x, mask=mask)[0])


def test_recurrent_dropout_mask_is_the_same_at_every_step():
    # SimpleRNN with zero input weights: h_t = tanh(b + 0.25 * (m * h_{t-1})), so the mask each
    # step used can be read back as m = (atanh(h_t) - b) / (0.25 * h_{t-1}).
    batch, time, units, rate = 8, 6, 5, 0.5
    layer = Recurrent(units, cell_type="simple_rnn", recurrent_dropout=rate, seed=3)
    layer.build((None, None, 2))
    layer.cell.kernel.assign(tf.zeros((2, units)))
    layer.cell.recurrent_kernel.assign(0.25 * tf.eye(units))
    layer.cell.bias.assign(tf.fill((units,), 0.5))
    x = tf.ones((batch, time, 2))
    mask = tf.sequence_mask([time] * (batch - 1) + [4], time)
    out, h = layer(x, mask=mask, training=True)
    out = out.numpy().astype("float64")

    def read_masks(h):  # [batch, steps, units] -> masks of steps 1.. `[batch, steps - 1, units]`
        return (np.arctanh(h[:, 1:]) - 0.5) / (0.25 * h[:, :-1])

    real = read_masks(out[:-1])  # the last sequence is padded after step 4
    np.testing.assert_allclose(real, real[:, :1].repeat(time - 1, axis=1), atol=1e-3)
    values = np.round(real[:, 0], 3)
    assert set(np.unique(values)) == {0.0, 1 / (1 - rate)}  # inverted dropout, some of each
    assert len({tuple(row) for row in values}) > 1  # masks differ across sequences
    last = read_masks(out[-1:, :4])[0]
    np.testing.assert_allclose(last, last[:1].repeat(3, axis=0), atol=1e-3)
    np.testing.assert_array_equal(out[-1, 4:], 0.0)  # padding still masked
    np.testing.assert_allclose(h[-1], out[-1, 3], atol=1e-6)
    out2, _ = layer(x, mask=mask, training=True)
    assert not np.allclose(out, out2)  # a fresh mask per call


def test_input_dropout_mask_is_the_same_at_every_step():
    # Zero recurrent weights and identical inputs: each step sees only its dropped input.
    layer = Recurrent(6, cell_type="simple_rnn", dropout=0.5, seed=4)
    layer.build((None, None, 6))
    layer.cell.kernel.assign(0.5 * tf.eye(6))
    layer.cell.recurrent_kernel.assign(tf.zeros((6, 6)))
    out, _ = layer(tf.ones((4, 5, 6)), training=True)
    np.testing.assert_allclose(out, tf.repeat(out[:, :1], 5, axis=1), atol=1e-7)
    np.testing.assert_allclose(np.unique(np.round(out.numpy(), 5)), [0.0, np.tanh(1.0)], atol=1e-5)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_training_recurrent_equals_step_by_step_with_the_same_masks(cell_type):
    # A cell with the same seed draws the masks Recurrent draws (input mask, then recurrent):
    # stepping with those fixed masks must reproduce the whole-sequence run, in both directions.
    rng = np.random.default_rng(20)
    x = tf.constant(rng.normal(size=(3, 5, 3)), tf.float32)
    lengths = [5, 2, 4]
    mask = tf.sequence_mask(lengths, 5)
    for backwards in (False, True):
        kwargs = dict(cell_type=cell_type, dropout=0.3, recurrent_dropout=0.4, seed=7)
        layer = Recurrent(4, go_backwards=backwards, **kwargs)
        layer.build((None, None, 3))
        randomize_weights(layer.cell, 21)
        twin = make_cell(cell_type, 4, dropout=0.3, recurrent_dropout=0.4, seed=7)
        masks = twin.get_dropout_masks(3, 3, training=True)
        assert all(m is not None for m in masks)
        out, *states = layer(x, mask=mask, training=True)
        ref_out, ref_states = _step_by_step(layer.cell, x, lengths, backwards, masks, True)
        np.testing.assert_allclose(out, ref_out, atol=1e-5)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(s, r, atol=1e-5)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_recurrent_config_round_trip_every_type(cell_type):
    layer = Recurrent(5, go_backwards=True, cell_type=cell_type, recurrent_dropout=0.2)
    clone = Recurrent.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert type(clone.cell) is type(layer.cell)


def test_unknown_cell_type():
    with pytest.raises(ValueError, match="'nope'"):
        Recurrent(2, cell_type="nope")


def test_dropout_free_layer_has_only_the_cell_weights():
    # No seed-generator variable unless a rate is set: checkpoints of old LSTM layers still match.
    layer = Recurrent(3)
    layer.build((None, None, 2))
    assert [v.name for v in layer.variables] == ["kernel", "recurrent_kernel", "bias"]


@pytest.mark.parametrize("cell_type", ["lstm", "simple_rnn"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.4])
def test_recurrent_training_loop_defers_the_recurrent_kernel_gradient_exactly(
    cell_type, go_backwards, recurrent_dropout, monkeypatch, gradient_sinks
):
    """One matmul after the loop gives the recurrent kernel the loop's own gradient,
    with padding, either direction and a recurrent dropout mask."""
    keras.utils.set_random_seed(0)
    layer = Recurrent(
        6, go_backwards=go_backwards, cell_type=cell_type, dropout=0.2,
        recurrent_dropout=recurrent_dropout, seed=3,
    )  # fmt: skip
    x = tf.random.normal([3, 5, 4], seed=4)
    mask = tf.constant([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]) > 0
    layer.build(x.shape)
    rng = [v for v in layer.non_trainable_variables if "seed_generator" in v.path]
    rng_start = [v.numpy() for v in rng]

    @tf.function
    def loss_and_gradients():
        for variable, value in zip(rng, rng_start):  # the same dropout masks each run
            variable.assign(value)
        with tf.GradientTape() as tape:
            outputs, *states = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(tf.sin(outputs)) + sum(tf.reduce_sum(s * s) for s in states)
        return loss, tape.gradient(loss, layer.trainable_variables)

    fast_loss, fast = loss_and_gradients()
    assert len(gradient_sinks) == 1  # the deferred path ran
    # Deferral off (pretransposed kernels only): options are read when a loop is traced.
    with loop_ops.options(defer_weight_gradients=False):
        pretransposed_loss, pretransposed = tf.function(loss_and_gradients.python_function)()
    assert len(gradient_sinks) == 1
    # Plain matmuls everywhere: autodiff of the loop as written.
    _plain_loops(monkeypatch)
    plain_loss, plain = tf.function(loss_and_gradients.python_function)()
    assert len(gradient_sinks) == 1
    for other_loss, other in ((pretransposed_loss, pretransposed), (plain_loss, plain)):
        np.testing.assert_allclose(fast_loss, other_loss, rtol=1e-6)
        for variable, a, b in zip(layer.trainable_variables, fast, other):
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=variable.path)


def _window_loss(outputs, states):
    weights = tf.reshape(tf.range(1, outputs.shape[1] + 1, dtype=outputs.dtype), [1, -1, 1])
    return tf.reduce_sum(tf.sin(outputs) * weights) + sum(tf.reduce_sum(s * s) for s in states)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_carried_state_over_two_windows_equals_one_pass(cell_type, gradient_sinks):
    """A sequence cut in two, the first window's final states handed to the second as its
    initial state, gives the unsplit pass's outputs, final state and gradients (training:
    the deferred recurrent-kernel gradient starts from that non-zero state)."""
    rng = np.random.default_rng(40)
    layer = Recurrent(5, cell_type=cell_type)
    layer.build((None, None, 3))
    randomize_weights(layer.cell, 41)
    x = tf.constant(rng.normal(size=(3, 7, 3)), tf.float32)
    mask = tf.sequence_mask([7, 5, 3], 7)  # the second window pads two; the third is all padding
    cut = 3
    variables = layer.trainable_variables

    def one_pass(training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs, *states = layer(x, mask=mask, training=training)
            loss = _window_loss(outputs, states)
        return outputs, states, tape.gradient(loss, [x, *variables])

    def two_windows(training, carry=True):
        with tf.GradientTape() as tape:
            tape.watch(x)
            first, *states = layer(x[:, :cut], mask=mask[:, :cut], training=training)
            carried = states if carry else None
            second, *states = layer(
                x[:, cut:], mask=mask[:, cut:], training=training, initial_state=carried
            )
            outputs = tf.concat([first, second], axis=1)
            loss = _window_loss(outputs, states)
        return outputs, states, tape.gradient(loss, [x, *variables])

    ref_out, ref_states, ref_grads = one_pass(False)
    assert len(ref_states) == len(layer.cell.state_size)
    np.testing.assert_array_equal(ref_out[2, 3:], 0.0)
    runs = {"inference": two_windows(False), "training": two_windows(True)}
    sinks = len(gradient_sinks)
    assert sinks == (2 if layer.cell.additive_recurrence else 0)  # deferred in both windows
    with loop_ops.options(defer_weight_gradients=False):
        runs["pretransposed"] = two_windows(True)
    assert len(gradient_sinks) == sinks
    runs["unsplit training"] = one_pass(True)
    for name, (outputs, states, grads) in runs.items():
        np.testing.assert_allclose(outputs, ref_out, atol=1e-5, err_msg=name)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(s, r, atol=1e-5, err_msg=name)
        for variable, g, r in zip(["inputs", *variables], grads, ref_grads):
            assert g is not None, (name, variable)
            np.testing.assert_allclose(g, r, atol=1e-5, err_msg=f"{name}: {variable}")
    # The carried state matters: the second window from zeros is another sequence.
    fresh_out, fresh_states, _ = two_windows(False, carry=False)
    assert not np.allclose(fresh_out[:, cut:], ref_out[:, cut:], atol=1e-3)
    assert not np.allclose(fresh_states[0], ref_states[0], atol=1e-3)
