"""The export command's search flags reach the SavedModel's serving_default.

One run of `python -m seq2seq_tf.export` with every search flag set (beam 1, a
large length penalty, a coverage penalty) in a subprocess: its serving_default
must give exactly what the in-process Translator with the same SearchDefaults
gives, and each flag must change the outputs the way the search predicts when
it is put back to its default (so an export that dropped a flag fails).
"""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from support import ROOT

from seq2seq_tf.serving import export
from seq2seq_tf.serving.translator import SearchDefaults

FLAGS = SearchDefaults(beam_width=1, length_penalty=1.5, coverage_penalty=0.4)


def _sentences(toy_data) -> list[str]:
    with open(toy_data["test_src"], encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f][:24] + ["", "the dog laughs ."]


def _translate(module_or_fn, sentences):
    out = module_or_fn(inputs=tf.constant(sentences))
    return [t.decode() for t in out["translations"].numpy()], out["scores"].numpy()


@pytest.fixture(scope="module")
def flagged(trained_workdir, tmp_path_factory):
    """`<export_dir>/7` written by the export command with every search flag set."""
    export_dir = tmp_path_factory.mktemp("flagged")
    # The subprocess imports the same copy of the package as this test does.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath}
    command = [
        sys.executable,
        "-m",
        "seq2seq_tf.export",
        f"--workdir={trained_workdir}",
        f"--export_dir={export_dir}",
        "--version=7",
        f"--beam_width={FLAGS.beam_width}",
        f"--length_penalty={FLAGS.length_penalty}",
        f"--coverage_penalty={FLAGS.coverage_penalty}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    path = os.path.join(export_dir, "7")
    assert f"SavedModel: {path}" in result.stdout
    assert sorted(os.listdir(export_dir)) == ["7"]  # the version asked for, no partial left
    return tf.saved_model.load(path)


def test_serving_default_is_the_translator_with_the_flags_settings(
    flagged, trained_workdir, toy_data
):
    sentences = _sentences(toy_data)
    texts, scores = _translate(flagged.signatures["serving_default"], sentences)
    translator, _ = export.serving_module(trained_workdir, defaults=FLAGS)
    want_texts, want_scores = _translate(translator.translate, sentences)
    assert texts == want_texts
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert any(texts)  # something was translated

    # --beam_width=1: serving_default is the export's own beam of one, not of four (with
    # the same penalties, translate_nbest takes the width as an argument).
    def nbest(width):
        out = flagged.signatures["translate_nbest"](
            inputs=tf.constant(sentences), n=tf.constant(1), beam_width=tf.constant(width)
        )
        return [t.decode() for t in out["translations"].numpy()[:, 0]], out["scores"].numpy()[:, 0]

    one_texts, one_scores = nbest(1)
    assert one_texts == texts
    np.testing.assert_allclose(one_scores, scores, atol=1e-5)
    four_texts, four_scores = nbest(4)
    assert four_texts != texts or not np.allclose(four_scores, scores, atol=1e-4), (
        "beam 4 and beam 1 agree on every sentence: this case cannot tell them apart"
    )

    # Each penalty, put back to its default, changes the scores as the formula says
    # (beam 1 keeps the same hypotheses: only their scores move).
    real = np.array([bool(t) for t in texts])  # at least one piece: |Y| >= 2, lp != 1
    for field, default in (("length_penalty", 0.6), ("coverage_penalty", 0.0)):
        other, _ = export.serving_module(
            trained_workdir, defaults=dataclasses.replace(FLAGS, **{field: default})
        )
        other_texts, other_scores = _translate(other.translate, sentences)
        assert other_texts == texts, field
        if field == "length_penalty":
            # log P < 0 divided by ((5 + |Y|) / 6)^1.5 rather than ^0.6: closer to 0.
            assert np.all(scores[real] > other_scores[real] + 1e-4)
            np.testing.assert_allclose(scores[~real], other_scores[~real], atol=1e-5)
        else:
            # beta * sum log min(coverage, 1) <= 0, and < 0 where a position is under-covered.
            assert np.all(scores <= other_scores + 1e-5)
            assert np.sum(scores[real] < other_scores[real] - 1e-4) >= real.sum() // 2


def test_search_defaults_are_built_by_keyword_only():
    with pytest.raises(TypeError):
        SearchDefaults(1, 1.5, 0.4)  # which is which? refused
    assert SearchDefaults(length_penalty=1.5) == SearchDefaults(beam_width=4, length_penalty=1.5)
