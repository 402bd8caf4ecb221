"""RNN decoder: the whole-sequence pass and repeated step calls agree, with and without memory."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import make_seq2seq

from seq2seq_tf.decoders import rnn
from seq2seq_tf.decoders.rnn import RNNDecoder
from seq2seq_tf.layers import loop_ops
from seq2seq_tf.layers.attention import ATTENTION_TYPES

SIZES = dict(
    embedding_dim=8,
    encoder_layers=2,
    encoder_units=6,
    decoder_layers=2,
    decoder_units=12,
    attention_units=10,
)


def _plain_loops(monkeypatch) -> None:
    """Every loop multiplies plainly (LoopKernels with training=False): autodiff's reference."""

    class PlainLoopKernels(loop_ops.LoopKernels):
        def __init__(self, kernels, dtype, training=False, groups=None):
            super().__init__(kernels, dtype, training=False, groups=groups)

    monkeypatch.setattr(loop_ops, "LoopKernels", PlainLoopKernels)  # encoder layers
    monkeypatch.setattr(rnn, "LoopKernels", PlainLoopKernels)  # the decoder


@pytest.mark.parametrize("attention", ATTENTION_TYPES)
def test_call_equals_repeated_step(attention):
    model = make_seq2seq(40, **SIZES, bridge="copy", dropout=0.3, attention=attention)
    source = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11, 12], [2, 12, 13, 0, 0]])
    logits = model((source, target_in), training=False)
    state = model.initial_state(source)
    for t in range(target_in.shape[1]):
        step_logits, state = model.step(target_in[:, t], state)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)


def test_forward_gives_time_major_features_and_the_final_state():
    model = make_seq2seq(40, **SIZES, bridge="copy")
    source = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11], [2, 12, 13, 0]])
    state = model.initial_state(source)
    features, final = model.decoder.forward(target_in, state)
    assert features.shape == (4, 2, 10)  # steps x batch x attention_units
    np.testing.assert_allclose(
        model.decoder.output_logits(tf.transpose(features, [1, 0, 2])),
        model((source, target_in)),
        atol=1e-6,
    )
    for t in range(4):
        _, state = model.step(target_in[:, t], state)
    np.testing.assert_allclose(final["feed"], state["feed"], atol=1e-5)
    np.testing.assert_allclose(final["alignment"], state["alignment"], atol=1e-5)
    np.testing.assert_allclose(model.alignment(final), final["alignment"])
    for layer, want in zip(final["cells"], state["cells"]):
        for a, b in zip(layer, want):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_decoder_state_carries_memory_and_feed():
    model = make_seq2seq(40, **{**SIZES, "encoder_layers": 1, "decoder_layers": 1}, bridge="copy")
    state = model.initial_state(tf.constant([[5, 6, 3]]))
    assert set(state) == {"cells", "feed", "memory", "keys", "mask", "alignment"}
    assert state["feed"].shape == (1, 10) and state["keys"].shape == (1, 3, 12)
    assert model.beam_invariant == model.decoder.beam_invariant == ("memory", "keys", "mask")
    assert model.decoder.alignment(state) is state["alignment"]
    np.testing.assert_array_equal(state["alignment"], np.zeros((1, 3)))


def test_recurrent_dropout_only_acts_in_training():
    source = tf.constant([[5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11]])
    plain = make_seq2seq(40, **SIZES, bridge="copy")
    dropped = make_seq2seq(40, **SIZES, bridge="copy", recurrent_dropout=0.5)
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        dropped((source, target_in), training=False), plain((source, target_in)), atol=1e-6
    )
    trained = dropped((source, target_in), training=True)
    assert np.all(np.isfinite(trained.numpy()))
    assert not np.allclose(trained, plain((source, target_in)), atol=1e-4)


@contextlib.contextmanager
def _floatx(dtype: str):
    """Layers made inside get this variable and compute dtype."""
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)  # the global policy is fixed once a layer is made
    try:
        yield
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


def _gradients_function(model, source, target_in):
    """Traces a fresh loss-and-gradients function per call (loop options are read when traced)."""
    model((source, target_in))
    rng = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
    rng_start = [v.numpy() for v in rng]

    def loss_and_gradients():
        @tf.function
        def run():
            for variable, value in zip(rng, rng_start):  # the same dropout masks each run
                variable.assign(value)
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.sin(model((source, target_in), training=True)))
            return loss, tape.gradient(loss, model.trainable_variables)

        return run()

    return loss_and_gradients


