"""Export: a SavedModel that a fresh process with only tensorflow + tensorflow_text runs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.serving import export
from seq2seq_tf.serving.translator import (
    SIGNATURES,
    SearchDefaults,
    SearchSettingsError,
    VocabularyMismatchError,
)

SENTENCES = [
    "the dog laughs .",
    "today a small cat buys the red ball , because the man sings .",
    "",
    "some old women visit the teacher with a blue car .",
]


@pytest.fixture(scope="module")
def translator(trained_workdir):
    """The in-process twin of what `export` writes (same checkpoint, same defaults)."""
    return export.serving_module(trained_workdir)[0]


def _calls(sentences):
    """Each signature with its arguments, as (name, kwargs of Python values)."""
    targets = ["der hund lacht .", "", "die katze", "einige alte frauen"]
    return [
        ("serving_default", {"inputs": sentences}),
        ("translate_nbest", {"inputs": sentences, "n": 3, "beam_width": 4}),
        ("sample", {"inputs": sentences, "temperature": 0.8, "top_k": 5, "top_p": 0.9, "seed": 4}),
        ("score", {"sources": sentences, "targets": targets}),
        ("align", {"inputs": sentences}),
    ]


def _plain(outputs: dict) -> dict:
    return {
        k: [x.decode() if isinstance(x, bytes) else x for x in v.numpy().ravel().tolist()]
        for k, v in sorted(outputs.items())
    }


def test_every_signature_in_a_fresh_process_matches_in_process(translator, exported):
    path, _ = exported
    expected = {}
    for name, kwargs in _calls(SENTENCES):
        method = getattr(translator, SIGNATURES[name])
        expected[name] = _plain(method(**{k: tf.constant(v) for k, v in kwargs.items()}))
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        loaded = tf.saved_model.load({path!r})
        out = {{}}
        for name, kwargs in {_calls(SENTENCES)!r}:
            result = loaded.signatures[name](**{{k: tf.constant(v) for k, v in kwargs.items()}})
            out[name] = {{k: [x.decode() if isinstance(x, bytes) else x
                             for x in v.numpy().ravel().tolist()]
                         for k, v in sorted(result.items())}}
        assert not any(m.startswith("seq2seq_tf") for m in sys.modules), "imported"
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(loaded) == set(expected)
    for name, outputs in expected.items():
        for key, values in outputs.items():
            got = loaded[name][key]
            if values and isinstance(values[0], float):
                np.testing.assert_allclose(got, values, atol=1e-4, err_msg=f"{name}/{key}")
            else:
                assert got == values, f"{name}/{key}"
    assert loaded["serving_default"]["translations"][2] == ""  # the empty source


def test_signature_functions_and_the_saved_model_signatures_agree(translator, loaded):
    in_process = translator.signature_functions()
    assert set(in_process) == set(loaded.signatures) == set(SIGNATURES)
    for name, kwargs in _calls(SENTENCES):
        tensors = {k: tf.constant(v) for k, v in kwargs.items()}
        ours = _plain(in_process[name](**tensors))
        theirs = _plain(loaded.signatures[name](**tensors))
        assert set(ours) == set(theirs), name
        for key, values in ours.items():
            if values and isinstance(values[0], float):
                np.testing.assert_allclose(theirs[key], values, atol=1e-4, err_msg=f"{name}/{key}")
            else:
                assert theirs[key] == values, f"{name}/{key}"
    translations = _plain(loaded.signatures["serving_default"](inputs=tf.constant(SENTENCES)))
    assert len(translations["translations"]) == len(SENTENCES)
    assert any(translations["translations"])  # something was translated, not all blank


def test_saved_model_cli_shows_the_signature(exported):
    path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "inputs['inputs']" in shown and "DT_STRING" in shown
    assert "outputs['translations']" in shown and "outputs['scores']" in shown
    listed = subprocess.run(
        [cli, "show", "--dir", path, "--tag_set", "serve"], capture_output=True, text=True
    ).stdout
    for name in ("serving_default", "translate_nbest", "sample", "score", "align"):
        assert f'"{name}"' in listed


def test_layout_is_tf_serving_base_path_with_spm_asset(exported, trained_workdir):
    path, base = exported
    step = tf.train.latest_checkpoint(os.path.join(trained_workdir, "checkpoints")).split("-")[-1]
    assert os.path.dirname(path) == base and os.path.basename(path) == step
    assert os.path.exists(os.path.join(path, "assets", "spm.model"))


def test_empty_and_overlong_inputs_translate_without_error(exported):
    path, _ = exported
    fn = tf.saved_model.load(path).signatures["serving_default"]
    out = fn(inputs=tf.constant(["", "the dog laughs . " * 200]))
    assert out["translations"].shape == (2,)
    assert out["translations"].numpy()[0].decode("utf-8") is not None


def test_export_refuses_a_mismatched_vocabulary(trained_workdir, toy_data, tmp_path):
    from seq2seq_tf.data import vocab

    other = vocab.train_sentencepiece(
        [toy_data["train_src"], toy_data["train_tgt"]], str(tmp_path / "small"), 200, "bpe"
    )
    with pytest.raises(VocabularyMismatchError, match=r"small\.model has \d+ pieces"):
        export.export(trained_workdir, str(tmp_path / "out"), spm_model=other)


def test_non_default_combination_exports_and_runs_in_a_fresh_process(toy_data, tmp_path):
    from support import tiny_config

    from seq2seq_tf.training.loop import train_and_evaluate

    config = tiny_config(toy_data, num_steps=10, checkpoint_every=10)
    config.model.encoder_layers = config.model.decoder_layers = 2
    config.model.encoder_cell = config.model.decoder_cell = "gru"
    config.model.attention = "bahdanau_normalized"
    config.model.encoder_residual = config.model.decoder_residual = True
    config.model.bridge = "dense"
    train_and_evaluate(config, str(tmp_path / "run"))
    path = export.export(str(tmp_path / "run"), str(tmp_path / "export"))
    translator, _ = export.serving_module(str(tmp_path / "run"))
    expected = [
        t.decode() for t in translator.translate(tf.constant(SENTENCES))["translations"].numpy()
    ]
    script = textwrap.dedent(
        f"""
        import json
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        fn = tf.saved_model.load({path!r}).signatures["serving_default"]
        out = fn(inputs=tf.constant({SENTENCES!r}))["translations"].numpy()
        print(json.dumps([t.decode() for t in out]))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


