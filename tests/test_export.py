"""Export: a SavedModel that a fresh process with only tensorflow + tensorflow_text runs."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from seq2seq_tf import export, search
from seq2seq_tf.workdir import load_workdir_config

SENTENCES = [
    "the dog laughs .",
    "today a small cat buys the red ball , because the man sings .",
    "",
    "some old women visit the teacher with a blue car .",
]


@pytest.fixture(scope="module")
def exported(trained_workdir, tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    return export.export(trained_workdir, str(base)), str(base)


def test_fresh_process_gives_the_in_process_greedy_result(trained_workdir, exported):
    path, _ = exported
    config, _ = load_workdir_config(trained_workdir)
    model, _ = export.restore_model(trained_workdir)
    translator = export.Translator(
        model, os.path.join(trained_workdir, "spm.model"), config.decode, config.data.max_src_len
    )
    # In process: the model's own greedy search, then detokenize.
    source = translator.encode_sources(tf.constant(SENTENCES))
    lengths = tf.reduce_sum(tf.cast(source != 0, tf.int32), axis=1)
    budget = search.max_target_lengths(lengths, 2.0, 10, 200)
    ids, out_lengths, scores = search.greedy_search(model.step, model.initial_state(source), budget)
    expected = [t.decode() for t in translator.decode_ids(ids, out_lengths).numpy()]

    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        fn = tf.saved_model.load({path!r}).signatures["serving_default"]
        out = fn(inputs=tf.constant({SENTENCES!r}))
        assert not any(m.startswith("seq2seq_tf") for m in sys.modules), "imported"
        print(json.dumps({{"t": [t.decode() for t in out["translations"].numpy()],
                           "s": out["scores"].numpy().tolist()}}))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["t"] == expected
    for a, b in zip(loaded["s"], scores.numpy().tolist()):
        assert abs(a - b) < 1e-4
    assert all(s <= 0 for s in loaded["s"])


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
    from seq2seq_tf import tokenizer

    other = tokenizer.train_sentencepiece(
        [toy_data["train_src"], toy_data["train_tgt"]], str(tmp_path / "small"), 200, "bpe"
    )
    with pytest.raises(export.VocabularyMismatchError, match=r"small\.model has \d+ pieces"):
        export.export(trained_workdir, str(tmp_path / "out"), spm_model=other)
