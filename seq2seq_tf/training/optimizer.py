"""Keras Adam with each dense update as one fused TensorFlow kernel.

Keras 3's Adam updates a variable with about a dozen elementwise ops (m, v, the
square root, the division, three assignments), each a full pass over the
variable. rnn-base has 12M dense parameters, so that is over a gigabyte of
memory traffic per training step on a CPU. TensorFlow's `ResourceApplyAdam`
does the same arithmetic in one pass over var, m, v and the gradient.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, same variables and same updates, dense ones fused.

    Keras's Adam and TF's kernel compute the same thing:
        alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m += (1 - beta_1)(g - m);  v += (1 - beta_2)(g^2 - v)
        var -= alpha m / (sqrt(v) + epsilon)
    Sparse gradients (the embeddings' IndexedSlices), amsgrad, non-float32
    variables and distribution strategies take Keras's own path.
    """

    def __init__(self, *args, name: str = "adam", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
            or variable.dtype != "float32"
            or tf.distribute.has_strategy()
        ):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, tf.float32), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, tf.float32), step),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=tf.cast(self.beta_1, tf.float32),
            beta2=tf.cast(self.beta_2, tf.float32),
            epsilon=tf.cast(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32),
        )
