"""Search with and without XLA (`jit_compile=True`), in one process, on the same batches.

    python benchmarks/search_jit.py --workdir=runs/m30k --input=data/multi30k/test_2016_flickr.en

Restores the workdir's best checkpoint, encodes the input with its SentencePiece
model, and decodes every batch greedily and with beam 5, once through a plain
`tf.function` and once through a `jit_compile=True` one. XLA needs static shapes,
so both sides get the same batches padded to a fixed source length
(`--source_length`, longer sources cut) and a fixed number of steps
(`--max_steps`); a short last batch is padded with empty sentences. The first
pass over the batches compiles and is timed apart; the second is the
throughput. Every sentence gets the target budget of the workdir's config
(`decode.max_length_ratio` x source pieces + `decode.max_length_offset`, at most
`decode.max_length` and --max_steps), on every side. The script prints
sentences/s, the ratio and how many translations are identical.
"""

from __future__ import annotations

import os
import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from seq2seq_tf import search  # noqa: E402
from seq2seq_tf.data import vocab as tokenizer  # noqa: E402
from seq2seq_tf.serving.translator import SearchDefaults  # noqa: E402
from seq2seq_tf.training.checkpoints import restore_model  # noqa: E402
from seq2seq_tf.workdir import load_workdir_config  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (its best checkpoint).")
_INPUT = flags.DEFINE_string("input", None, "Source sentences, one per line.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Sentences per batch.")
_BEAMS = flags.DEFINE_list("beams", ["1", "5"], "Beam widths (1 = greedy).")
_SOURCE_LENGTH = flags.DEFINE_integer("source_length", 48, "Source pieces per row (EOS included).")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 60, "Target steps every search runs up to.")
_LENGTH_PENALTY = flags.DEFINE_float(
    "length_penalty", SearchDefaults.length_penalty, "GNMT alpha for beams above 1."
)


def _batches(lines, spm_path):
    """Fixed-shape id batches `[batch, source_length]` and their real sentence counts."""
    piece_ids = tokenizer.make_tokenizer(tokenizer.read_model_proto(spm_path))
    rows = []
    for ids in piece_ids.tokenize(tf.constant(lines)).to_list():
        ids = ids[: _SOURCE_LENGTH.value - 1] + [tokenizer.EOS_ID]
        rows.append(ids + [tokenizer.PAD_ID] * (_SOURCE_LENGTH.value - len(ids)))
    batches = []
    for start in range(0, len(rows), _BATCH.value):
        chunk = rows[start : start + _BATCH.value]
        real = len(chunk)
        chunk += [[tokenizer.EOS_ID] + [tokenizer.PAD_ID] * (_SOURCE_LENGTH.value - 1)] * (
            _BATCH.value - real
        )
        batches.append((tf.constant(chunk, tf.int32), real))
    return batches


def _natural(batches):
    """The same batches cut to their longest source, as the exported model sees them."""
    cut = []
    for source, real in batches:
        real_pieces = tf.reduce_sum(tf.cast(source != tokenizer.PAD_ID, tf.int32), axis=1)
        longest = int(tf.reduce_max(real_pieces))
        cut.append((source[:, :longest], real))
    return cut


def _search_fn(model, decode, beam: int, jit: bool, fixed: bool):
    cap = min(int(decode.max_length), _MAX_STEPS.value)

    def run(source):
        lengths = tf.reduce_sum(tf.cast(source != tokenizer.PAD_ID, tf.int32), axis=1)
        budget = search.max_target_lengths(
            lengths, decode.max_length_ratio, decode.max_length_offset, cap
        )
        state = model.initial_state(source, training=False)
        hyps = search.beam_search(
            model.step,
            state,
            budget,
            beam,
            _LENGTH_PENALTY.value if beam > 1 else 0.0,
            n_best=1,
            max_steps=cap if fixed else None,
            beam_invariant=model.beam_invariant,
            start_id=tokenizer.BOS_ID,
            end_id=tokenizer.EOS_ID,
            pad_id=tokenizer.PAD_ID,
        )
        return hyps.ids, hyps.lengths

    # Natural shapes: one trace for every source length, as the exported signature.
    signature = None if fixed else [tf.TensorSpec([None, None], tf.int32)]
    return tf.function(run, jit_compile=jit, input_signature=signature)


def _pass(fn, batches):
    start = time.perf_counter()
    outputs = [tuple(t.numpy() for t in fn(source)) for source, _ in batches]
    return time.perf_counter() - start, outputs


def main(argv):
    del argv
    model, checkpoint = restore_model(_WORKDIR.value)
    decode = load_workdir_config(_WORKDIR.value)[0].decode
    spm_path = os.path.join(_WORKDIR.value, "spm.model")
    with open(_INPUT.value, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    batches = _batches(lines, spm_path)
    sentences = sum(real for _, real in batches)
    print(f"{checkpoint}: {sentences} sentences, batch {_BATCH.value}, sources padded to "
          f"{_SOURCE_LENGTH.value} pieces, {_MAX_STEPS.value} steps")  # fmt: skip
    natural = _natural(batches)
    forms = {  # name: (jit, fixed shapes, batches)
        "graph, natural shapes": (False, False, natural),
        "graph, fixed shapes": (False, True, batches),
        "XLA, fixed shapes": (True, True, batches),
    }
    print(f"{'beam':>4s} {'form':>22s} {'first pass s':>13s} {'sent/s':>8s}")
    for beam in (int(b) for b in _BEAMS.value):
        rates, results = {}, {}
        for name, (jit, fixed, inputs) in forms.items():
            fn = _search_fn(model, decode, beam, jit, fixed)
            first, _ = _pass(fn, inputs)
            seconds, results[name] = _pass(fn, inputs)
            rates[name] = sentences / seconds
            print(f"{beam:4d} {name:>22s} {first:13.1f} {rates[name]:8.1f}")
        reference, xla = results["graph, natural shapes"], results["XLA, fixed shapes"]
        same = sum(
            np.array_equal(a[0][i, 0, : a[1][i, 0]], b[0][i, 0, : b[1][i, 0]])
            for (a, b), (_, real) in zip(zip(reference, xla), batches)
            for i in range(real)
        )
        print(f"     XLA / graph with natural shapes: "
              f"{rates['XLA, fixed shapes'] / rates['graph, natural shapes']:.2f}; "
              f"identical outputs {same}/{sentences}")  # fmt: skip


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "input"])
    cli.run(main)
