"""The language model's serving module: greedy and seeded sampling, score against NumPy,
argument checks, fuzzed inputs, and the SavedModel in a fresh process."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.data import vocab
from seq2seq_tf.serving import export
from seq2seq_tf.workdir import load_workdir_config


@pytest.fixture(scope="module")
def generator(lm_workdir):
    module, _ = export.serving_module(lm_workdir)
    return module


@pytest.fixture(scope="module")
def loaded(lm_export):
    return tf.saved_model.load(lm_export)


@pytest.fixture(scope="module")
def characters(lm_workdir) -> str:
    return load_workdir_config(lm_workdir)[0].lm.characters


def _ids(text: str, characters: str) -> list[int]:
    """Character ids by plain Python (the reference for the in-graph tokenizer)."""
    index = {c: i + vocab.CHAR_SPECIALS for i, c in enumerate(characters)}
    return [index.get(c, vocab.UNK_ID) for c in text]


def _generate(fn, primes, length=30, temperature=0.8, top_k=0, top_p=1.0, seed=1):
    out = fn(
        primes=tf.constant(primes),
        length=tf.constant(length),
        temperature=tf.constant(float(temperature)),
        top_k=tf.constant(top_k),
        top_p=tf.constant(float(top_p)),
        seed=tf.constant(seed),
    )
    return [t.decode("utf-8") for t in out["texts"].numpy()], out["log_probs"].numpy()


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_temperature_zero_and_towards_zero_are_greedy(generator, characters):
    model = generator.model
    prime = "ROMEO:"
    # Reference: step the model by hand, argmax by NumPy over the non-special ids.
    state = model.initial_state(1)
    ids = [vocab.BOS_ID, *_ids(prime, characters)]
    for token in ids[:-1]:
        _, state = model.step(tf.constant([token]), state)
    token, expected = ids[-1], []
    for _ in range(25):
        logits, state = model.step(tf.constant([token]), state)
        logits = logits.numpy()[0]
        logits[: vocab.CHAR_SPECIALS] = -np.inf
        token = int(np.argmax(logits))
        expected.append(characters[token - vocab.CHAR_SPECIALS])
    greedy, _ = _generate(generator.generate, [prime], 25, temperature=0.0)
    cold, _ = _generate(generator.generate, [prime], 25, temperature=1e-4, seed=7)
    assert greedy == cold == ["".join(expected)]


def test_a_seed_repeats_a_sample_and_another_seed_does_not(generator):
    a, lp_a = _generate(generator.generate, ["the", "the"], 60, seed=5)
    b, lp_b = _generate(generator.generate, ["the", "the"], 60, seed=5)
    c, _ = _generate(generator.generate, ["the", "the"], 60, seed=6)
    assert a == b and np.array_equal(lp_a, lp_b)
    assert a[0] != a[1] and a != c  # rows and seeds draw differently
    assert all(len(text) == 60 for text in a + c)  # special ids are never drawn


def test_score_matches_numpy_over_the_models_logits(generator, characters):
    texts = ["ROMEO:\nthe cat sat.", "x", "", "the dog \u00e9\U0001f415 ran"]
    out = generator.score(tf.constant(texts))
    for i, text in enumerate(texts):
        ids = _ids(text, characters)
        if not ids:
            assert out["log_prob"].numpy()[i] == 0 and out["bits_per_char"].numpy()[i] == 0
            continue
        inputs = tf.constant([[vocab.BOS_ID, *ids[:-1]]])
        log_probs = _log_softmax(generator.model(inputs)[0])
        expected = log_probs[np.arange(len(ids)), ids].sum()
        assert out["log_prob"].numpy()[i] == pytest.approx(expected, rel=1e-5)
        bits = -expected / math.log(2) / len(text)
        assert out["bits_per_char"].numpy()[i] == pytest.approx(bits, rel=1e-5)


def test_generate_log_probs_are_the_models_over_the_tokens_it_may_draw(generator, characters):
    prime = "JULIET:\n"
    texts, log_probs = _generate(generator.generate, [prime], 40, temperature=1.0, seed=3)
    ids = [vocab.BOS_ID, *_ids(prime + texts[0], characters)]
    logits = generator.model(tf.constant([ids[:-1]]))[0].numpy()
    logits[:, : vocab.CHAR_SPECIALS] = -np.inf  # never drawn, so not in the normalizer
    picked = _log_softmax(logits)[np.arange(len(ids) - 1), ids[1:]]
    assert log_probs[0] == pytest.approx(picked[len(prime) :].sum(), rel=1e-5)
    # score uses the full softmax (as training's loss): a little lower.
    scores = generator.score(tf.constant([prime + texts[0], prime]))["log_prob"].numpy()
    assert scores[0] - scores[1] < log_probs[0] < scores[0] - scores[1] + 0.05 * 40


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("length", -1, "length must be >= 0"),
        ("temperature", -0.5, "temperature must be >= 0"),
        ("top_k", -1, "top_k must be >= 0"),
        ("top_p", 0.0, r"top_p must be in \(0, 1\]"),
        ("top_p", 1.5, r"top_p must be in \(0, 1\]"),
    ],
)
def test_out_of_range_arguments_name_the_argument(loaded, argument, value, message):
    kwargs = dict(length=5, temperature=1.0, top_k=0, top_p=1.0, seed=0)
    kwargs[argument] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _generate(loaded.signatures["generate"], ["a"], **kwargs)


_NASTY = [
    "",
    " ",
    "\x00",
    "\t\r\n",
    "e\u0301\u0302 combining",
    "مرحبا بالعالم",
    "🐕‍🦺 dog 👍🏽",
    "\u202eoverride",
    "\ufeffBOM",
    "ROMEO: " * 50,
]
_BAD_BYTES = [b"\xff\xfe", b"\xed\xa0\x80 lone surrogate", b"ok \xc3"]


def _check(signatures, primes, length=12):
    generate = signatures["generate"]
    out = generate(
        primes=tf.constant(primes),
        length=tf.constant(length),
        temperature=tf.constant(0.9),
        top_k=tf.constant(5),
        top_p=tf.constant(0.95),
        seed=tf.constant(2),
    )
    assert out["texts"].shape == out["log_probs"].shape == (len(primes),)
    for text in out["texts"].numpy():
        assert len(text.decode("utf-8")) == length  # valid UTF-8, one character per token
    assert np.all(np.isfinite(out["log_probs"].numpy()))
    scored = signatures["score"](texts=tf.constant(primes))
    assert scored["log_prob"].shape == (len(primes),)
    assert np.all(np.isfinite(scored["log_prob"].numpy()))
    assert np.all(scored["bits_per_char"].numpy() >= 0)


def test_every_signature_survives_nasty_strings_bytes_and_edge_sizes(loaded):
    _check(loaded.signatures, [s.encode("utf-8") for s in _NASTY])
    _check(loaded.signatures, ["ROMEO:"], length=0)
    _check(loaded.signatures, [""] * 3)
    out = loaded.signatures["score"](texts=tf.constant([], tf.string))
    assert out["log_prob"].shape == (0,)
    texts, _ = _generate(loaded.signatures["generate"], np.array([], dtype=object), 10)
    assert texts == []
    long_prime = "the cat sat on a mat. " * 4546  # 100,012 characters: the end is kept
    texts, _ = _generate(loaded.signatures["generate"], [long_prime, ""], 20, temperature=0)
    short, _ = _generate(loaded.signatures["generate"], [long_prime[-2000:]], 20, temperature=0)
    assert texts[0] == short[0]


@pytest.mark.parametrize("bad", _BAD_BYTES)
def test_bytes_that_are_not_utf8_fail_the_request_naming_the_row(loaded, bad):
    batch = tf.constant([b"ROMEO:", bad])
    invalid = tf.errors.InvalidArgumentError
    with pytest.raises(invalid, match=r"primes: not valid UTF-8 at rows.*\b1\b"):
        loaded.signatures["generate"](
            primes=batch,
            length=tf.constant(4),
            temperature=tf.constant(0.0),
            top_k=tf.constant(0),
            top_p=tf.constant(1.0),
            seed=tf.constant(0),
        )
    with pytest.raises(invalid, match=r"texts: not valid UTF-8 at rows.*\b1\b"):
        loaded.signatures["score"](texts=batch)


def test_fuzzed_unicode_batches(loaded):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(text, st.sampled_from(_NASTY)), min_size=1, max_size=8))
    def check(batch):
        _check(loaded.signatures, [s.encode("utf-8") for s in batch], length=6)

    check()


def test_generate_and_score_round_trip_in_a_fresh_process(generator, lm_export):
    primes = ["ROMEO:", "", "the dog"]
    texts = ["ROMEO:\nthe cat sat.", "zz\u00e9"]
    expected_samples, _ = _generate(generator.generate, primes, 50, temperature=0.8, seed=11)
    expected_greedy, _ = _generate(generator.generate, primes, 50, temperature=0.0)
    expected_scores = generator.score(tf.constant(texts))["log_prob"].numpy().tolist()
    script = textwrap.dedent(
        f"""
        import json
        import sys
        import tensorflow as tf
        model = tf.saved_model.load({lm_export!r})
        gen, score = model.signatures["generate"], model.signatures["score"]
        def run(temperature, seed):
            out = gen(primes=tf.constant({primes!r}), length=tf.constant(50),
                      temperature=tf.constant(temperature), top_k=tf.constant(0),
                      top_p=tf.constant(1.0), seed=tf.constant(seed))
            return [t.decode("utf-8") for t in out["texts"].numpy()]
        scores = score(texts=tf.constant({texts!r}))["log_prob"].numpy().tolist()
        print(json.dumps([run(0.8, 11), run(0.0, 0), scores, sorted(sys.modules)]))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    samples, greedy, scores, modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert samples == expected_samples and greedy == expected_greedy
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)
    assert not any(m.startswith(("seq2seq_tf", "tensorflow_text")) for m in modules)


