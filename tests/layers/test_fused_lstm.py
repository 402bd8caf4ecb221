"""The fused path (keras.layers.LSTM on our variables) against our step loop.

On CPU keras runs its generic loop where a GPU would run cuDNN's kernel, so
these tests prove the fused path's code (weight sharing, lengths, reversal
within each sequence, empty rows) equal to the loop on the same weights, in
outputs and gradients; cuDNN itself is not run here (no GPU).
"""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf import config as config_lib
from seq2seq_tf.encoders.text import BidirectionalEncoder
from seq2seq_tf.layers import fused_lstm
from seq2seq_tf.layers.recurrent import Recurrent

# A padded batch: full, partial and empty rows (an empty row is what keras' cuDNN check rejects).
LENGTHS = [6, 3, 1, 0]


def _batch(width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(LENGTHS), max(LENGTHS), width)).astype(np.float32)
    mask = np.arange(max(LENGTHS))[None, :] < np.array(LENGTHS)[:, None]
    return tf.constant(x), tf.constant(mask)


def _run(layer, x, mask, implementation, training):
    layer.implementation = implementation
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs, h, c = layer(x, mask=mask, training=training)
        # A weighted sum reaches every output and state with distinct gradients.
        w = tf.cast(tf.range(1, tf.size(outputs) + 1), tf.float32)
        loss = tf.reduce_sum(tf.reshape(outputs, [-1]) * tf.sin(w)) + tf.reduce_sum(
            h * 0.3 - c * 0.7
        )
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return [outputs, h, c], grads


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_fused_equals_loop_outputs_states_and_gradients(go_backwards, training):
    layer = Recurrent(5, go_backwards=go_backwards, name="layer")
    layer.build((None, None, 3))
    x, mask = _batch(3)
    loop_values, loop_grads = _run(layer, x, mask, "loop", training)
    fused_values, fused_grads = _run(layer, x, mask, "fused", training)
    for a, b in zip(loop_values + loop_grads, fused_values + fused_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    outputs, h, _ = (v.numpy() for v in fused_values)
    mask = mask.numpy()
    assert not outputs[~mask].any()  # zeros on padding
    assert not h[3].any()  # the empty row: zero final state
    # Final state = the output at the last real token processed.
    last = 0 if go_backwards else LENGTHS[1] - 1
    np.testing.assert_allclose(h[1], outputs[1, last], rtol=1e-6)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_encoder_fused_equals_loop_in_tf_function(merge):
    encoder = BidirectionalEncoder(
        20, 4, num_layers=2, units=3, uni_layers=1, residual=True, merge=merge, pad_id=0
    )
    encoder.build((None, None))
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 20, size=(len(LENGTHS), max(LENGTHS)))
    ids = tf.constant(np.where(np.arange(max(LENGTHS))[None] < np.array(LENGTHS)[:, None], ids, 0))

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            memory = encoder(ids, training=True)
            states = tf.concat([s for layer in memory.final_states for s in layer], axis=-1)
            loss = tf.reduce_sum(tf.sin(memory.values)) + tf.reduce_sum(tf.cos(states))
        return memory.values, states, tape.gradient(loss, encoder.trainable_variables)

    layers = [*encoder.forward_layers, *encoder.backward_layers, *encoder.uni]
    results = {}
    for implementation in ("loop", "fused"):
        for layer in layers:
            layer.implementation = implementation
        run = tf.function(run.python_function)  # retrace with the other path
        results[implementation] = run()
    values, states, grads = results["loop"]
    f_values, f_states, f_grads = results["fused"]
    np.testing.assert_allclose(values.numpy(), f_values.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states.numpy(), f_states.numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, f_grads):
        np.testing.assert_allclose(
            tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), rtol=1e-5, atol=1e-6
        )


def test_paths_share_variables_so_checkpoints_are_interchangeable(tmp_path):
    loop = BidirectionalEncoder(10, 4, 2, 3, implementation="loop")
    fused = BidirectionalEncoder(10, 4, 2, 3, implementation="fused")
    loop.build((None, None))
    fused.build((None, None))
    assert len(fused.weights) == len(loop.weights)  # the keras LSTM adds none
    path = tf.train.Checkpoint(encoder=loop).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(encoder=fused).read(path).assert_consumed()
    for a, b in zip(loop.weights, fused.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_fused_path_leaves_a_seeded_initialization_alone():
    """keras' LSTM draws initializer seeds when constructed; a model with a fusable
    encoder must start from the same weights as before the fused path existed (the
    learning test fell from 0.89 to 0.56 exact match when it did not)."""
    keras.utils.set_random_seed(5)
    seeds = random.getstate()
    BidirectionalEncoder(10, 4, 2, 3, implementation="auto").build((None, None))
    after_fusable = random.getstate()
    keras.utils.set_random_seed(5)
    # The GRU cell is never fused and has as many initializers as the LSTM cell.
    BidirectionalEncoder(10, 4, 2, 3, cell_type="gru").build((None, None))
    assert after_fusable != seeds  # the encoder's own initializers do draw
    assert after_fusable == random.getstate()  # and keras' LSTM draws nothing more


def test_auto_is_the_loop_without_a_gpu_and_for_cells_cudnn_lacks():
    assert not fused_lstm.gpu_visible()  # these machines have none
    assert not Recurrent(3, implementation="auto").uses_fused()
    fused = Recurrent(3, implementation="fused")
    assert fused.uses_fused()
    with fused_lstm.loop_only():  # what an export traces
        assert not fused.uses_fused()
    with pytest.raises(ValueError, match="plain LSTM"):
        Recurrent(3, cell_type="gru", implementation="fused")
    with pytest.raises(ValueError, match="recurrent dropout"):
        Recurrent(3, recurrent_dropout=0.1, implementation="fused")


def test_config_refuses_fused_where_it_cannot_run():
    config = config_lib.default_config()
    config.model.encoder_kernel = "fused"
    config.model.encoder_cell = "layer_norm_lstm"
    with pytest.raises(config_lib.ConfigError, match="model.encoder_kernel"):
        config_lib.validate(config, need_data=False)
    config.model.encoder_cell = "lstm"
    config.model.encoder_kernel = "cudnn"
    with pytest.raises(config_lib.ConfigError, match="model.encoder_kernel"):
        config_lib.validate(config, need_data=False)


def test_fused_encoder_in_a_saved_model(tmp_path):
    encoder = BidirectionalEncoder(12, 4, 1, 3, implementation="fused")
    encoder.build((None, None))
    module = tf.Module()
    module.encoder = encoder
    module.encode = tf.function(
        lambda ids: encoder(ids, training=False).values,
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    ids = tf.constant([[3, 4, 5, 0], [6, 0, 0, 0]])
    expected = module.encode(ids)
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    np.testing.assert_allclose(loaded.encode(ids).numpy(), expected.numpy(), rtol=1e-6)
    encoder.forward_layers[0].implementation = "loop"
    encoder.backward_layers[0].implementation = "loop"
    loop = tf.function(lambda ids: encoder(ids, training=False).values)
    np.testing.assert_allclose(loop(ids).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
