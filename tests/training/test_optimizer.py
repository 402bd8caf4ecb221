"""FusedAdam: the same updates as Keras's Adam, dense ones through one kernel."""

import keras
import numpy as np
import tensorflow as tf

from seq2seq_tf.training.optimizer import FusedAdam


def _train(optimizer_class, steps: int = 5) -> tuple[list[np.ndarray], bool]:
    """Weights and slots after a few updates of a dense kernel and an embedding (sparse
    gradients), and whether the step ran TF's fused Adam kernel."""
    rng = np.random.default_rng(0)
    dense = keras.Variable(rng.normal(size=(6, 4)).astype(np.float32), name="dense")
    table = keras.Variable(rng.normal(size=(10, 4)).astype(np.float32), name="table")
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5)
    optimizer = optimizer_class(learning_rate=schedule, beta_1=0.8, epsilon=1e-4)
    optimizer.build([dense, table])
    x = tf.constant(rng.normal(size=(3, 6)).astype(np.float32))
    ids = tf.constant([1, 4, 4, 7])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = tf.matmul(x, dense) ** 2
            loss = tf.reduce_sum(out) + tf.reduce_sum(tf.gather(table, ids) ** 3)
        grads = tape.gradient(loss, [dense, table])
        assert isinstance(grads[1], tf.IndexedSlices)
        optimizer.apply(grads, [dense, table])

    for _ in range(steps):
        step()
    ops = {op.type for op in step.get_concrete_function().graph.get_operations()}
    values = [dense.numpy(), table.numpy(), *(v.numpy() for v in optimizer.variables)]
    return values, "ResourceApplyAdam" in ops


def test_fused_adam_updates_equal_keras_adam():
    fused, fused_kernel_ran = _train(FusedAdam)
    assert fused_kernel_ran  # for the dense kernel; the embedding takes Keras's path
    reference, _ = _train(keras.optimizers.Adam)
    assert len(fused) == len(reference)
    for got, want in zip(fused, reference):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # float rounding order
    assert not np.allclose(fused[0], _train(FusedAdam, steps=0)[0][0])  # it did move


def test_fused_adam_leaves_amsgrad_to_keras():
    fused, fused_kernel_ran = _train(lambda **kw: FusedAdam(amsgrad=True, **kw))
    assert not fused_kernel_ran
    reference, _ = _train(lambda **kw: keras.optimizers.Adam(amsgrad=True, **kw))
    for got, want in zip(fused, reference):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # float rounding order