def _assert_same_gradients(model, fast, other):
    (fast_loss, fast_grads), (other_loss, other_grads) = fast, other
    np.testing.assert_allclose(fast_loss, other_loss, rtol=1e-6)
    for variable, a, b in zip(model.trainable_variables, fast_grads, other_grads):
        np.testing.assert_allclose(
            tf.convert_to_tensor(a), tf.convert_to_tensor(b), atol=1e-5, err_msg=variable.path
        )


@pytest.mark.parametrize(
    "cell, placement, feeding, dropout",
    [
        # Each placement once, feeding on and off, dropout on and off; the two cells
        # whose weight gradients are deferred (LSTM, SimpleRNN) and one of the two with
        # pretransposed kernels only (layer-norm LSTM; GRU goes through the same
        # LoopKernels). The NumPy references of tests/decoders/test_rnn_reference.py
        # cover every combination of the step itself.
        ("lstm", "luong", True, 0.0),
        ("lstm", "bahdanau", False, 0.3),
        ("layer_norm_lstm", "gnmt", False, 0.0),
        ("simple_rnn", "gnmt", True, 0.3),
    ],
)
def test_training_loop_with_pretransposed_kernels_has_the_same_gradients(
    cell, placement, feeding, dropout, monkeypatch, gradient_sinks
):
    """The training path (kernels transposed once outside the loops, and for LSTM and
    SimpleRNN weight gradients taken after the loops) changes no number.

    Deferral is checked in float32, the training dtype, against the same loops with it
    switched off. The fast loops against plain autodiff are checked in float64: the two
    multiply in different GEMMs, and in float32 these gradients (up to a few hundred
    with layer norm or dropout's 1 / (1 - rate), sums of larger terms) differ by their
    rounding, which atol 1e-5 cannot absorb (it failed on the pre-restructure code too).
    """
    source = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11, 12], [2, 12, 13, 0, 0]])
    fields = dict(
        bridge="dense", encoder_cell=cell, decoder_cell=cell, attention_placement=placement,
        input_feeding=feeding, dropout=dropout, recurrent_dropout=dropout,
    )  # fmt: skip
    # Deferred: 4 encoder loops, then the decoder's layers and attention layer.
    sinks = 4 + 3 if cell in ("lstm", "simple_rnn") else 0

    model = make_seq2seq(40, **SIZES, **fields)
    loss_and_gradients = _gradients_function(model, source, target_in)
    fast = loss_and_gradients()
    assert len(gradient_sinks) == sinks
    with loop_ops.options(defer_weight_gradients=False):  # pretransposed kernels only
        pretransposed = loss_and_gradients()
    assert len(gradient_sinks) == sinks
    _assert_same_gradients(model, fast, pretransposed)

    with _floatx("float64"):
        model = make_seq2seq(40, **SIZES, **fields)
        assert all(v.dtype == "float64" for v in model.trainable_variables)
        loss_and_gradients = _gradients_function(model, source, target_in)
        fast = loss_and_gradients()
        assert len(gradient_sinks) == 2 * sinks
        _plain_loops(monkeypatch)  # plain matmuls: autodiff of the loops as written
        plain = loss_and_gradients()
        assert len(gradient_sinks) == 2 * sinks
    assert fast[0].dtype == tf.float64
    _assert_same_gradients(model, fast, plain)


# --- Without memory: a plain stacked RNN (a language model's decoder) ---------------------------


def _plain_decoder(cell_type: str = "lstm", **kwargs) -> RNNDecoder:
    decoder = RNNDecoder(40, 8, 2, 12, attention_type=None, cell_type=cell_type, **kwargs)
    decoder.build()
    rng = np.random.default_rng(7)
    for weight in decoder.weights:  # non-zero biases: a zero state would not stay zero
        weight.assign(weight + rng.normal(scale=0.2, size=weight.shape).astype("float32"))
    return decoder


IDS = tf.constant([[2, 9, 10, 11, 12, 13, 14], [2, 12, 13, 5, 6, 7, 8]])


