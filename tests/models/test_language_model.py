"""LanguageModel: windows with the state carried equal one pass, any cell, stock-Keras
agreement, tied embeddings, dropout, config round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import model_config, randomize_weights

from seq2seq_tf.layers.cells import CELL_TYPES
from seq2seq_tf.models import LanguageModel, build_language_model


def _model(vocab=30, **fields):
    fields = {
        "embedding_dim": 8,
        "decoder_layers": 2,
        "decoder_units": 12,
        "dropout": 0.0,
        **fields,
    }
    return build_language_model(model_config(**fields), vocab)


def _nll(logits, labels):
    """Mean NLL by NumPy (independent of the toolkit's loss)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(labels)[..., None], -1).mean()


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_windows_with_carried_state_give_the_loss_of_one_pass(cell):
    model = _model(decoder_cell=cell)
    randomize_weights(model, 3)  # so the state a window starts from shows in its logits
    ids = np.random.default_rng(0).integers(4, 30, size=(3, 25)).astype(np.int32)
    inputs, labels = ids[:, :-1], ids[:, 1:]
    whole = model(tf.constant(inputs))  # one pass from zeros
    state = model.initial_state(3)
    parts = []
    for start in range(0, 24, 8):
        features, state = model.forward(tf.constant(inputs[:, start : start + 8]), state)
        parts.append(tf.transpose(model.output_logits(features), [1, 0, 2]))
    windowed = tf.concat(parts, axis=1)
    np.testing.assert_allclose(windowed, whole, atol=2e-5)
    assert _nll(windowed, labels) == pytest.approx(_nll(whole, labels), rel=1e-5)
    # Without the carried state the windows' first logits differ.
    reset = tf.concat([model(tf.constant(inputs[:, s : s + 8])) for s in range(0, 24, 8)], axis=1)
    assert np.abs(np.asarray(reset) - np.asarray(whole))[:, 8].max() > 1e-2


def test_one_lstm_layer_equals_stock_keras_with_the_same_weights():
    model = _model(decoder_layers=1, decoder_units=10)
    for weight in model.weights:  # forget-gate bias, embeddings, everything random
        weight.assign(np.random.default_rng(1).normal(scale=0.4, size=weight.shape))
    dec = model.decoder
    reference = keras.Sequential(
        [
            keras.layers.Embedding(30, 8),
            keras.layers.LSTM(10, return_sequences=True),
            keras.layers.Dense(30),
        ]
    )
    reference.build((None, None))
    reference.layers[0].embeddings.assign(dec.embedding.embeddings)
    cell = reference.layers[1].cell
    cell.kernel.assign(dec.cells[0].kernel)
    cell.recurrent_kernel.assign(dec.cells[0].recurrent_kernel)
    cell.bias.assign(dec.cells[0].bias)
    reference.layers[2].kernel.assign(dec.output_layer.kernel)
    reference.layers[2].bias.assign(dec.output_layer.bias)
    ids = tf.constant(np.random.default_rng(2).integers(0, 30, size=(2, 9)), tf.int32)
    np.testing.assert_allclose(model(ids), reference(ids), atol=1e-5)


def test_step_by_step_equals_the_whole_sequence():
    model = _model(decoder_cell="layer_norm_lstm", decoder_layers=3)
    ids = tf.constant([[4, 9, 12, 5, 7], [6, 6, 8, 20, 4]])
    whole = model(ids)
    state = model.initial_state(2)
    for t in range(5):
        logits, state = model.step(ids[:, t], state)
        np.testing.assert_allclose(logits, whole[:, t], atol=1e-5)


def test_tied_embeddings_share_the_matrix_and_need_matching_widths():
    model = _model(embedding_dim=12, decoder_units=12, tie_embeddings=True)
    assert not hasattr(model.decoder, "output_layer")
    features = tf.random.normal([5, 12])
    expected = features.numpy() @ model.decoder.embedding.embeddings.numpy().T
    np.testing.assert_allclose(model.output_logits(features), expected, atol=1e-5)
    with pytest.raises(ValueError, match="tie_embeddings needs"):
        _model(embedding_dim=8, decoder_units=12, tie_embeddings=True)


def test_dropout_and_recurrent_dropout_act_only_in_training():
    model = _model(dropout=0.3, recurrent_dropout=0.3)
    ids = tf.constant([[4, 9, 12, 5, 7, 8]])
    np.testing.assert_allclose(model(ids), model(ids), atol=0)
    state = model.initial_state(1)
    a, _ = model.forward(ids, state, training=True)
    b, _ = model.forward(ids, state, training=True)
    assert not np.allclose(a, b)


def test_config_round_trip_keeps_the_architecture():
    model = _model(decoder_cell="gru", decoder_residual=True)
    clone = LanguageModel.from_config(model.get_config())
    assert clone.decoder.cell_type == "gru" and clone.decoder.residual
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