# --- Serving robustness: whatever a client sends, every signature answers. -----------------

_NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\r\n",
    "e\u0301\u0302\u0303 combining",
    "مرحبا بالعالم",  # right-to-left
    "שלום עולם",
    "🐕‍🦺 dog 👍🏽",
    "\u202eright-to-left override",
    "\ufeffBOM",
    "the dog laughs . " * 600,  # ~10,000 characters
    "x" * 10000,
]
_BAD_BYTES = [b"\xff\xfe", b"\xed\xa0\x80 lone surrogate", b"ok \xc3"]


def _check_outputs(name, outputs, batch):
    for key, value in outputs.items():
        assert value.shape[0] == batch, (name, key)
        if value.dtype == tf.string:
            for text in value.numpy().ravel():
                text.decode("utf-8")  # valid UTF-8, or this raises
        else:
            assert np.all(np.isfinite(value.numpy())), (name, key)


def _call_all(signatures, inputs):
    batch = len(inputs)
    tensor = tf.constant(inputs)
    calls = {
        "serving_default": {"inputs": tensor},
        "translate_nbest": {"inputs": tensor, "n": tf.constant(2), "beam_width": tf.constant(3)},
        "sample": {
            "inputs": tensor,
            "temperature": tf.constant(1.0),
            "top_k": tf.constant(0),
            "top_p": tf.constant(0.9),
            "seed": tf.constant(1),
        },
        "score": {"sources": tensor, "targets": tf.constant(list(reversed(inputs)))},
        "align": {"inputs": tensor},
    }
    for name, kwargs in calls.items():
        _check_outputs(name, signatures[name](**kwargs), batch)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[0])


