"""Caption scores: pycocoevalcap's BLEU and CIDEr-D on hand-worked cases, attribute F1 and
the pointing score by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seq2seq_tf.evaluation import captioning as ev


def test_bleu_and_cider_hand_cases():
    same = ev.caption_scores(["A red circle."], [["a red circle"]])
    assert same["bleu1"] == pytest.approx(1.0, abs=1e-6)
    assert same["bleu3"] == pytest.approx(1.0, abs=1e-6) and same["bleu4"] < 0.1  # no 4-gram
    # BLEU-1 of "a red a" against "a red circle": clipped unigrams 2/3, no brevity penalty
    part = ev.caption_scores(["a red a"], [["a red circle"]])
    assert part["bleu1"] == pytest.approx(2 / 3, abs=1e-6)
    # CIDEr-D with two images: a perfect caption of a length-matched reference gets
    # 10 x mean over n of the tf-idf cosine (1 for n-grams it shares with its reference)
    two = ev.caption_scores(
        ["a red circle", "a blue square"], [["a red circle"], ["a green square"]]
    )
    assert two["cider"] > 0
    # both right: per n the cosine is 1 for n = 1..3 ("a", in both references, has idf
    # log(2/2) = 0 and drops out) and 0 for n = 4 (a 3-word caption has no 4-gram):
    # 10 x mean(1, 1, 1, 0) = 7.5 per image
    refs = [["a red circle"], ["a green square"]]
    right = ev.caption_scores(["a red circle", "a green square"], refs)
    assert right["cider"] == pytest.approx(7.5, abs=1e-4)


def test_cider_d_length_penalty():
    refs = [["a red circle above a blue square"], ["a green square"]]
    short = ev.caption_scores(["a red circle", "a green square"], refs)["cider"]
    exact = ev.caption_scores(["a red circle above a blue square", "a green square"], refs)["cider"]
    # image 1 (6 words, all n-grams): 10; image 2 (3 words): 7.5, see above
    assert exact == pytest.approx((10.0 + 7.5) / 2, abs=1e-4)
    # "a red circle" vs its 6-word reference: clipped cosines times exp(-9 / 72)
    assert short < exact


def test_attributes_hand_computed():
    objects = [[{"size": "small", "colour": "red", "shape": "circle"},
                {"size": "large", "colour": "blue", "shape": "square"}],
               [{"size": "small", "colour": "red", "shape": "circle"}],
               [{"size": "large", "colour": "blue", "shape": "square"}] * 2]  # fmt: skip
    hyps = [
        "a small red circle above a large green square",
        "a small red circle and a small red circle",
        "a large blue square to the left of a large blue square",
    ]
    scores = ev.attribute_scores(hyps, objects)
    # named 6 triples, 4 right (the 2nd image's one red circle counts once, the 3rd
    # image's two blue squares twice); 5 present
    assert scores["precision"] == pytest.approx(4 / 6)
    assert scores["recall"] == pytest.approx(4 / 5)
    assert scores["f1"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))


def test_pointing_hand_computed():
    # 4 x 4 grid on a 40-pixel image: cell centres at 5, 15, 25, 35. The box is the top
    # right (x 20..40, y 0..10): row 0, columns 2 and 3 (maps are [step, row, column]).
    objects = [[{"size": "small", "colour": "red", "shape": "circle", "box": [20, 0, 40, 10]}]]
    tokens = [["a", "small", "red", "circle"]]
    maps = np.zeros((4, 4, 4))
    maps[1, 0, 2] = 1.0  # "small": in the box
    maps[2, 0, 3] = 1.0  # "red": in the box
    maps[3, 2, 0] = 1.0  # "circle": bottom left, where x and y swapped would put the box
    result = ev.pointing_score(tokens, [maps], objects, 40)
    assert result["words"] == 3
    assert result["pointing"] == pytest.approx(2 / 3)
    assert result["chance"] == pytest.approx(200 / 1600)
    wrong = ev.pointing_score([["a", "large", "red", "circle"]], [maps], objects, 40)
    assert wrong["words"] == 0 and wrong["pointing"] == 0.0


def test_words_of_sentencepiece_pieces():
    pieces = ["\u2581a", "\u2581sm", "all", "\u2581red"]
    assert ev.words_of(pieces) == [("a", [0]), ("small", [1, 2]), ("red", [3])]
    assert ev.words_of(["a", "red", ""]) == [("a", [0]), ("red", [1])]
    assert not math.isnan(ev.pointing_score([[]], [np.zeros((0, 2, 2))], [[]], 8)["chance"])
