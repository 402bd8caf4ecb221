"""generate.py: samples after the prime, marked; seeds repeat; greedy; bad flags are one line."""

import os
import subprocess
import sys

MARKER = "\u2016"


def _generate(model_dir, *flags):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "seq2seq_tf.generate", f"--model_dir={model_dir}", *flags],
        capture_output=True,
        text=True,
        env=env,
    )


def test_samples_show_where_the_prime_ends_and_repeat_with_the_seed(lm_export, tmp_path):
    base = os.path.dirname(lm_export)  # a TF Serving base path works too
    flags = ["--prime=ROMEO:", "--length=40", "--temperature=0.8", "--seed=4", "--num_samples=2"]
    result = _generate(base, *flags, "--top_k=10", "--top_p=0.95")
    assert result.returncode == 0, result.stderr[-2000:]
    samples = result.stdout.split("===== sample ")[1:]
    assert [s.split(" =====")[0] for s in samples] == ["1 of 2", "2 of 2"]
    bodies = [s.split("=====\n", 1)[1].rstrip("\n") for s in samples]
    for body in bodies:
        prime, text = body.split(MARKER)
        assert prime == "ROMEO:" and len(text) == 40
    assert bodies[0] != bodies[1]
    # --greedy from a prime file is what the signature gives at temperature 0.
    (tmp_path / "prime.txt").write_text("JULIET:\n", encoding="utf-8")
    greedy = _generate(
        lm_export, f"--prime_file={tmp_path / 'prime.txt'}", "--greedy", "--length=30"
    )
    assert greedy.returncode == 0, greedy.stderr[-2000:]
    import tensorflow as tf

    out = tf.saved_model.load(lm_export).signatures["generate"](
        primes=tf.constant(["JULIET:\n"]),
        length=tf.constant(30),
        temperature=tf.constant(0.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
        seed=tf.constant(0),
    )
    expected = out["texts"].numpy()[0].decode("utf-8")
    assert greedy.stdout == f"JULIET:\n{MARKER}{expected}\n"


def test_a_bad_flag_is_one_line_naming_it(lm_export):
    result = _generate(lm_export, "--temperature=-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --temperature must be >= 0 (0 = greedy), got -1.0"
    )
