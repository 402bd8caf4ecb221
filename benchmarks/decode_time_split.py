"""Where a translation batch's time goes: tokenizing, encoding, and the search loop.

    python benchmarks/decode_time_split.py --workdir=/tmp/qual/run60 \
        --input=/tmp/qual/data/test_2016_flickr.en --target_vocab \
        --shortlist_k=50 --shortlist_frequent=2000

Builds the export's Translator in process from a workdir (the same graph the
SavedModel holds) and times, over `--input` in length-sorted batches of
`--batch_size`, in `--rounds` rounds (medians): the whole `translate_options`
call at each of `--beams` (the shortlist on when the export has one); the
tokenizer alone; and the tokenizer, the shortlist union and the encoder up to the
decoder's first state. What the whole call takes beyond the last is the search.
It says which part a speed lever has to shrink (issue 19: greedy is far from the
arithmetic bound). Run it alone: two timing jobs on two cores spoil each other.
"""

from __future__ import annotations

import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from seq2seq_tf.data.text import read_lines  # noqa: E402
from seq2seq_tf.serving import export  # noqa: E402
from seq2seq_tf.serving.search_columns import SearchSpeedups  # noqa: E402
from seq2seq_tf.serving.translator import SearchDefaults  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained translation workdir.", required=True)
_INPUT = flags.DEFINE_string("input", None, "Source sentences, one per line.", required=True)
_BATCH = flags.DEFINE_integer("batch_size", 32, "Sentences per call.")
_BEAMS = flags.DEFINE_list("beams", ["1", "5"], "Beam widths of the whole call.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed rounds (medians are printed).")
_TARGET_VOCAB = flags.DEFINE_bool("target_vocab", False, "As export --target_vocab.")
_SHORTLIST_K = flags.DEFINE_integer("shortlist_k", 0, "As export --shortlist_k.")
_FREQUENT = flags.DEFINE_integer("shortlist_frequent", 300, "As export --shortlist_frequent.")
_STRINGS = tf.TensorSpec([None], tf.string)


def _seconds(fn, batches: list[tf.Tensor], rounds: int) -> float:
    """Median seconds of one pass over all batches, after a warm-up on the first and last."""
    fn(batches[0])
    fn(batches[-1])
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv):
    del argv
    lines = read_lines(_INPUT.value)
    speedups = SearchSpeedups(
        target_vocab=_TARGET_VOCAB.value,
        shortlist_k=_SHORTLIST_K.value,
        shortlist_frequent=_FREQUENT.value,
    )
    shortlist = _SHORTLIST_K.value > 0
    translator, _ = export.serving_module(
        _WORKDIR.value, defaults=SearchDefaults(use_shortlist=shortlist), speedups=speedups
    )
    order = sorted(range(len(lines)), key=lambda i: len(lines[i]))
    batches = [
        tf.constant([lines[i] for i in order[start : start + _BATCH.value]])
        for start in range(0, len(order), _BATCH.value)
    ]

    @tf.function(input_signature=[_STRINGS])
    def tokenize(inputs):
        return tf.reduce_sum(translator.encode_sources(inputs))

    @tf.function(input_signature=[_STRINGS])
    def encode(inputs):
        source = translator.encode_sources(inputs)
        used = [tf.cast(tf.reduce_sum(source), tf.float32)]
        if translator.columns is not None:
            columns = translator.columns.columns(source, tf.constant(shortlist), None)
            used.append(tf.cast(tf.reduce_sum(columns), tf.float32))
        _, state = translator._encoded(source)
        floats = [v for v in tf.nest.flatten(state) if v.dtype.is_floating]
        return tf.add_n(used + [tf.reduce_sum(tf.cast(v, tf.float32)) for v in floats])

    call = getattr(translator, "translate_options", None)

    def whole(beam: int):
        args = {"n": tf.constant(1), "beam_width": tf.constant(beam)}
        if call is not None:
            return lambda batch: call(inputs=batch, shortlist=tf.constant(True), **args)
        return lambda batch: translator.translate_nbest(inputs=batch, **args)

    rounds = _ROUNDS.value
    tokenizing = _seconds(tokenize, batches, rounds)
    encoding = _seconds(encode, batches, rounds)
    n = len(lines)
    print(f"{n} sentences, batch {_BATCH.value}, medians of {rounds} rounds")
    print(f"tokenize only:                  {tokenizing:7.3f}s  ({n / tokenizing:8.1f} sent/s)")
    print(f"tokenize + union + encoder:     {encoding:7.3f}s  ({n / encoding:8.1f} sent/s)")
    for beam in (int(b) for b in _BEAMS.value):
        total = _seconds(whole(beam), batches, rounds)
        print(
            f"beam {beam}: whole call {total:7.3f}s ({n / total:6.1f} sent/s): tokenize "
            f"{tokenizing / total:4.0%}, union + encoder {(encoding - tokenizing) / total:4.0%}, "
            f"search and detokenize {(total - encoding) / total:4.0%}"
        )


if __name__ == "__main__":
    app.run(main)
