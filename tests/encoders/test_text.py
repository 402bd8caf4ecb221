"""Bidirectional encoder: padding never changes a sentence's encoding."""

import numpy as np
import tensorflow as tf

from seq2seq_tf.encoders.text import BidirectionalEncoder
from seq2seq_tf.layers.memory import Memory


def test_padding_invariance_both_directions():
    encoder = BidirectionalEncoder(vocab_size=30, embedding_dim=8, num_layers=2, units=6)
    alone = encoder(tf.constant([[5, 9, 7, 3]]))
    batch = encoder(tf.constant([[5, 9, 7, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9, 3]]))
    assert isinstance(alone, Memory) and isinstance(batch, Memory)
    assert batch.values.shape == (2, 7, 12) and batch.mask.shape == (2, 7)
    # Forward half is units [:6], backward half [6:]; both must agree on real tokens.
    np.testing.assert_allclose(alone.values[0], batch.values[0, :4], atol=1e-6)
    np.testing.assert_array_equal(batch.values[0, 4:], 0.0)
    np.testing.assert_array_equal(batch.mask[0], [1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch.mask[1], [1] * 7)
    assert len(batch.final_states) == 2
    for (h1, c1), (h2, c2) in zip(alone.final_states, batch.final_states):
        np.testing.assert_allclose(h1[0], h2[0], atol=1e-6)
        np.testing.assert_allclose(c1[0], c2[0], atol=1e-6)


def test_pad_id_sets_the_mask():
    encoder = BidirectionalEncoder(30, 8, 1, 6, pad_id=1)
    memory = encoder(tf.constant([[5, 9, 0, 1, 1]]))
    np.testing.assert_array_equal(memory.mask[0], [1, 1, 1, 0, 0])  # 0 is a token here
    np.testing.assert_array_equal(memory.values[0, 3:], 0.0)
    assert BidirectionalEncoder.from_config(encoder.get_config()).pad_id == 1


def test_backward_direction_reads_right_to_left():
    encoder = BidirectionalEncoder(vocab_size=30, embedding_dim=8, num_layers=1, units=6)
    memory = encoder(tf.constant([[5, 9, 7, 3]])).values
    prefix = encoder(tf.constant([[5, 9]])).values
    # The forward state at t=1 sees only tokens 0..1; the backward one sees the whole suffix.
    np.testing.assert_allclose(memory[0, 1, :6], prefix[0, 1, :6], atol=1e-6)
    assert not np.allclose(memory[0, 1, 6:], prefix[0, 1, 6:], atol=1e-4)


def test_config_round_trip():
    encoder = BidirectionalEncoder(30, 8, 2, 6, dropout=0.2)
    clone = BidirectionalEncoder.from_config(encoder.get_config())
    assert (clone.num_layers, clone.units, clone.dropout) == (2, 6, 0.2)


def test_single_state_cells_return_one_state_per_layer():
    encoder = BidirectionalEncoder(30, 8, 2, 6, cell_type="gru")
    alone = encoder(tf.constant([[5, 9, 7, 3]]))
    batch = encoder(tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3]]))
    np.testing.assert_allclose(alone.values[0], batch.values[0, :4], atol=1e-6)
    # (h,) per layer, fw and bw concatenated
    assert [len(s) for s in batch.final_states] == [1, 1]
    for (h1,), (h2,) in zip(alone.final_states, batch.final_states):
        assert h2.shape == (2, 12)
        np.testing.assert_allclose(h1[0], h2[0], atol=1e-6)
    assert encoder.final_state_sizes() == [12, 12]
    assert BidirectionalEncoder.from_config(encoder.get_config()).cell_type == "gru"
