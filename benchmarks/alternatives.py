"""Levers that did not pay, timed against what the toolkit does, in one process.

    python benchmarks/alternatives.py                  # all comparisons
    python benchmarks/alternatives.py --only=block_lstm

Each comparison builds both forms at the rnn-base shapes (batch 64, about 16
source and 17 target steps, 256-unit encoder directions, 512-wide attention),
checks that they compute the same values and gradients, then times forward +
backward of each, alternating, and prints the best and median milliseconds and
the alternative's time over ours (above 1: ours is faster).

- block_lstm: one bidirectional encoder layer as our two `Recurrent` loops
  (hoisted input projection, deferred recurrent-kernel gradient) against TF's
  fused whole-sequence kernels `BlockLSTMV2` / `BlockLSTMGradV2` (gate order
  i, f, c, o as Keras), run on each direction's real tokens.
- attention: 17 decoder steps of Luong attention reads, the toolkit's
  `LuongAttention` (scores and context as batched matmuls) against
  multiply-and-reduce.
- projection: the two directions' input projections as two matmuls (ours)
  against one matmul by the concatenated kernels, split after.
"""

from __future__ import annotations

import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402
from tensorflow.python.ops import gen_rnn_ops  # noqa: E402

from seq2seq_tf.layers.attention import LuongAttention  # noqa: E402
from seq2seq_tf.layers.recurrent import Recurrent  # noqa: E402

_ONLY = flags.DEFINE_list("only", [], "Comparisons to run (default: all).")
_ROUNDS = flags.DEFINE_integer("rounds", 7, "Alternating timing rounds.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Calls per round.")

BATCH, SRC, TGT, UNITS, WIDTH = 64, 16, 17, 256, 512


