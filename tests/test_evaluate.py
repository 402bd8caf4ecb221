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


def test_evaluate_command_on_a_checkpoint_writes_hypotheses_and_scores(
    trained_workdir, toy_data, tmp_path
):
    output = tmp_path / "test.hyp"
    result = _evaluate(
        f"--workdir={trained_workdir}", f"--source={toy_data['test_src']}",
        f"--reference={toy_data['test_tgt']}", f"--output={output}", "--beam_width=2",
        "--target_lang=de",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sacreBLEU" in result.stdout and "BLEU(lc,tok)" in result.stdout
    hypotheses = output.read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == 100
    scores = json.loads((tmp_path / "test.hyp.scores.json").read_text())
    references = open(toy_data["test_tgt"], encoding="utf-8").read().splitlines()
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def test_evaluate_command_on_a_saved_model_matches_the_checkpoint(
    trained_workdir, toy_data, tmp_path, exported
):
    base = exported[1]
    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("".join(open(toy_data["test_src"]).readlines()[:12]), encoding="utf-8")
    reference.write_text("".join(open(toy_data["test_tgt"]).readlines()[:12]), encoding="utf-8")
    outputs = {}
    for name, model_flag in (
        ("saved", f"--model_dir={base}"),
        ("ckpt", f"--workdir={trained_workdir}"),
    ):
        output = tmp_path / f"{name}.hyp"
        result = _evaluate(
            model_flag, f"--source={source}", f"--reference={reference}", f"--output={output}",
            "--beam_width=3", "--target_lang=de",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[name] = output.read_text(encoding="utf-8").splitlines()
    assert len(outputs["saved"]) == 12
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
