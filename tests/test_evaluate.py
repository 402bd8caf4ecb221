"""`python -m seq2seq_tf.evaluate`: decode a checkpoint or a SavedModel, write and score."""

import json
import os
import subprocess
import sys

import pytest
import sacrebleu
from support import ROOT


def _evaluate(*flags):
    return subprocess.run(
        [sys.executable, "-m", "seq2seq_tf.evaluate", *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_evaluate_command_scores_a_checkpoint_and_its_saved_model_the_same(
    trained_workdir, toy_data, tmp_path, exported
):
    references = open(toy_data["test_tgt"], encoding="utf-8").read().splitlines()
    outputs = {}
    for name, model_flag in (
        ("ckpt", f"--workdir={trained_workdir}"),
        ("saved", f"--model_dir={exported[1]}"),  # the base: its newest version
    ):
        output = tmp_path / f"{name}.hyp"
        result = _evaluate(
            model_flag, f"--source={toy_data['test_src']}",
            f"--reference={toy_data['test_tgt']}", f"--output={output}", "--beam_width=2",
            "--target_lang=de",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert "sacreBLEU" in result.stdout and "BLEU(lc,tok)" in result.stdout
        outputs[name] = output.read_text(encoding="utf-8").splitlines()
        scores = json.loads((tmp_path / f"{name}.hyp.scores.json").read_text())
        bleu = sacrebleu.corpus_bleu(outputs[name], [references]).score
        assert scores["bleu"] == pytest.approx(bleu)
    assert len(outputs["ckpt"]) == 100
    assert outputs["saved"] == outputs["ckpt"]


def test_evaluate_command_refuses_bad_arguments(trained_workdir, tmp_path):
    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("a\nb\n", encoding="utf-8")
    reference.write_text("a\n", encoding="utf-8")
    both = _evaluate(
        f"--workdir={trained_workdir}", f"--model_dir={tmp_path}", f"--source={source}",
        f"--reference={reference}",
    )  # fmt: skip
    assert both.returncode != 0 and "exactly one of --model_dir" in both.stderr
    uneven = _evaluate(
        f"--workdir={trained_workdir}", f"--source={source}", f"--reference={reference}"
    )
    assert uneven.returncode != 0
    assert f"{source} has 2 lines but {reference} has 1" in uneven.stderr
