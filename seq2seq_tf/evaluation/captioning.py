"""Caption scores: BLEU-1..4 and CIDEr-D from pycocoevalcap, and on the shapes data the
attributes a caption names and where its attention points.

pycocoevalcap's `Cider` scorer is CIDEr-D (Vedantam et al., 2015, as the COCO
caption server computes it): the candidate's n-gram counts are clipped by the
reference's, the similarity gets the Gaussian length penalty exp(-(l_c - l_r)^2 /
(2 sigma^2)) with sigma 6, and the score is multiplied by 10; the package has no
separate `CiderD` class, and its `Cider` is that computation (document
frequencies from the evaluated references). Both scorers are pure Python (no
Java); captions are tokenized by `data.captions.normalize` (lowercase words),
the op training uses, instead of the Java PTB tokenizer.

The shapes grammar (`data_scripts/make_shapes_captions.py`) names every object as
"<size> <colour> <shape>"; `parse_objects` reads those triples back, and
`attribute_scores` compares them with the objects in the picture. `pointing_score`
asks, for every generated word that names a pictured object, whether the peak of
its attention map (the centre of the grid cell with the most weight) lies inside
that object's box, beside the chance rate: the box's share of the image.
"""

from __future__ import annotations

import collections
import json
import os
import re

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from seq2seq_tf.data.captions import normalize_texts
from seq2seq_tf.data.text import DataError

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = ("red", "green", "blue", "yellow", "purple")
SIZES = ("small", "large")
OBJECT_PATTERN = re.compile(rf"\b({'|'.join(SIZES)}) ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b")


def caption_scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """BLEU-1..4 (corpus level) and CIDEr-D of one hypothesis per image against all its
    references, as fractions (BLEU in [0, 1]; CIDEr-D is 10x a cosine, up to about 10)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} captions but {len(references)} reference sets")
    if not hypotheses:
        return {f"bleu{n}": 0.0 for n in range(1, 5)} | {"cider": 0.0}
    hyps = normalize_texts(hypotheses)
    flat = normalize_texts([r for refs in references for r in refs])
    res, gts, start = {}, {}, 0
    for i, refs in enumerate(references):
        res[i] = [hyps[i]]
        gts[i] = flat[start : start + len(refs)]
        start += len(refs)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {**{f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}, "cider": float(cider)}


def parse_objects(caption: str) -> list[tuple[str, str, str]]:
    """The (size, colour, shape) triples a caption names, in order."""
    return [tuple(m.groups()) for m in OBJECT_PATTERN.finditer(caption.lower())]


def attribute_scores(hypotheses: list[str], objects: list[list[dict]]) -> dict:
    """Micro precision, recall and F1 of the named (size, colour, shape) triples against
    the pictured objects (multisets: two red circles must be named twice)."""
    hits = named = present = 0
    for caption, things in zip(hypotheses, objects):
        said = collections.Counter(parse_objects(caption))
        true = collections.Counter((t["size"], t["colour"], t["shape"]) for t in things)
        hits += sum((said & true).values())
        named += sum(said.values())
        present += sum(true.values())
    precision = hits / named if named else 0.0
    recall = hits / present if present else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def words_of(tokens: list[str]) -> list[tuple[str, list[int]]]:
    """Tokens (words, or SentencePiece pieces with the "\u2581" word mark) -> words, each with
    the token positions it spans."""
    words: list[tuple[str, list[int]]] = []
    for t, token in enumerate(tokens):
        if not token:
            break
        piece = token.replace("\u2581", "")
        if token.startswith("\u2581") or not words or "\u2581" not in "".join(tokens):
            words.append((piece, [t]))
        else:
            words[-1] = (words[-1][0] + piece, words[-1][1] + [t])
    return [(w, span) for w, span in words if w]


def _peak_centre(attention: np.ndarray, image_size: float) -> tuple[float, float]:
    """(x, y) in pixels of the centre of the grid cell with the most weight `[H, W]`."""
    height, width = attention.shape
    row, col = np.unravel_index(int(np.argmax(attention)), attention.shape)
    return (col + 0.5) * image_size / width, (row + 0.5) * image_size / height


def pointing_score(
    tokens: list[list[str]], attention: list[np.ndarray], objects: list[list[dict]], image_size: int
) -> dict:
    """For each word of a generated object phrase that names a pictured object, whether its
    attention peak lies in that object's box (any of them when several match).

    Args:
        tokens: per image the caption's tokens.
        attention: per image `[steps, H, W]` (a word's map sums its pieces').
        objects: per image the objects (`box` [x0, y0, x1, y1] in pixels).
        image_size: side of the images the boxes are in.

    Returns:
        {"pointing": share of hits, "chance": mean box share of the image, "words": n}.
    """
    hits, chance, count = 0, 0.0, 0
    area = float(image_size) ** 2
    for toks, maps, things in zip(tokens, attention, objects):
        words = words_of(toks)
        text = [w for w, _ in words]
        for start in range(len(text) - 2):
            triple = tuple(text[start : start + 3])
            if not OBJECT_PATTERN.fullmatch(" ".join(triple)):
                continue
            boxes = [t["box"] for t in things if (t["size"], t["colour"], t["shape"]) == triple]
            if not boxes:
                continue  # a wrong object: attribute scores count it, pointing cannot
            for _, span in words[start : start + 3]:
                x, y = _peak_centre(np.sum(maps[span], axis=0), image_size)
                inside = any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)
                hits += int(inside)
                box = boxes[0]
                clipped = (min(box[2], image_size) - max(box[0], 0)) * (
                    min(box[3], image_size) - max(box[1], 0)
                )
                chance += max(clipped, 0.0) / area
                count += 1
    return {
        "pointing": hits / count if count else 0.0,
        "chance": chance / count if count else 0.0,
        "words": count,
    }


def read_objects(split_dir: str, images: list[str]) -> tuple[list[list[dict]], int]:
    """The objects of each image (in the order of `images`, file paths) from a shapes
    split's objects.json, and the image side the boxes are in."""
    path = os.path.join(split_dir, "objects.json")
    if not os.path.exists(path):
        raise DataError(f"{path} not found: is {split_dir} a make_shapes_captions.py split?")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    table = data["images"]
    missing = [p for p in images if os.path.basename(p) not in table]
    if missing:
        raise DataError(f"{path}: no objects for {os.path.basename(missing[0])}")
    return [table[os.path.basename(p)]["objects"] for p in images], int(data["image_size"])