def test_a_sentencepiece_language_model_trains_exports_and_scores(lm_text, tmp_path):
    import tensorflow_text  # noqa: F401  (the SavedModel's SentencePiece ops)
    from support import tiny_lm_config

    from seq2seq_tf.training.loop import train_and_evaluate

    spm = vocab.train_sentencepiece([lm_text], str(tmp_path / "sp"), 60)
    config = tiny_lm_config(lm_text, num_steps=20, eval_every=20, checkpoint_every=20)
    config.data.spm_model = spm
    result = train_and_evaluate(config, str(tmp_path / "run"))
    assert 0 < result["best_dev_bits_per_char"] < 8
    path = export.export(str(tmp_path / "run"), str(tmp_path / "export"))
    assert os.path.exists(os.path.join(path, "assets", "spm.model"))  # the workdir copy
    loaded = tf.saved_model.load(path)
    _check(loaded.signatures, ["ROMEO:", "", "the cat \U0001f415"], length=0)
    texts, _ = _generate(loaded.signatures["generate"], ["ROMEO:"], 15)
    assert texts[0]
    # score against NumPy: pieces from the same SentencePiece model, BOS first.
    sp = vocab.make_tokenizer(vocab.read_model_proto(spm))
    text = "the cat sat on a mat."
    ids = sp.tokenize(tf.constant([text])).to_list()[0]
    module, _ = export.serving_module(str(tmp_path / "run"))
    logits = module.model(tf.constant([[vocab.BOS_ID, *ids[:-1]]]))[0]
    expected = _log_softmax(logits)[np.arange(len(ids)), ids].sum()
    scored = loaded.signatures["score"](texts=tf.constant([text]))
    assert scored["log_prob"].numpy()[0] == pytest.approx(expected, rel=1e-5)
    bits = -expected / math.log(2) / len(text)
    assert scored["bits_per_char"].numpy()[0] == pytest.approx(bits, rel=1e-5)
