"""Our LSTM cell against keras.layers.LSTMCell, and the sequence layer around it."""

import keras
import numpy as np
import tensorflow as tf

from seq2seq_tf.layers.cells import LSTMCell, Recurrent, matmul_pretransposed, pretransposed


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


# --- More cell types, dropout, the generalized sequence layer -----------------------------------

import pytest  # noqa: E402

from seq2seq_tf.layers.cells import (  # noqa: E402
    CELL_TYPES,
    GRUCell,
    LayerNormLSTMCell,
    RecurrentCell,
    SimpleRNNCell,
    make_cell,
)

KERAS_TWINS = {
    "lstm": lambda u: keras.layers.LSTMCell(u),
    "gru": lambda u: keras.layers.GRUCell(u, reset_after=True),
    "gru_reset_before": lambda u: keras.layers.GRUCell(u, reset_after=False),
    "simple_rnn": lambda u: keras.layers.SimpleRNNCell(u),
}


def _randomize(layer: keras.layers.Layer, seed: int) -> None:
    """Random values in every weight (biases and norm parameters included)."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))


@pytest.mark.parametrize("cell_type", ["gru", "gru_reset_before", "simple_rnn"])
def test_cell_equals_keras_forward_and_gradients(cell_type):
    rng = np.random.default_rng(10)
    x = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    h = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    ours, reference = make_cell(cell_type, 4), KERAS_TWINS[cell_type](4)
    ours.build((None, 5))
    reference.build((None, 5))
    _randomize(reference, 11)
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
        _randomize(cell, 13)
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
        _randomize(layer.cell, 15)
        out, *states = layer(x, mask=mask)
        ref_out, ref_states = _step_by_step(layer.cell, x, lengths, backwards)
        np.testing.assert_allclose(out, ref_out, atol=1e-5)  # zeros on padding included
        assert len(states) == len(ref_states)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(s, r, atol=1e-5)


def _layer_norm(v, gamma, beta, eps=1e-3):
    mean = v.mean(-1, keepdims=True)
    var = v.var(-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * gamma + beta


def test_layer_norm_lstm_cell_matches_numpy_reference():
    rng = np.random.default_rng(16)
    cell = LayerNormLSTMCell(2)
    cell.build((None, 3))
    _randomize(cell, 17)
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
def test_dropout_inactive_when_not_training(cell_type):
    rng = np.random.default_rng(18)
    x = tf.constant(rng.normal(size=(2, 5, 3)), tf.float32)
    mask = tf.sequence_mask([5, 3], 5)
    plain = Recurrent(4, cell_type=cell_type)
    dropped = Recurrent(4, cell_type=cell_type, dropout=0.5, recurrent_dropout=0.5, seed=1)
    plain.build((None, None, 3))
    dropped.build((None, None, 3))
    _randomize(plain.cell, 19)
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
        _randomize(layer.cell, 21)
        twin = make_cell(cell_type, 4, dropout=0.3, recurrent_dropout=0.4, seed=7)
        masks = twin.get_dropout_masks(3, 3, training=True)
        assert all(m is not None for m in masks)
        out, *states = layer(x, mask=mask, training=True)
        ref_out, ref_states = _step_by_step(layer.cell, x, lengths, backwards, masks, True)
        np.testing.assert_allclose(out, ref_out, atol=1e-5)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(s, r, atol=1e-5)


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

    layer = Recurrent(5, go_backwards=True, cell_type=cell_type, recurrent_dropout=0.2)
    clone = Recurrent.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert type(clone.cell) is type(layer.cell)


def test_make_cell_types_and_unknown_type():
    assert isinstance(make_cell("lstm", 2), LSTMCell)
    assert isinstance(make_cell("simple_rnn", 2), SimpleRNNCell)
    assert isinstance(make_cell("layer_norm_lstm", 2), LayerNormLSTMCell)
    assert make_cell("gru", 2).reset_after and not make_cell("gru_reset_before", 2).reset_after
    with pytest.raises(ValueError, match="'gruu'"):
        make_cell("gruu", 2)
    with pytest.raises(ValueError, match="'nope'"):
        Recurrent(2, cell_type="nope")


def test_dropout_free_cells_have_only_their_weights():
    # No seed-generator variable unless a rate is set: checkpoints of old LSTM layers still match.
    assert not hasattr(LSTMCell(2), "seed_generator")
    assert hasattr(LSTMCell(2, recurrent_dropout=0.1), "seed_generator")
    layer = Recurrent(3)
    layer.build((None, None, 2))
    assert [v.name for v in layer.variables] == ["kernel", "recurrent_kernel", "bias"]


def test_matmul_pretransposed_has_the_plain_matmul_gradients():
    x = tf.random.normal([3, 5], seed=1)
    kernel = tf.random.normal([5, 7], seed=2)
    upstream = tf.random.normal([3, 7], seed=3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        fast = matmul_pretransposed(x, *pretransposed(kernel))
        plain = tf.matmul(x, kernel)
        fast_sum, plain_sum = tf.reduce_sum(fast * upstream), tf.reduce_sum(plain * upstream)
    np.testing.assert_allclose(fast, plain, atol=1e-6)
    for a, b in zip(tape.gradient(fast_sum, [x, kernel]), tape.gradient(plain_sum, [x, kernel])):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_deferred_kernel_gradient_is_taken_once_through_the_sink():
    from seq2seq_tf.layers.cells import DeferredKernel, gradient_sink

    xs = tf.random.normal([4, 3, 5], seed=1)  # 4 steps of [batch 3, in 5]
    kernel = tf.random.normal([5, 7], seed=2)
    upstream = tf.random.normal([4, 3, 7], seed=3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xs, kernel])
        deferred = DeferredKernel(kernel)
        sink = gradient_sink([deferred], [4, 3, 7], tf.float32)
        fast = tf.stack([deferred(xs[t]) + sink[t] for t in range(4)])
        deferred.inputs = xs  # what a loop records, step by step
        plain = tf.einsum("tbi,io->tbo", xs, kernel)
        fast_sum, plain_sum = tf.reduce_sum(fast * upstream), tf.reduce_sum(plain * upstream)
    np.testing.assert_array_equal(sink, tf.zeros([4, 3, 7]))
    np.testing.assert_allclose(fast, plain, atol=1e-5)
    for a, b in zip(tape.gradient(fast_sum, [xs, kernel]), tape.gradient(plain_sum, [xs, kernel])):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell_type", ["lstm", "simple_rnn"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.4])
def test_recurrent_training_loop_defers_the_recurrent_kernel_gradient_exactly(
    cell_type, go_backwards, recurrent_dropout, monkeypatch, gradient_sinks
):
    """One matmul after the loop gives the recurrent kernel the loop's own gradient,
    with padding, either direction and a recurrent dropout mask."""
    from seq2seq_tf import cells

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
    assert gradient_sinks  # the deferred path ran
    monkeypatch.setattr(cells.RecurrentCell, "loop_kernels", lambda self, dtype="float32": None)
    plain_loss, plain = tf.function(loss_and_gradients.python_function)()
    np.testing.assert_allclose(fast_loss, plain_loss, rtol=1e-6)
    for variable, a, b in zip(layer.trainable_variables, fast, plain):
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=variable.path)
