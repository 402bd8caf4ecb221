"""translate.py: finding the SavedModel, order kept, scoring."""

import os
import subprocess
import sys

import pytest

from seq2seq_tf import translate


def test_resolve_picks_highest_version(tmp_path):
    for version in ("1", "12", "3"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    assert translate.resolve_saved_model(str(tmp_path)).endswith("/12")
    assert translate.resolve_saved_model(str(tmp_path / "3")).endswith("/3")
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        translate.resolve_saved_model(str(tmp_path / "notes"))


def test_translate_lines_keeps_input_order():

    calls = []

    def fake_call(batch):
        calls.append(batch)
        return [[s.upper()] for s in batch], [[-float(len(s))] for s in batch]

    lines = ["ccc", "a", "bb", "dddd", ""]
    out, scores = translate.translate_lines(fake_call, lines, batch_size=2)
    assert out == [["CCC"], ["A"], ["BB"], ["DDDD"], [""]]
    assert scores == [[-3.0], [-1.0], [-2.0], [-4.0], [0.0]]
    assert calls[0] == ["", "a"]  # batched by length


def test_report_scores_uses_sacrebleu(capsys):
    import sacrebleu

    hyps = ["der hund lacht .", "die katze schläft ."]
    refs = ["der hund lacht .", "die katze lacht ."]
    got = translate.report_scores(hyps, refs, ["a", "b"])
    assert got["exact_match"] == 0.5
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert "exact match: 50.00%" in capsys.readouterr().out


def test_bad_utf8_input_names_the_line(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"ok\n\xc3\x28\n")
    with pytest.raises(ValueError, match=r"in\.txt:2: invalid UTF-8"):
        translate.read_text(str(tmp_path / "in.txt"))


@pytest.fixture(scope="module")
def saved_model(trained_workdir, tmp_path_factory):
    from seq2seq_tf import export

    return export.export(trained_workdir, str(tmp_path_factory.mktemp("export")))


def _translate(saved_model, tmp_path, *flags):
    source = tmp_path / "in.txt"
    source.write_text("the dog laughs .\na small cat buys the ball .\n\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq_tf.translate",
            f"--model_dir={saved_model}",
            f"--input={source}",
            *flags,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.splitlines()


def test_cli_beam_nbest_sampling_and_heatmaps(saved_model, tmp_path):
    assert len(_translate(saved_model, tmp_path)) == 3  # one line per input, empty kept
    assert _translate(saved_model, tmp_path, "--beam_width=1")[2] == ""
    nbest = _translate(saved_model, tmp_path, "--nbest=3")
    assert len(nbest) == 9 and nbest[0].startswith("0 ||| ") and nbest[8].startswith("2 ||| ")
    first = [float(line.split(" ||| ")[2]) for line in nbest[:3]]
    assert first == sorted(first, reverse=True)
    one = _translate(saved_model, tmp_path, "--temperature=0.9", "--seed=5")
    assert one == _translate(saved_model, tmp_path, "--temperature=0.9", "--seed=5")
    plots = tmp_path / "plots"
    _translate(saved_model, tmp_path, f"--plot_attention={plots}")
    assert sorted(os.listdir(plots)) == ["00000.png", "00001.png", "00002.png"]
    assert (plots / "00000.png").read_bytes()[:4] == b"\x89PNG"