def test_every_signature_survives_nasty_strings(loaded):
    _call_all(loaded.signatures, [s.encode("utf-8") for s in _NASTY])


def _requests(inputs, **overrides):
    """Each signature's arguments for `inputs` (a string tensor), with `overrides`."""
    calls = {
        "serving_default": {"inputs": inputs},
        "translate_nbest": {"inputs": inputs, "n": 2, "beam_width": 3},
        "sample": {"inputs": inputs, "temperature": 1.0, "top_k": 0, "top_p": 0.9, "seed": 1},
        "score": {"sources": inputs, "targets": inputs},
        "align": {"inputs": inputs},
    }
    for name, kwargs in overrides.items():
        calls[name].update(kwargs)
    return {
        name: {k: v if isinstance(v, tf.Tensor) else tf.constant(v) for k, v in kwargs.items()}
        for name, kwargs in calls.items()
    }


@pytest.mark.parametrize("bad", _BAD_BYTES)
def test_bytes_that_are_not_utf8_fail_the_request_naming_the_row(loaded, bad):
    for name, kwargs in _requests(tf.constant([b"the dog laughs .", bad])).items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"not valid UTF-8 at rows.*\b1\b"):
            loaded.signatures[name](**kwargs)


def test_an_empty_batch_gives_empty_outputs_of_the_right_shapes(loaded):
    ranks = {"translate_nbest": 2, "source_pieces": 2, "target_pieces": 2, "alignments": 3}
    for name, kwargs in _requests(tf.constant([], tf.string)).items():
        outputs = loaded.signatures[name](**kwargs)
        for key, value in outputs.items():
            rank = ranks.get(key, ranks.get(name, 1))
            assert value.shape.rank == rank and value.shape[0] == 0, (name, key, value.shape)


