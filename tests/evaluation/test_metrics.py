"""Scoring (sacreBLEU, chrF, BLEU(lc,tok)), evaluating signatures, the dev evaluator, plots."""

from __future__ import annotations

import os

import pytest
import sacrebleu
import tensorflow as tf
from support import tiny_config

from seq2seq_tf import workdir
from seq2seq_tf.evaluation import metrics
from seq2seq_tf.serving.export import serving_module
from seq2seq_tf.serving.translator import SearchDefaults

HYPS = ["Ein Hund läuft über die Wiese.", "zwei Männer, die Fußball spielen."]
REFS = ["Ein Hund rennt über die Wiese.", "Zwei Männer spielen Fußball."]


def test_scores_equal_sacrebleu_on_fixed_strings():
    scores = metrics.score_translations(HYPS, REFS, "de")
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    # BLEU(lc,tok) = BLEU with no further tokenization of lowercased Moses tokens.
    hyp_tok = ["ein hund läuft über die wiese .", "zwei männer , die fußball spielen ."]
    ref_tok = ["ein hund rennt über die wiese .", "zwei männer spielen fußball ."]
    expected = sacrebleu.corpus_bleu(hyp_tok, [ref_tok], tokenize="none", force=True).score
    assert scores["bleu_lc_tok"] == pytest.approx(expected)


def test_moses_lc_tok_matches_the_multi30k_preprocessing():
    # lowercase | normalize-punctuation (curly quotes -> ") | tokenizer (escapes, splits)
    out = metrics.moses_lc_tok(["Ein „Hund“ läuft, schnell."], "de")
    assert out == ["ein &quot; hund &quot; läuft , schnell ."]


def test_lowercase_only_difference_is_perfect_in_lc_tok():
    scores = metrics.score_translations(["ein Hund läuft ."], ["Ein Hund läuft ."], "de")
    assert scores["bleu_lc_tok"] == pytest.approx(100.0)
    assert scores["bleu"] < 100.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        metrics.score_translations(HYPS, REFS[:1], "de")


def test_checkpoint_signatures_decode_like_the_in_process_translator(trained_workdir, toy_data):
    translator, _ = serving_module(trained_workdir, defaults=SearchDefaults(beam_width=1))
    sources = open(toy_data["test_src"], encoding="utf-8").read().splitlines()[:8]
    references = open(toy_data["test_tgt"], encoding="utf-8").read().splitlines()[:8]
    hypotheses, scores = metrics.evaluate(
        translator.signature_functions(), sources, references, "de"
    )
    direct = translator.translate(tf.constant(sources))["translations"].numpy()
    assert hypotheses == [t.decode("utf-8") for t in direct]
    assert scores["sentences"] == 8


def test_dev_evaluator_writes_scalars_text_and_attention_image(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=4, eval_every=2, checkpoint_every=4)
    config.data.dev_src, config.data.dev_tgt = toy_data["test_src"], toy_data["test_tgt"]
    run = str(tmp_path / "run")
    from seq2seq_tf.training.loop import train_and_evaluate

    train_and_evaluate(config, run)
    dev_dir = os.path.join(run, workdir.TENSORBOARD_DIR, "dev")
    tags, steps = set(), set()
    for name in os.listdir(dev_dir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(dev_dir, name)):
            for value in event.summary.value:
                tags.add(value.tag)
                steps.add(event.step)
    assert {"loss", "perplexity", "bleu", "chrf", "bleu_lc_tok", "samples", "attention"} <= tags
    assert {2, 4} <= steps
    train_dir = os.path.join(run, workdir.TENSORBOARD_DIR, "train")
    train_tags = {
        value.tag
        for name in os.listdir(train_dir)
        for event in tf.compat.v1.train.summary_iterator(os.path.join(train_dir, name))
        for value in event.summary.value
    }
    assert "_hparams_/session_start_info" in train_tags  # the HParams tab
    assert {"step_time_ms", "epoch", "tokens_per_sec", "learning_rate"} <= train_tags


def test_saved_model_and_checkpoint_give_the_same_scores(trained_workdir, toy_data, exported):
    from seq2seq_tf.serving import client

    path, base = exported
    saved = tf.saved_model.load(client.resolve_saved_model(base))
    sources = open(toy_data["test_src"], encoding="utf-8").read().splitlines()[:16]
    references = open(toy_data["test_tgt"], encoding="utf-8").read().splitlines()[:16]
    from_saved = metrics.evaluate(saved.signatures, sources, references, "de", beam_width=3)
    translator, _ = serving_module(trained_workdir, defaults=SearchDefaults(beam_width=3))
    from_checkpoint = metrics.evaluate(translator.signature_functions(), sources, references, "de")
    assert path.endswith("/60")
    assert from_saved[0] == from_checkpoint[0]
    assert from_saved[1]["bleu"] == from_checkpoint[1]["bleu"]


def test_exact_match_ignores_surrounding_whitespace_and_checks_lengths():
    assert metrics.exact_match(["a b ", "c", "d"], [" a b", "x", "d"]) == pytest.approx(2 / 3)
    assert metrics.exact_match([], []) == 0.0
    with pytest.raises(ValueError, match="2 translations but 1 reference lines"):
        metrics.exact_match(["a", "b"], ["a"])


def test_format_scores_names_every_score_and_signature():
    scores = metrics.score_translations(HYPS, REFS, "de")
    text = metrics.format_scores(scores)
    assert f"sacreBLEU {scores['bleu']:.2f}" in text and f"chrF {scores['chrf']:.2f}" in text
    assert f"BLEU(lc,tok) {scores['bleu_lc_tok']:.2f}" in text and "(2 sentences)" in text
    assert scores["bleu_signature"] in text and scores["chrf_signature"] in text
