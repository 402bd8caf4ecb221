"""Sample text from an exported language model; needs only tensorflow (+ tensorflow_text
for a SentencePiece model).

    python -m seq2seq_tf.generate --model_dir=exported/char --prime="ROMEO:" \
        --length=500 --temperature=0.8

`--model_dir` may be a SavedModel or a TF Serving base path (the highest version).
`--num_samples` continuations of the prime (`--prime`, or `--prime_file`) are drawn
in one batch; `--seed` repeats them; `--greedy` (or `--temperature=0`) takes the
most likely token at every step; `--top_k` and `--top_p` filter the distribution.
Each sample is printed as the prime, then `--marker` where the model's text begins,
then the model's text.
"""

from __future__ import annotations

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import sys  # noqa: E402

import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from seq2seq_tf.data.text import read_lines  # noqa: E402
from seq2seq_tf.errors import UserError  # noqa: E402
from seq2seq_tf.serving.client import resolve_saved_model  # noqa: E402


def load_generator(model_dir: str):
    """The `generate` signature of a language model's SavedModel."""
    try:  # a SentencePiece model's graph needs the tensorflow_text ops registered
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass
    model = tf.saved_model.load(resolve_saved_model(model_dir))
    if "generate" not in model.signatures:
        raise UserError(
            f"{model_dir} has no `generate` signature (signatures: "
            f"{', '.join(sorted(model.signatures))}): is it a language model's export?"
        )
    return model.signatures["generate"]


def check_flags(length: int, temperature: float, top_k: int, top_p: float, num_samples: int):
    """Raises UserError naming the first flag out of range (before the model loads)."""
    if length < 0:
        raise UserError(f"--length must be >= 0, got {length}")
    if temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise UserError(f"--top_k must be >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise UserError(f"--top_p must be in (0, 1] (1 = off), got {top_p}")
    if num_samples < 1:
        raise UserError(f"--num_samples must be >= 1, got {num_samples}")


def generate(
    generate_fn,
    prime: str,
    length: int,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    num_samples: int = 1,
) -> list[str]:
    """`num_samples` continuations of `prime`, drawn as one batch."""
    out = generate_fn(
        primes=tf.constant([prime] * num_samples),
        length=tf.constant(length, tf.int32),
        temperature=tf.constant(temperature, tf.float32),
        top_k=tf.constant(top_k, tf.int32),
        top_p=tf.constant(top_p, tf.float32),
        seed=tf.constant(seed, tf.int32),
    )
    return [text.decode("utf-8") for text in out["texts"].numpy()]


def main(argv):
    f = flags.FLAGS
    temperature = 0.0 if f.greedy else f.temperature
    check_flags(f.length, temperature, f.top_k, f.top_p, f.num_samples)
    if f.prime_file and f.prime:
        raise UserError("give --prime or --prime_file, not both")
    prime = "\n".join(read_lines(f.prime_file)) + "\n" if f.prime_file else f.prime
    texts = generate(
        load_generator(f.model_dir),
        prime,
        f.length,
        temperature,
        f.top_k,
        f.top_p,
        f.seed,
        f.num_samples,
    )
    for i, text in enumerate(texts, 1):
        if len(texts) > 1:
            print(f"===== sample {i} of {len(texts)} =====")
        sys.stdout.write(f"{prime}{f.marker}{text}\n")
    sys.stdout.flush()


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base path.")
    flags.DEFINE_string("prime", "", "Text the samples continue (default: none).")
    flags.DEFINE_string("prime_file", "", "Read the prime from this file instead.")
    flags.DEFINE_integer("length", 500, "Tokens (characters) to generate after the prime.")
    flags.DEFINE_float("temperature", 1.0, "Sampling temperature (0 = greedy).")
    flags.DEFINE_integer("top_k", 0, "Sample from the k most likely tokens (0 = all).")
    flags.DEFINE_float("top_p", 1.0, "Nucleus sampling mass (1 = off).")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same samples.")
    flags.DEFINE_bool("greedy", False, "Take the most likely token at every step.")
    flags.DEFINE_integer("num_samples", 1, "Samples of the same prime, drawn in one batch.")
    flags.DEFINE_string("marker", "\u2016", "Printed where the prime ends and the model begins.")
    flags.mark_flags_as_required(["model_dir"])
    cli.run(main)


if __name__ == "__main__":
    run()
