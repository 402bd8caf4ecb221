"""Token cross entropy with label smoothing, the loss every task trains with."""

from __future__ import annotations

import tensorflow as tf


def sequence_loss(logits, target_out, label_smoothing: float, pad_id: int = 0):
    """Masked cross entropy over real target tokens.

    Args:
        logits: `[batch, tgt_len, vocab]`.
        target_out: `[batch, tgt_len]` int, pad_id on padding.
        label_smoothing: epsilon of the smoothed targets.

    Returns:
        (smoothed loss summed over tokens, plain NLL summed over tokens, token count);
        the NLL gives an honest perplexity.
    """
    mask = tf.cast(tf.not_equal(target_out, pad_id), tf.float32)
    smoothed, nll = token_cross_entropy(logits, target_out, label_smoothing)
    return tf.reduce_sum(smoothed * mask), tf.reduce_sum(nll * mask), tf.reduce_sum(mask)


def token_cross_entropy(logits, labels, label_smoothing: float):
    """Per-token label-smoothed cross entropy and plain NLL, with one fused gradient.

    Smoothed targets q = (1 - eps) one_hot + eps / V give
        -sum q log p = (1 - eps) nll + eps (logsumexp - mean logits)
                     = nll + eps (logit_target - mean logits),
    since logsumexp = nll + logit_target: one softmax pass and no `[..., vocab]`
    one-hot, the same value as keras' smoothed loss. The gradient,
    softmax - one_hot + eps (one_hot - 1 / V), is built from the softmax that the
    cross-entropy kernel already returns; autodiff of the formula above would add
    a scattered and a broadcast `[..., vocab]` tensor to it.

    Args:
        logits: `[..., vocab]`, any float dtype (the loss is float32).
        labels: `[...]` int, each in [0, vocab).
        label_smoothing: eps.

    Returns:
        (smoothed loss, NLL), each `[...]` float32.
    """
    eps = float(label_smoothing)
    vocab = tf.shape(logits)[-1]
    flat_labels = tf.reshape(labels, [-1])

    @tf.custom_gradient
    def fused(flat_logits):
        nll, softmax_minus_one_hot = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(
            features=flat_logits, labels=flat_labels
        )
        smoothed = nll
        if eps:
            target_logit = tf.gather(flat_logits, flat_labels, batch_dims=1)
            smoothed = nll + eps * (target_logit - tf.reduce_mean(flat_logits, axis=-1))

        def grad(d_smoothed, d_nll):
            d_logits = softmax_minus_one_hot * (d_smoothed + d_nll)[:, None]
            if not eps:
                return d_logits
            d_logits -= (eps / tf.cast(vocab, tf.float32)) * d_smoothed[:, None]
            rows = tf.range(tf.shape(flat_labels)[0], dtype=flat_labels.dtype)
            at_labels = tf.stack([rows, flat_labels], axis=1)
            return tf.tensor_scatter_nd_add(d_logits, at_labels, eps * d_smoothed)

        return (smoothed, nll), grad

    smoothed, nll = fused(tf.reshape(tf.cast(logits, tf.float32), [-1, vocab]))
    shape = tf.shape(labels)
    return tf.reshape(smoothed, shape), tf.reshape(nll, shape)