def _check_cells_equal(got, want, err_msg=""):
    assert len(got) == len(want)
    for layer, want_layer in zip(got, want):
        assert len(layer) == len(want_layer)
        for a, b in zip(layer, want_layer):
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=err_msg)


def test_decoder_without_memory_starts_from_zeros_and_has_no_beam_invariant():
    decoder = _plain_decoder()
    assert not decoder.attends and decoder.beam_invariant == ()
    assert decoder.output_dim == 12 and not decoder.input_feeding
    state = decoder.initial_state(2)
    assert set(state) == {"cells"}
    assert [[tuple(s.shape) for s in layer] for layer in state["cells"]] == [[(2, 12)] * 2] * 2
    _check_cells_equal(state["cells"], [[np.zeros((2, 12))] * 2] * 2)
    assert not any(hasattr(decoder, name) for name in ("attention", "attention_layer"))
    with pytest.raises(ValueError, match="memory width"):
        RNNDecoder(40, 8, 1, 12, attention_units=10).build()  # attention needs a memory


@pytest.mark.parametrize("cell_type", ["lstm", "gru", "layer_norm_lstm"])
def test_decoder_without_memory_forward_equals_repeated_step(cell_type):
    decoder = _plain_decoder(cell_type)
    features, final = decoder.forward(IDS, decoder.initial_state(2))
    assert features.shape == (7, 2, 12)  # steps x batch x units: the top layer's h
    logits = decoder.output_logits(features)
    np.testing.assert_allclose(decoder(IDS, decoder.initial_state(2)),
                               tf.transpose(logits, [1, 0, 2]), atol=1e-6)  # fmt: skip
    state = decoder.initial_state(2)
    for t in range(IDS.shape[1]):
        step_logits, state = decoder.step(IDS[:, t], state)
        np.testing.assert_allclose(step_logits, logits[t], atol=1e-5)
        np.testing.assert_allclose(features[t], state["cells"][-1][0], atol=1e-5)
    _check_cells_equal(final["cells"], state["cells"])


@pytest.mark.parametrize("cell_type", ["lstm", "gru", "simple_rnn", "layer_norm_lstm"])
def test_decoder_without_memory_carries_its_state_across_windows(cell_type, gradient_sinks):
    """Two windows, the first one's final state handed to the second, give one pass's
    features, final state and (training, deferred or not) gradients."""
    decoder = _plain_decoder(cell_type)
    cut = 3

    def one_pass(training):
        with tf.GradientTape() as tape:
            features, final = decoder.forward(IDS, decoder.initial_state(2), training)
            loss = tf.reduce_sum(tf.sin(decoder.output_logits(features)))
        return features, final, tape.gradient(loss, decoder.trainable_variables)

    def two_windows(training, carry=True):
        with tf.GradientTape() as tape:
            first, state = decoder.forward(IDS[:, :cut], decoder.initial_state(2), training)
            start = decoder.initial_state(2, cell_states=state["cells"] if carry else None)
            second, final = decoder.forward(IDS[:, cut:], start, training)
            features = tf.concat([first, second], axis=0)  # time-major
            loss = tf.reduce_sum(tf.sin(decoder.output_logits(features)))
        return features, final, tape.gradient(loss, decoder.trainable_variables)

    ref_features, ref_final, ref_grads = one_pass(False)
    runs = {"inference": two_windows(False), "training": two_windows(True)}
    deferred = cell_type in ("lstm", "simple_rnn")
    assert len(gradient_sinks) == (2 * 2 if deferred else 0)  # layer_0 and layer_1, twice
    with loop_ops.options(defer_weight_gradients=False):
        runs["pretransposed"] = two_windows(True)
    assert len(gradient_sinks) == (4 if deferred else 0)
    for name, (features, final, grads) in runs.items():
        np.testing.assert_allclose(features, ref_features, atol=1e-5, err_msg=name)
        _check_cells_equal(final["cells"], ref_final["cells"], err_msg=name)
        for variable, g, r in zip(decoder.trainable_variables, grads, ref_grads):
            assert g is not None, (name, variable.path)
            # Gradients reach ~20 here (layer norm): float32 sums in another order
            # differ by a few ulps of that (seen: 3e-5 absolute, 1.7e-6 relative).
            np.testing.assert_allclose(
                tf.convert_to_tensor(g), tf.convert_to_tensor(r), atol=1e-5, rtol=1e-5,
                err_msg=f"{name}: {variable.path}",
            )  # fmt: skip
    fresh, _, _ = two_windows(False, carry=False)
    assert not np.allclose(fresh[cut:], ref_features[cut:], atol=1e-3)  # the state matters


