"""Captioner: the doubly stochastic penalty by hand, the mean-feature bridge and the
no-attention bridge against NumPy, the context gate, training outputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from support import tiny_caption_config

from seq2seq_tf.models.captioner import attention_penalty, build_captioner


def test_penalty_hand_computed():
    # 2 steps, 1 caption, 3 positions; the second step is padding and must not count.
    alignments = np.array([[[0.5, 0.5, 0.0]], [[0.0, 0.0, 1.0]]], np.float32)  # T x B x L
    real = np.array([[True], [False]])
    full = np.array([[True, True, True]])
    # coverage (0.5, 0.5, 0): (0.5)^2 + (0.5)^2 + 1^2 = 1.5
    np.testing.assert_allclose(attention_penalty(alignments, real, full).numpy(), [1.5])
    # both steps real: coverage (0.5, 0.5, 1) -> 0.5; position 3 masked out -> 0.5 too
    both = np.array([[True], [True]])
    np.testing.assert_allclose(attention_penalty(alignments, both, full).numpy(), [0.5])
    masked = np.array([[True, True, False]])
    np.testing.assert_allclose(attention_penalty(alignments, real, masked).numpy(), [0.5])


def _model(**caption):
    config = tiny_caption_config("/unused", **caption)
    return build_captioner(config, vocab_size=11)


def test_mean_bridge_is_tanh_of_the_mean_annotation():
    model = _model()
    images = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    memory = model.encoder(images).values.numpy()  # 2 x 64 x 18
    kernel, bias = (w.numpy() for w in model.bridge.projection.weights)
    expected = np.tanh(memory.mean(axis=1) @ kernel + bias)  # h and c of the LSTM layer
    state = model.initial_state(images)
    h, c = (s.numpy() for s in state["cells"][0])
    np.testing.assert_allclose(np.concatenate([h, c], -1), expected, atol=1e-5)


def test_no_attention_bridge_reads_the_flattened_grid():
    model = _model(attend=False)
    images = np.random.RandomState(1).rand(2, 32, 32, 3).astype("float32")
    memory = model.encoder(images).values.numpy()
    kernel, bias = (w.numpy() for w in model.bridge.projection.weights)
    expected = np.tanh(memory.reshape(2, -1) @ kernel + bias)
    h, c = (s.numpy() for s in model.initial_state(images)["cells"][0])
    np.testing.assert_allclose(np.concatenate([h, c], -1), expected, atol=1e-5)
    assert "memory" not in model.initial_state(images)
    assert model.alignments(model.initial_state(images), tf.zeros([2, 4], tf.int32)).shape == (
        2,
        4,
        64,
    )


def test_context_gate_scales_the_context():
    model = _model()
    decoder = model.decoder
    images = np.random.RandomState(2).rand(1, 32, 32, 3).astype("float32")
    state = model.initial_state(images)
    query = state["cells"][0][0]
    plain, weights = decoder.attention(query, state["keys"], state["memory"], state["mask"])
    kernel, bias = (w.numpy() for w in decoder.gate_layer.weights)
    gate = 1.0 / (1.0 + np.exp(-(query.numpy() @ kernel + bias)))
    gated, same = decoder._attend(query, state)
    np.testing.assert_allclose(gated.numpy(), plain.numpy() * gate, atol=1e-6)
    np.testing.assert_allclose(same.numpy(), weights.numpy())


def test_teacher_forced_penalty_matches_the_step_alignments():
    model = _model()
    images = np.random.RandomState(3).rand(2, 32, 32, 3).astype("float32")
    target_in = tf.constant([[2, 5, 6, 7], [2, 8, 0, 0]])
    target_out = tf.constant([[5, 6, 7, 3], [8, 3, 0, 0]])
    logits, labels, penalty = model.teacher_forced(images, target_in, target_out, training=False)
    assert logits.shape == (6, 11) and labels.numpy().tolist() == [5, 8, 6, 3, 7, 3]
    # step by step through the search interface: coverage over the real steps
    state = model.initial_state(images)
    coverage = np.zeros((2, 64))
    for t in range(4):
        _, state = model.step(target_in[:, t], state)
        real = (target_out[:, t].numpy() != 0)[:, None]
        coverage += model.alignment(state).numpy() * real
    np.testing.assert_allclose(penalty.numpy(), ((1 - coverage) ** 2).sum(1), rtol=1e-5)
    # and the all-steps maps agree with the step alignments
    maps = model.alignments(model.initial_state(images), target_in).numpy()
    np.testing.assert_allclose(maps[:, -1], model.alignment(state).numpy(), atol=1e-6)