@pytest.mark.parametrize(
    "signature, arguments, named",
    [
        ("sample", {"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ("sample", {"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ("sample", {"top_p": float("nan")}, r"top_p must be in \(0, 1\]"),
        ("sample", {"temperature": -0.5}, "temperature .* must be >= 0"),
        ("sample", {"temperature": float("nan")}, "temperature .* must be >= 0"),
        ("sample", {"top_k": -1}, "top_k .* must be >= 0"),
        ("translate_nbest", {"n": 0}, "translate_nbest: n must be >= 1"),
        ("translate_nbest", {"beam_width": -3}, "translate_nbest: beam_width must be >= 1"),
    ],
)
def test_out_of_range_arguments_fail_naming_the_argument(loaded, signature, arguments, named):
    kwargs = _requests(tf.constant(["the dog laughs ."]), **{signature: arguments})[signature]
    with pytest.raises(tf.errors.InvalidArgumentError, match=named):
        loaded.signatures[signature](**kwargs)


def test_temperature_zero_samples_the_greedy_translation(loaded):
    inputs = tf.constant([s for s in SENTENCES if s])
    sampled = loaded.signatures["sample"](
        **_requests(inputs, sample={"temperature": 0.0, "seed": 9})["sample"]
    )
    greedy = loaded.signatures["align"](inputs=inputs)
    assert sampled["translations"].numpy().tolist() == greedy["translations"].numpy().tolist()


def test_sources_with_no_known_piece_translate_to_empty_with_score_zero(loaded):
    blank = ["", "   ", "\u6f22\u5b57\u6f22\u5b57"]  # the toy vocabulary has no CJK characters
    inputs = tf.constant(blank + ["the dog laughs ."])
    pieces = loaded.signatures["align"](inputs=inputs)["source_pieces"].numpy()
    assert {p for p in pieces[2] if p} <= {b"<unk>", b"</s>", b"\xe2\x96\x81"}  # unknown only
    for name, kwargs in _requests(inputs).items():
        if name == "score":
            continue  # score reports what the model does, as documented
        outputs = loaded.signatures[name](**kwargs)
        texts = outputs["translations"].numpy().tolist()
        rows = [t if isinstance(t, list) else [t] for t in texts]
        assert all(t == b"" for row in rows[:3] for t in row), name
        assert all(t != b"" for t in rows[3]), name
        for key, value in outputs.items():
            if key in ("scores", "alignments"):
                assert (value.numpy()[:3] == 0).all() and (value.numpy()[3] != 0).any(), (name, key)


def test_score_refuses_sources_and_targets_of_different_counts(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of strings"):
        loaded.signatures["score"](sources=tf.constant(["a", "b"]), targets=tf.constant(["a"]))


def test_export_refuses_to_overwrite_a_version_and_a_negative_version(trained_workdir, exported):
    path, base = exported
    with pytest.raises(export.ExportError, match="already exists .* another --version"):
        export.export(trained_workdir, base)
    with pytest.raises(export.ExportError, match="--version must be >= 0"):
        export.export(trained_workdir, base, version=-1)
    assert sorted(os.listdir(base)) == [os.path.basename(path)]  # no partial left behind


@pytest.mark.parametrize(
    "field, value, flag",
    [
        ("beam_width", 0, "--beam_width"),
        ("beam_width", -3, "--beam_width"),
        ("length_penalty", float("nan"), "--length_penalty"),
        ("length_penalty", -1.0, "--length_penalty"),
        ("coverage_penalty", float("inf"), "--coverage_penalty"),
    ],
)
def test_search_defaults_refuse_out_of_range_settings(field, value, flag):
    with pytest.raises(SearchSettingsError, match=f"{flag} must be"):
        SearchDefaults(**{field: value})


def test_fuzzed_unicode_batches_keep_count_order_and_utf8(loaded):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
    cases = {"n": 0}

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(text, st.sampled_from(_NASTY)), min_size=1, max_size=24))
    def check(batch):
        cases["n"] += 1
        _call_all(loaded.signatures, [s.encode("utf-8") for s in batch])
        # Order kept: each sentence alone translates as it does inside the batch.
        alone = loaded.signatures["serving_default"](inputs=tf.constant(batch[-1:]))
        together = loaded.signatures["serving_default"](inputs=tf.constant(batch))
        assert together["translations"].numpy()[-1] == alone["translations"].numpy()[0]

    check()
    assert cases["n"] == 20


def test_a_batch_of_512_mixed_lengths(loaded):
    rng = np.random.default_rng(0)
    words = ["the", "dog", "laughs", ".", "🐕", "مرحبا", "\x00", "a" * 50]
    batch = [" ".join(rng.choice(words, size=rng.integers(0, 60))) for _ in range(512)]
    out = loaded.signatures["serving_default"](inputs=tf.constant(batch))
    _check_outputs("serving_default", out, 512)


def test_eight_threads_get_the_serial_outputs(loaded):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    words = "the dog cat man buys sings a small red ball , because .".split()
    batches = [
        [" ".join(rng.choice(words, size=rng.integers(2, 15))) for _ in range(rng.integers(1, 9))]
        for _ in range(24)
    ]
    fn = loaded.signatures["serving_default"]

    def run(batch):
        out = fn(inputs=tf.constant(batch))
        return out["translations"].numpy().tolist(), out["scores"].numpy().tolist()

    serial = [run(b) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(run, batches))
    for (texts_a, scores_a), (texts_b, scores_b) in zip(serial, concurrent):
        assert texts_a == texts_b
        np.testing.assert_allclose(scores_a, scores_b, rtol=1e-5)
