"""Bidirectional encoder: padding never changes a sentence's encoding."""

import numpy as np
import tensorflow as tf

from seq2seq_tf.encoders.text import BidirectionalEncoder


def test_padding_invariance_both_directions():
    encoder = BidirectionalEncoder(vocab_size=30, embedding_dim=8, num_layers=2, units=6)
    alone = tf.constant([[5, 9, 7, 3]])
    batch = tf.constant([[5, 9, 7, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9, 3]])
    memory_alone, mask_alone, states_alone = encoder(alone)
    memory_batch, mask_batch, states_batch = encoder(batch)
    # Forward half is units [:6], backward half [6:]; both must agree on real tokens.
    np.testing.assert_allclose(memory_alone[0], memory_batch[0, :4], atol=1e-6)
    np.testing.assert_array_equal(memory_batch[0, 4:], 0.0)
    np.testing.assert_array_equal(mask_batch[0], [1, 1, 1, 1, 0, 0, 0])
    for (h1, c1), (h2, c2) in zip(states_alone, states_batch):
        np.testing.assert_allclose(h1[0], h2[0], atol=1e-6)
        np.testing.assert_allclose(c1[0], c2[0], atol=1e-6)


def test_backward_direction_reads_right_to_left():
    encoder = BidirectionalEncoder(vocab_size=30, embedding_dim=8, num_layers=1, units=6)
    memory, _, _ = encoder(tf.constant([[5, 9, 7, 3]]))
    prefix, _, _ = encoder(tf.constant([[5, 9]]))
    # The forward state at t=1 sees only tokens 0..1; the backward one sees the whole suffix.
    np.testing.assert_allclose(memory[0, 1, :6], prefix[0, 1, :6], atol=1e-6)
    assert not np.allclose(memory[0, 1, 6:], prefix[0, 1, 6:], atol=1e-4)


def test_config_round_trip():
    encoder = BidirectionalEncoder(30, 8, 2, 6, dropout=0.2)
    clone = BidirectionalEncoder.from_config(encoder.get_config())
    assert (clone.num_layers, clone.units, clone.dropout) == (2, 6, 0.2)


def test_single_state_cells_return_one_state_per_layer():
    encoder = BidirectionalEncoder(30, 8, 2, 6, cell_type="gru")
    alone = tf.constant([[5, 9, 7, 3]])
    batch = tf.constant([[5, 9, 7, 3, 0, 0], [4, 5, 6, 7, 8, 3]])
    memory_alone, _, states_alone = encoder(alone)
    memory_batch, _, states_batch = encoder(batch)
    np.testing.assert_allclose(memory_alone[0], memory_batch[0, :4], atol=1e-6)
    assert [len(s) for s in states_batch] == [1, 1]  # (h,) per layer, fw and bw concatenated
    for (h1,), (h2,) in zip(states_alone, states_batch):
        assert h2.shape == (2, 12)
        np.testing.assert_allclose(h1[0], h2[0], atol=1e-6)
    assert BidirectionalEncoder.from_config(encoder.get_config()).cell_type == "gru"
