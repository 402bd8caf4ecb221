"""Decoder: the whole-sequence call and repeated step calls agree."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.layers.attention import ATTENTION_TYPES
from seq2seq_tf.layers.cells import RecurrentCell
from seq2seq_tf.decoders.rnn import RNNDecoder as AttentionDecoder
from seq2seq_tf.model import Seq2Seq


@pytest.mark.parametrize("attention", ATTENTION_TYPES)
def test_call_equals_repeated_step(attention):
    model = Seq2Seq(40, 8, 2, 6, 2, 12, 10, bridge="copy", dropout=0.3, attention_type=attention)
    source = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11, 12], [2, 12, 13, 0, 0]])
    logits = model((source, target_in), training=False)
    state = model.initial_state(source)
    for t in range(target_in.shape[1]):
        step_logits, state = model.step(target_in[:, t], state)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)


def test_decoder_state_carries_memory_and_feed():
    model = Seq2Seq(40, 8, 1, 6, 1, 12, 10, bridge="copy")
    state = model.initial_state(tf.constant([[5, 6, 3]]))
    assert set(state) == {"cells", "feed", "memory", "keys", "mask", "alignment"}
    assert state["feed"].shape == (1, 10) and state["keys"].shape == (1, 3, 12)


def test_recurrent_dropout_only_acts_in_training():
    source = tf.constant([[5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11]])
    plain = Seq2Seq(40, 8, 2, 6, 2, 12, 10, bridge="copy")
    dropped = Seq2Seq(40, 8, 2, 6, 2, 12, 10, bridge="copy", recurrent_dropout=0.5)
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        dropped((source, target_in), training=False), plain((source, target_in)), atol=1e-6
    )
    trained = dropped((source, target_in), training=True)
    assert np.all(np.isfinite(trained.numpy()))
    assert not np.allclose(trained, plain((source, target_in)), atol=1e-4)


@pytest.mark.parametrize(
    "cell, placement, feeding, dropout",
    [
        ("lstm", "luong", True, 0.0),
        ("lstm", "luong", False, 0.0),
        ("lstm", "gnmt", True, 0.3),
        ("lstm", "bahdanau", False, 0.3),
        ("gru", "gnmt", True, 0.0),
        ("layer_norm_lstm", "bahdanau", False, 0.0),
        ("layer_norm_lstm", "gnmt", True, 0.0),
        ("simple_rnn", "luong", True, 0.3),
        ("gru_reset_before", "luong", True, 0.0),
    ],
)
def test_training_loop_with_pretransposed_kernels_has_the_same_gradients(
    cell, placement, feeding, dropout, monkeypatch, gradient_sinks
):
    """The training path (kernels transposed once outside the loops, and for LSTM and
    SimpleRNN weight gradients taken after the loops) changes no number."""
    source = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
    target_in = tf.constant([[2, 9, 10, 11, 12], [2, 12, 13, 0, 0]])
    model = Seq2Seq(
        40, 8, 2, 6, 2, 12, 10, bridge="dense", encoder_cell=cell, decoder_cell=cell,
        attention_placement=placement, input_feeding=feeding, dropout=dropout,
        recurrent_dropout=dropout,
    )  # fmt: skip
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

    fast_loss, fast = loss_and_gradients()
    # Deferred: 4 encoder loops, then the decoder's layers and attention layer.
    assert len(gradient_sinks) == (4 + 3 if cell in ("lstm", "simple_rnn") else 0)
    monkeypatch.setattr(RecurrentCell, "loop_kernels", lambda self, dtype="float32": None)
    monkeypatch.setattr(AttentionDecoder, "_loop_kernels", lambda self, dtype: None)
    plain_loss, plain = loss_and_gradients()
    np.testing.assert_allclose(fast_loss, plain_loss, rtol=1e-6)
    for variable, a, b in zip(model.trainable_variables, fast, plain):
        np.testing.assert_allclose(
            tf.convert_to_tensor(a), tf.convert_to_tensor(b), atol=1e-5, err_msg=variable.path
        )
