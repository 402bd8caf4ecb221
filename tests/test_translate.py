"""translate.py: finding the SavedModel, order kept, scoring."""

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
    import tensorflow as tf

    def fake_serving(inputs):
        upper = tf.strings.upper(inputs)
        return {"translations": upper, "scores": -tf.cast(tf.strings.length(inputs), tf.float32)}

    lines = ["ccc", "a", "bb", "dddd", ""]
    out, scores = translate.translate_lines(fake_serving, lines, batch_size=2)
    assert out == ["CCC", "A", "BB", "DDDD", ""]
    assert scores == [-3.0, -1.0, -2.0, -4.0, 0.0]


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