def _lengths(rng, longest):
    return tf.constant(rng.integers(longest // 2, longest + 1, size=BATCH), tf.int32)


def _block_lstm(cell, inputs):
    """Time-major `[steps, batch, in]` through BlockLSTMV2: all h and c, `[steps, batch, units]`."""
    kernel = tf.concat([cell.kernel, cell.recurrent_kernel], axis=0)
    zeros = tf.zeros([tf.shape(inputs)[1], cell.units])
    no_peephole = tf.zeros([cell.units])
    steps = tf.cast(tf.shape(inputs)[0], tf.int64)

    @tf.custom_gradient
    def run(inputs, kernel, bias):
        # TF registers BlockLSTMGrad (gate order i, c, f, o) as BlockLSTMV2's
        # gradient; V2's own gradient kernel has V2's gate order.
        fixed = (steps, inputs, zeros, zeros, kernel, no_peephole, no_peephole, no_peephole, bias)
        i, c, f, o, ci, co, h = gen_rnn_ops.block_lstmv2(*fixed, cell_clip=0.0)

        def grad(dc, dh):
            grads = gen_rnn_ops.block_lstm_grad_v2(
                *fixed, i, c, f, o, ci, co, h, dc, dh, use_peephole=False
            )
            return grads[0], grads[3], grads[7]

        return (c, h), grad

    return run(inputs, kernel, cell.bias)[1]


def block_lstm(rng):
    forward, backward = Recurrent(UNITS), Recurrent(UNITS, go_backwards=True)
    for layer in (forward, backward):
        layer.build((None, None, UNITS))
    inputs = tf.random.normal([BATCH, SRC, UNITS])
    lengths = _lengths(rng, SRC)
    mask = tf.sequence_mask(lengths, SRC)
    upstream = tf.random.normal([BATCH, SRC, 2 * UNITS])
    weights = [*forward.trainable_variables, *backward.trainable_variables]

    def ours():
        with tf.GradientTape() as tape:
            fw, *_ = forward(inputs, mask=mask, training=True)
            bw, *_ = backward(inputs, mask=mask, training=True)
            loss = tf.reduce_sum(tf.concat([fw, bw], -1) * upstream)
        return tape.gradient(loss, weights)

    def fused():
        with tf.GradientTape() as tape:
            time_major = tf.transpose(inputs, [1, 0, 2])
            real = tf.cast(tf.transpose(mask)[..., None], tf.float32)
            fw = _block_lstm(forward.cell, time_major) * real
            reverse = tf.reverse_sequence(time_major, lengths, seq_axis=0, batch_axis=1)
            bw = _block_lstm(backward.cell, reverse) * real
            bw = tf.reverse_sequence(bw, lengths, seq_axis=0, batch_axis=1)
            outputs = tf.transpose(tf.concat([fw, bw], -1), [1, 0, 2])
            loss = tf.reduce_sum(outputs * upstream)
        return tape.gradient(loss, weights)

    return "bidirectional layer: BlockLSTMV2", ours, fused


def _read_reduced(query, keys, memory, mask):
    scores = tf.reduce_sum(keys * query[:, None, :], -1)
    weights = tf.nn.softmax(tf.where(mask, scores, -1e9)) * tf.cast(mask, tf.float32)
    return tf.reduce_sum(weights[:, :, None] * memory, 1)


def attention(rng):
    keys = tf.random.normal([BATCH, SRC, WIDTH])
    memory = tf.random.normal([BATCH, SRC, WIDTH])
    mask = tf.sequence_mask(_lengths(rng, SRC), SRC)
    start = tf.random.normal([BATCH, WIDTH]) * 0.05
    kernel = tf.random.normal([WIDTH, WIDTH]) * 0.01  # contracting: errors do not grow
    layer = LuongAttention(WIDTH, "dot", scaled=False)  # dot: the keys are given as they are
    layer.build((None, None, WIDTH))

    def ours(query, keys, memory, mask):
        return layer(query, keys, memory, mask)[0]

    def loop(read):
        def run():
            with tf.GradientTape() as tape:
                tape.watch([keys, memory, start])

                def body(t, query, total):
                    query = tf.tanh(tf.matmul(read(query, keys, memory, mask), kernel))
                    return t + 1, query, total + tf.reduce_sum(query)

                _, _, total = tf.while_loop(lambda t, *_: t < TGT, body, (0, start, 0.0))
            return tape.gradient(total, [keys, memory, start])

        return run

    return "attention read: multiply-reduce", loop(ours), loop(_read_reduced)


def projection(rng):
    inputs = tf.random.normal([BATCH * SRC, WIDTH])
    fw_kernel = tf.Variable(tf.random.normal([WIDTH, 4 * UNITS]) * 0.05)
    bw_kernel = tf.Variable(tf.random.normal([WIDTH, 4 * UNITS]) * 0.05)
    fw_up, bw_up = (tf.random.normal([BATCH * SRC, 4 * UNITS]) for _ in range(2))

    def ours():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            fw, bw = tf.matmul(inputs, fw_kernel), tf.matmul(inputs, bw_kernel)
            loss = tf.reduce_sum(fw * fw_up) + tf.reduce_sum(bw * bw_up)
        return tape.gradient(loss, [inputs, fw_kernel, bw_kernel])

    def merged():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            both = tf.matmul(inputs, tf.concat([fw_kernel, bw_kernel], axis=1))
            fw, bw = tf.split(both, 2, axis=1)
            loss = tf.reduce_sum(fw * fw_up) + tf.reduce_sum(bw * bw_up)
        return tape.gradient(loss, [inputs, fw_kernel, bw_kernel])

    return "input projections: one merged matmul", ours, merged


COMPARISONS = {"block_lstm": block_lstm, "attention": attention, "projection": projection}


def _time(fn) -> float:
    start = time.perf_counter()
    for _ in range(_REPEATS.value):
        result = fn()
    float(tf.reduce_sum(tf.convert_to_tensor(result[0])))
    return (time.perf_counter() - start) / _REPEATS.value * 1e3


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    print(f"{'alternative':38s} {'ours ms':>16s} {'alternative ms':>16s} {'ratio':>6s}")
    for name in _ONLY.value or COMPARISONS:
        label, ours, alternative = COMPARISONS[name](rng)
        ours, alternative = tf.function(ours), tf.function(alternative)
        for a, b in zip(ours(), alternative()):
            a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * float(tf.reduce_max(abs(a))))
        times = {ours: [], alternative: []}
        for _ in range(_ROUNDS.value):
            for fn in times:
                times[fn].append(_time(fn))
        best = {fn: min(t) for fn, t in times.items()}
        median = {fn: float(np.median(t)) for fn, t in times.items()}
        print(
            f"{label:38s} {best[ours]:7.1f} / {median[ours]:6.1f} "
            f"{best[alternative]:7.1f} / {median[alternative]:6.1f} "
            f"{median[alternative] / median[ours]:6.2f}"
        )
    print("(ms: best / median of the rounds, forward + backward; ratio: medians)")


if __name__ == "__main__":
    cli.run(main)
