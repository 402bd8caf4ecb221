"""The shapes generator: captions agree with the boxes, splits keep their pairs, seeds repeat."""

from __future__ import annotations

import collections
import json
import os

import numpy as np
from support import load_script

shapes = load_script("make_shapes_captions")


def _centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_captions_name_every_object_and_their_word_spans(shapes_data):
    side = json.load(open(os.path.join(shapes_data, "train", "objects.json")))
    assert side["image_size"] == 32
    for entry in side["images"].values():
        things = entry["objects"]
        true = collections.Counter((t["size"], t["colour"], t["shape"]) for t in things)
        assert 1 <= len(things) <= 3 and 3 <= len(entry["captions"]) <= 5 or len(things) == 1
        for caption in entry["captions"]:
            assert collections.Counter(shapes.parse_objects(caption["caption"])) == true
            words = caption["caption"].split()
            for thing, span in zip(things, caption["words"]):
                assert [words[i] for i in span] == [thing["size"], thing["colour"], thing["shape"]]


def test_relation_words_are_true_of_the_boxes(shapes_data):
    side = json.load(open(os.path.join(shapes_data, "train", "objects.json")))
    checked = 0
    for entry in side["images"].values():
        things = entry["objects"]
        for caption in entry["captions"]:
            words, spans = caption["caption"].split(), caption["words"]
            order = sorted(range(len(things)), key=lambda k: spans[k][0])
            if len(order) < 2:
                continue
            first, second = things[order[0]], things[order[1]]
            between = " ".join(words[spans[order[0]][2] + 1 : spans[order[1]][0] - 1])
            (x0, y0), (x1, y1) = _centre(first["box"]), _centre(second["box"])
            expected = {"above": y0 < y1, "below": y0 > y1, "to the left of": x0 < x1,
                        "to the right of": x0 > x1, "and": True}  # fmt: skip
            assert expected[between], (caption["caption"], first, second)
            checked += 1
    assert checked > 20


def test_boxes_lie_in_their_cells_and_the_image():
    for image, things, _ in shapes.make_split("train", 40, seed=5, image_size=64):
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        cells = [t.cell for t in things]
        assert len(set(cells)) == len(cells)
        for t in things:
            x0, y0, x1, y1 = t.box
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            assert (int(cy // (64 / 3)), int(cx // (64 / 3))) == t.cell
            # the object's colour is at its centre
            pixel = image[int(cy), int(cx)].astype(float)
            assert np.abs(pixel - shapes.COLOURS[t.colour]).max() < 40


def test_unseen_pairs_only_in_test_unseen():
    unseen = set(shapes.UNSEEN_PAIRS)
    for split in ("train", "valid", "test"):
        for _, things, _ in shapes.make_split(split, 50, seed=1):
            assert not any((t.colour, t.shape) in unseen for t in things)
    for _, things, _ in shapes.make_split("test_unseen", 50, seed=1):
        assert any((t.colour, t.shape) in unseen for t in things)


def test_same_seed_same_data():
    a = shapes.make_split("valid", 5, seed=9)
    b = shapes.make_split("valid", 5, seed=9)
    c = shapes.make_split("valid", 5, seed=10)
    assert all(np.array_equal(x[0], y[0]) and x[2] == y[2] for x, y in zip(a, b))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))
