"""Generate the shapes captioning data: pictures of 1-3 objects and captions from a grammar.

Each image (64x64 RGB by default) holds 1-3 objects, each a shape x colour x size
in its own cell of a 3x3 grid (centre jittered), on a noisy grey background. Each
image has 3-5 different reference captions from a small grammar:

    Caption = ["there is" | "a picture of"] Object [Relation Object] ["and" Object]
    Object  = "a" Size Colour Shape            # every object is named, always in full
    Relation = "above" | "below" | "to the left of" | "to the right of" | "and"

so a caption can be parsed back into its (size, colour, shape) triples
(`OBJECT_PATTERN`, from `seq2seq_tf.evaluation.captioning`), and every relation
word is true of the picture. Some
colour-shape pairs (`UNSEEN_PAIRS`) never appear in train, valid or test; the
test_unseen split has at least one of them in every image.

Usage::

    python data_scripts/make_shapes_captions.py --out_dir=data/shapes --num_train=8000

writes, per split (train, valid, test, test_unseen), the Flickr8k layout

    out_dir/<split>/captions.txt     "image,caption" header, then one line per caption
    out_dir/<split>/Images/*.png
    out_dir/<split>/objects.json     per image: each object's attributes and box
                                     [x0, y0, x1, y1] in pixels, and per caption the
                                     word positions (whitespace split) naming each object

Output depends only on the flags.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from absl import flags
from PIL import Image, ImageDraw

from seq2seq_tf import cli

cli.quiet_tensorflow()  # the grammar's module imports TensorFlow

from seq2seq_tf.evaluation import captioning as grammar  # noqa: E402

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (165, 60, 205),
}
SIZES = {"small": 0.24, "large": 0.44}  # half extent as a share of a grid cell
# Held out of train/valid/test: each shape once, each colour at most once.
UNSEEN_PAIRS = (("red", "triangle"), ("green", "diamond"), ("blue", "circle"), ("yellow", "square"))
SPLITS = ("train", "valid", "test", "test_unseen")
# The grammar's words are the evaluation's (it parses generated captions back).
assert (SHAPES, tuple(COLOURS), tuple(SIZES)) == (grammar.SHAPES, grammar.COLOURS, grammar.SIZES)
OBJECT_PATTERN = grammar.OBJECT_PATTERN
parse_objects = grammar.parse_objects


@dataclass(frozen=True)
class Thing:
    """One object: attributes, grid cell (row, col) and box [x0, y0, x1, y1] in pixels."""

    size: str
    colour: str
    shape: str
    cell: tuple[int, int]
    box: tuple[float, float, float, float]

    @property
    def phrase(self) -> str:
        return f"a {self.size} {self.colour} {self.shape}"


def _relation(a: Thing, b: Thing, rng: np.random.Generator) -> str:
    """A true spatial relation of a to b (cells differ), picked at random among the true."""
    options = []
    if a.cell[0] < b.cell[0]:
        options.append("above")
    if a.cell[0] > b.cell[0]:
        options.append("below")
    if a.cell[1] < b.cell[1]:
        options.append("to the left of")
    if a.cell[1] > b.cell[1]:
        options.append("to the right of")
    return str(rng.choice(options))


def make_caption(things: list[Thing], rng: np.random.Generator) -> tuple[str, list[list[int]]]:
    """One caption and, per object of `things`, the positions of its three words."""
    order = list(rng.permutation(len(things)))
    opener = str(rng.choice(["", "there is ", "a picture of "]))
    words: list[str] = opener.split()
    spans: dict[int, list[int]] = {}

    def add(index: int) -> None:
        spans[index] = [len(words) + 1, len(words) + 2, len(words) + 3]
        words.extend(things[index].phrase.split())

    add(order[0])
    if len(order) >= 2:
        relate = rng.random() < 0.7
        link = _relation(things[order[0]], things[order[1]], rng) if relate else "and"
        words.extend(link.split())
        add(order[1])
    if len(order) == 3:
        words.append("and")
        add(order[2])
    return " ".join(words), [spans[i] for i in range(len(things))]


def _pairs(unseen: bool) -> list[tuple[str, str]]:
    held = set(UNSEEN_PAIRS)
    return [(c, s) for c in COLOURS for s in SHAPES if ((c, s) in held) == unseen]


def make_things(rng: np.random.Generator, image_size: int, must_unseen: bool) -> list[Thing]:
    """1-3 objects in distinct cells; seen pairs only, or at least one unseen pair."""
    count = int(rng.integers(1, 4))
    cells = rng.choice(9, size=count, replace=False)
    seen, unseen = _pairs(False), _pairs(True)
    cell_px = image_size / 3.0
    things = []
    for k, flat in enumerate(cells):
        pool = unseen if must_unseen and k == 0 else seen
        if must_unseen and k > 0 and rng.random() < 0.3:
            pool = unseen
        colour, shape = pool[int(rng.integers(len(pool)))]
        size = str(rng.choice(list(SIZES)))
        half = SIZES[size] * cell_px
        room = max(cell_px / 2 - half - 1.0, 0.0)
        row, col = divmod(int(flat), 3)
        cx = (col + 0.5) * cell_px + rng.uniform(-room, room)
        cy = (row + 0.5) * cell_px + rng.uniform(-room, room)
        box = (cx - half, cy - half, cx + half, cy + half)
        things.append(Thing(size, colour, shape, (row, col), tuple(round(v, 2) for v in box)))
    order = rng.permutation(count)  # the objects' list order carries no position
    return [things[i] for i in order]


def draw(things: list[Thing], image_size: int, rng: np.random.Generator) -> np.ndarray:
    """The picture `[size, size, 3]` uint8: noisy grey ground, jittered colours."""
    ground = rng.normal(60.0, 8.0, (image_size, image_size, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(ground)
    pen = ImageDraw.Draw(image)
    for thing in things:
        base = np.array(COLOURS[thing.colour], float)
        fill = tuple(int(v) for v in (base + rng.uniform(-15, 15, 3)).clip(0, 255))
        x0, y0, x1, y1 = thing.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if thing.shape == "circle":
            pen.ellipse(thing.box, fill=fill)
        elif thing.shape == "square":
            pen.rectangle(thing.box, fill=fill)
        elif thing.shape == "triangle":
            pen.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
        else:  # diamond
            pen.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    pixels = np.asarray(image).astype(np.float32)
    pixels += rng.normal(0.0, 4.0, pixels.shape)  # light noise over the objects too
    return pixels.clip(0, 255).astype(np.uint8)


def make_split(
    name: str, count: int, seed: int, image_size: int = 64
) -> list[tuple[np.ndarray, list[Thing], list[tuple[str, list[list[int]]]]]]:
    """`count` examples (image, objects, captions with word spans) of one split."""
    offset = SPLITS.index(name)
    rng = np.random.default_rng([seed, offset])
    examples = []
    for _ in range(count):
        things = make_things(rng, image_size, must_unseen=name == "test_unseen")
        image = draw(things, image_size, rng)
        wanted = int(rng.integers(3, 6))
        captions: dict[str, list[list[int]]] = {}
        for _ in range(50):  # distinct captions; a lone object has few phrasings
            caption, spans = make_caption(things, rng)
            captions.setdefault(caption, spans)
            if len(captions) == wanted:
                break
        examples.append((image, things, list(captions.items())))
    return examples


def write_split(examples, out_dir: str, name: str) -> str:
    """Writes one split in the Flickr8k layout (see the module docstring); returns its dir."""
    split_dir = os.path.join(out_dir, name)
    image_dir = os.path.join(split_dir, "Images")
    os.makedirs(image_dir, exist_ok=True)
    lines = ["image,caption"]
    side = {}
    for i, (image, things, captions) in enumerate(examples):
        file_name = f"{name}_{i:05d}.png"
        Image.fromarray(image).save(os.path.join(image_dir, file_name))
        lines.extend(f"{file_name},{caption}" for caption, _ in captions)
        side[file_name] = {
            "objects": [
                {
                    "size": t.size,
                    "colour": t.colour,
                    "shape": t.shape,
                    "cell": list(t.cell),
                    "box": list(t.box),
                }
                for t in things
            ],  # fmt: skip
            "captions": [{"caption": c, "words": spans} for c, spans in captions],
        }
    with open(os.path.join(split_dir, "captions.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(split_dir, "objects.json"), "w", encoding="utf-8") as f:
        json.dump({"image_size": int(examples[0][0].shape[0]) if examples else 0,
                   "images": side}, f)  # fmt: skip
    return split_dir


def make_all(out_dir: str, counts: dict[str, int], seed: int, image_size: int = 64) -> dict:
    """Generates and writes every split of `counts`; returns split -> directory."""
    return {
        name: write_split(make_split(name, count, seed, image_size), out_dir, name)
        for name, count in counts.items()
    }


FLAGS = flags.FLAGS


def _define_flags() -> None:
    # Defined only when run as a script: importing the module defines no absl flags.
    flags.DEFINE_string("out_dir", "data/shapes", "Directory for the four splits.")
    flags.DEFINE_integer("num_train", 8000, "Training images.")
    flags.DEFINE_integer("num_valid", 300, "Validation images.")
    flags.DEFINE_integer("num_test", 500, "Test images (seen colour-shape pairs).")
    flags.DEFINE_integer("num_test_unseen", 500, "Test images with an unseen colour-shape pair.")
    flags.DEFINE_integer("image_size", 64, "Side of the square images in pixels.")
    flags.DEFINE_integer("seed", 1234, "Random seed; output is identical for the same flags.")


def main(argv: list[str]) -> None:
    """Writes the splits and prints one line per split."""
    counts = {
        "train": FLAGS.num_train,
        "valid": FLAGS.num_valid,
        "test": FLAGS.num_test,
        "test_unseen": FLAGS.num_test_unseen,
    }
    for name, path in make_all(FLAGS.out_dir, counts, FLAGS.seed, FLAGS.image_size).items():
        print(f"{name}: {counts[name]} images in {path}")


if __name__ == "__main__":
    _define_flags()
    cli.run(main)
