"""Export: `python -m seq2seq_tf.export --workdir=runs/x --export_dir=exported/x`.

Writes a SavedModel at `<export_dir>/<version>/` (the layout TF Serving
expects under a model base path) holding the tokenizer, the model and the
search in one graph. Raw strings in, translations and log-probabilities out;
it runs with nothing but `tensorflow` and `tensorflow_text` imported.
"""

from __future__ import annotations

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

from seq2seq_tf.serving.export import export  # noqa: E402
from seq2seq_tf.serving.search_columns import SearchSpeedups  # noqa: E402
from seq2seq_tf.serving.translator import SearchDefaults  # noqa: E402
from seq2seq_tf.serving.xla_search import XlaBuckets, XlaSearchError  # noqa: E402


def _xla_buckets(f) -> XlaBuckets | None:
    if not f.xla_search:
        return None
    try:
        lengths = tuple(int(n) for n in f.xla_source_buckets)
    except ValueError:
        raise XlaSearchError(
            f"--xla_source_buckets must be integers, got {','.join(f.xla_source_buckets)}"
        ) from None
    return XlaBuckets(source_lengths=lengths, shortlist_size=f.xla_shortlist_size)


def main(argv):
    f = flags.FLAGS
    defaults = SearchDefaults(
        beam_width=f.beam_width,
        length_penalty=f.length_penalty,
        coverage_penalty=f.coverage_penalty,
        use_shortlist=f.shortlist_default,
    )
    speedups = SearchSpeedups(
        target_vocab=f.target_vocab,
        shortlist_k=f.shortlist_k,
        shortlist_frequent=f.shortlist_frequent,
        input_table=f.input_table,
        xla=_xla_buckets(f),
    )
    path = export(f.workdir, f.export_dir, f.version, f.checkpoint, f.spm_model, defaults, speedups)
    print(f"SavedModel: {path}")


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("workdir", None, "Training workdir to export.")
    flags.DEFINE_string("export_dir", None, "Model base path; writes <dir>/<version>.")
    flags.DEFINE_integer(
        "version", None, "Version subdirectory (default: the step).", lower_bound=0
    )
    flags.DEFINE_string("checkpoint", None, "Checkpoint (default: the best, else latest).")
    flags.DEFINE_string("spm_model", None, "SentencePiece model (default: the workdir's).")
    flags.DEFINE_integer(
        "beam_width", 4, "Beam width of serving_default (1 = greedy).", lower_bound=1
    )
    flags.DEFINE_float("length_penalty", 0.6, "GNMT length penalty alpha (0 = off).")
    flags.DEFINE_float("coverage_penalty", 0.0, "GNMT coverage penalty beta (0 = off).")
    flags.DEFINE_bool(
        "target_vocab", False, "Beam search scores only pieces of the training targets."
    )
    flags.DEFINE_integer(
        "shortlist_k",
        0,
        "Lexical shortlist: target candidates per source piece (IBM Model 1 on the "
        "training corpus; 0 = none). Adds the translate_options signature.",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "shortlist_frequent", 300, "Most frequent target pieces in every shortlist.", lower_bound=0
    )
    flags.DEFINE_bool(
        "shortlist_default", False, "serving_default and translate_nbest use the shortlist."
    )
    flags.DEFINE_bool(
        "input_table",
        False,
        "Store embedding x first-layer kernel (vocab x 4 units floats): a gather per step.",
    )
    flags.DEFINE_bool(
        "xla_search",
        False,
        "Compile beam search with XLA (serving_default, translate_nbest, translate_options); "
        "TF Serving then needs --xla_cpu_compilation_enabled=true.",
    )
    flags.DEFINE_list(
        "xla_source_buckets",
        ["16", "32", "48", "64"],
        "With --xla_search: source lengths (pieces) requests are padded to; max_src_len is added.",
    )
    flags.DEFINE_integer(
        "xla_shortlist_size",
        1024,
        "With --xla_search and a shortlist: the fixed number of columns it scores.",
    )
    flags.mark_flags_as_required(["workdir", "export_dir"])
    cli.run(main)


if __name__ == "__main__":
    run()
