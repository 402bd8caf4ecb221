"""translate.py: the command, its scoring, and the client it calls (SavedModel, order)."""

import os
import subprocess
import sys

import pytest

from seq2seq_tf import translate


def test_report_scores_uses_sacrebleu(capsys):
    import sacrebleu

    hyps = ["der hund lacht .", "die katze schläft ."]
    refs = ["der hund lacht .", "die katze lacht ."]
    got = translate.report_scores(hyps, refs, ["a", "b"])
    assert got["exact_match"] == 0.5
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert "exact match: 50.00%" in capsys.readouterr().out


@pytest.fixture(scope="module")
def saved_model(exported):
    return exported[0]


INPUT = "the dog laughs .\na small cat buys the ball .\n\n"


def _start(saved_model, tmp_path, *flags, stdin=None):
    source = tmp_path / "in.txt"
    source.write_text(INPUT, encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seq2seq_tf.translate",
            f"--model_dir={saved_model}",
            "--input=-" if stdin is not None else f"--input={source}",
            *flags,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, stdin


def _lines(started) -> list[str]:
    process, stdin = started
    out, err = process.communicate(stdin, timeout=300)
    assert process.returncode == 0, err[-2000:]
    return out.splitlines()


def test_cli_stdin_stdout_nbest_sampling_and_heatmaps(saved_model, tmp_path):
    plots = tmp_path / "plots"
    runs = {  # at once: each is mostly start-up
        "plain": _start(saved_model, tmp_path, f"--plot_attention={plots}"),
        "stdin": _start(saved_model, tmp_path, stdin=INPUT),
        "nbest": _start(saved_model, tmp_path, "--nbest=3"),
        "sample": _start(saved_model, tmp_path, "--temperature=0.9", "--seed=5"),
    }
    out = {name: _lines(started) for name, started in runs.items()}
    assert len(out["plain"]) == 3 and out["plain"][2] == ""  # one line per input, empty kept
    assert out["stdin"] == out["plain"]  # --input=- reads stdin, stdout by default
    nbest = out["nbest"]
    assert len(nbest) == 9 and nbest[0].startswith("0 ||| ") and nbest[8].startswith("2 ||| ")
    first = [float(line.split(" ||| ")[2]) for line in nbest[:3]]
    assert first == sorted(first, reverse=True)
    assert len(out["sample"]) == 3 and out["sample"][2] == ""
    assert sorted(os.listdir(plots)) == ["00000.png", "00001.png", "00002.png"]
    assert (plots / "00000.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_refuses_output_over_input_and_checks_paths_before_decoding(saved_model, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text(INPUT, encoding="utf-8")
    (tmp_path / "short.ref").write_text("one line\n", encoding="utf-8")
    command = [sys.executable, "-m", "seq2seq_tf.translate", f"--model_dir={saved_model}"]
    cases = {
        "same file": (
            [f"--input={source}", f"--output={tmp_path}/./in.txt"],
            f"error: --output {tmp_path}/./in.txt is the input file {source}",
        ),
        "unwritable output": (
            [f"--input={source}", f"--output={source}/out.txt"],  # under a file
            f"error: cannot write --output {source}/out.txt",
        ),
        "reference of another length": (
            [f"--input={source}", f"--reference={tmp_path}/short.ref"],
            f"error: {source} has 3 lines but {tmp_path}/short.ref has 1",
        ),
    }
    started = {
        name: subprocess.Popen(
            command + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, (args, _) in cases.items()
    }
    for name, (_, expected) in cases.items():
        _, err = started[name].communicate(timeout=300)
        lines = err.splitlines()
        assert started[name].returncode == 2 and len(lines) == 1, (name, err[-2000:])
        assert lines[0].startswith(expected), (name, lines)
    assert source.read_text(encoding="utf-8") == INPUT