def test_decoder_without_memory_config_round_trip():
    decoder = RNNDecoder(40, 8, 2, 12, attention_type=None, cell_type="gru", residual=True)
    clone = RNNDecoder.from_config(decoder.get_config())
    assert clone.get_config() == decoder.get_config()
    assert clone.attention_type is None and clone.beam_invariant == ()
    clone.build()
    decoder.build()
    assert [w.shape for w in clone.weights] == [w.shape for w in decoder.weights]


@pytest.mark.parametrize("tie", [False, True])
def test_step_features_output_weights_and_input_table_make_the_steps_logits(tie):
    """What a search over its own columns builds from (serving.search_columns)."""
    output_ids = (0, 1, 2, 3, 7, 9, 12, 20)
    decoder = RNNDecoder(
        40, 12, 2, 12, attention_type=None, tie_embeddings=tie, output_ids=output_ids
    )
    decoder.build()
    rng = np.random.default_rng(3)
    for weight in decoder.weights:
        weight.assign(weight + rng.normal(scale=0.2, size=weight.shape).astype("float32"))
    ids = tf.constant([9, 2, 20])
    state = decoder.initial_state(3)
    logits, _ = decoder.step(ids, state)
    table = decoder.input_table()
    assert table.shape == (40, 4 * 12)
    features, _ = decoder.step_features(ids, state, embedded=tf.gather(table, ids))
    kernel, bias = decoder.output_weights()
    assert kernel.shape == (12, len(output_ids))
    columns = decoder.output_labels(tf.constant([7, 20, 3]))
    np.testing.assert_allclose(
        tf.gather(features @ kernel + bias, columns, axis=1),
        tf.gather(logits, [7, 20, 3], axis=1),
        atol=1e-5,
    )


def test_word_dropout_turns_training_inputs_into_unk_and_leaves_inference_alone():
    kwargs = dict(attention_type=None, name="decoder")
    decoder = RNNDecoder(30, 8, 1, 12, word_dropout=0.5, **kwargs)
    plain = RNNDecoder(30, 8, 1, 12, **kwargs)
    for layer in (decoder, plain):
        layer.build()
    for mine, theirs in zip(plain.trainable_weights, decoder.trainable_weights):
        mine.assign(theirs)
    ids = np.random.default_rng(0).integers(4, 30, size=(2, 8)).astype("int32")
    state = decoder.initial_state(2)
    features = decoder.forward(tf.constant(ids), state, training=False)[0]
    np.testing.assert_array_equal(features, plain.forward(tf.constant(ids), state)[0])
    trained = decoder.forward(tf.constant(ids), state, training=True)[0].numpy()
    # Rebuild which inputs were dropped, step by step: each step's features equal the
    # plain decoder's on the prefix found so far plus the token or UNK, never both.
    seen = np.zeros_like(ids)
    for t in range(ids.shape[1]):
        matches = []
        for token in (ids[:, t], np.full(2, rnn.UNK_ID, "int32")):
            seen[:, t] = token
            step = plain.forward(tf.constant(seen[:, : t + 1]), state)[0][t].numpy()
            matches.append(np.isclose(step, trained[t], atol=1e-6).all(axis=-1))
        kept, dropped = matches
        assert np.all(kept ^ dropped)
        seen[:, t] = np.where(dropped, rnn.UNK_ID, ids[:, t])
    assert 0 < np.mean(seen == rnn.UNK_ID) < 1
    np.testing.assert_allclose(trained, plain.forward(tf.constant(seen), state)[0], atol=1e-6)
    with pytest.raises(ValueError, match="word_dropout"):
        RNNDecoder(30, 8, 1, 12, word_dropout=1.0, **kwargs)
    assert RNNDecoder.from_config(decoder.get_config()).word_dropout == 0.5
