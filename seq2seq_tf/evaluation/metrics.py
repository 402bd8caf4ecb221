"""Translation scores: sacreBLEU, chrF and the Multi30k BLEU(lc,tok), all from sacrebleu.

sacreBLEU is the comparable number (cased, detokenized, with its signature).
The Multi30k literature reports BLEU on lowercased, punctuation-normalized,
Moses-tokenized text (the dataset's `lowercase | normalize-punctuation |
tokenizer` preprocessing); `BLEU(lc,tok)` reproduces it with sacremoses and
scores with sacrebleu's `tokenize="none"`.
"""

from __future__ import annotations

from collections.abc import Mapping

import sacrebleu
from sacremoses import MosesPunctNormalizer, MosesTokenizer

from seq2seq_tf.serving import client


def moses_lc_tok(lines: list[str], lang: str) -> list[str]:
    """lowercase | normalize-punctuation -l lang | tokenizer -l lang, as Multi30k was made."""
    normalizer, moses = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    return [moses.tokenize(normalizer.normalize(line.lower()), return_str=True) for line in lines]


def score_translations(hypotheses: list[str], references: list[str], lang: str) -> dict:
    """sacreBLEU and chrF on raw text, and BLEU(lc,tok); signatures included."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    lc_tok = sacrebleu.metrics.BLEU(tokenize="none", force=True).corpus_score(
        moses_lc_tok(hypotheses, lang), [moses_lc_tok(references, lang)]
    )
    return {
        "bleu": bleu_score.score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf": chrf_score.score,
        "chrf_signature": str(chrf.get_signature()),
        "bleu_lc_tok": lc_tok.score,
        "bleu_lc_tok_detail": str(lc_tok),
        "sentences": len(references),
    }


def format_scores(scores: dict) -> str:
    return (
        f"sacreBLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
        f"BLEU(lc,tok) {scores['bleu_lc_tok']:.2f}  ({scores['sentences']} sentences)\n"
        f"  {scores['bleu_signature']}\n  {scores['chrf_signature']}"
    )


def evaluate(
    signatures: Mapping,
    sources: list[str],
    references: list[str],
    lang: str,
    beam_width: int | None = None,
    batch_size: int = 64,
) -> tuple[list[str], dict]:
    """Translates `sources` and scores them.

    `signatures`: a loaded SavedModel's `.signatures`, or a Translator's
    `signature_functions()`.
    """
    call = client.make_request(signatures, beam_width)
    translations, _ = client.translate_lines(call, sources, batch_size, show_progress=True)
    hypotheses = [t[0] for t in translations]
    return hypotheses, score_translations(hypotheses, references, lang)


def exact_match(hypotheses: list[str], references: list[str]) -> float:
    """Share of hypotheses equal to their reference (whitespace at the ends ignored)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} translations but {len(references)} reference lines")
    same = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return same / max(len(references), 1)
