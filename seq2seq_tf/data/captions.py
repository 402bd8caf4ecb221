"""Images and their captions: the Flickr8k and COCO layouts, a word vocabulary, tf.data.

Readers give a `CaptionSet` (every image once, with all its references) and fail
with a `DataError` naming the file and line (or the JSON entry) of a missing or
unreadable image, an image without a caption, or a caption of an unknown image:

    Flickr8k-style  a `captions.txt` of `image,caption` lines (several per image; a
                    first line `image,caption` is a header), the images in the
                    directory beside it or its `Images/` (or `images/`) folder.
                    The original `Flickr8k.token.txt` lines `name.jpg#0<TAB>caption`
                    are read too.
    COCO            captions JSON with `images` (`id`, `file_name`) and `annotations`
                    (`image_id`, `caption`), the images beside it or in --images_dir.

Captions are normalized in-graph (`normalize`: lowercase, everything but letters,
digits and apostrophes becomes a space), the same op in training, evaluation and
the export. Tokens are words (`WordTokenizer`, ids 0-3 pad, unk, bos, eos as in
SentencePiece) or SentencePiece pieces. Training takes one caption per example
(every (image, caption) pair once per pass); evaluation keeps all references.
Images are decoded, resized and scaled to [0, 1] in the graph (`decode_image`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from seq2seq_tf.data import vocab
from seq2seq_tf.data.text import DataError, read_lines

HEADER = "image,caption"


@dataclasses.dataclass
class CaptionSet:
    """Every image of a split once, with all its references.

    images: image file paths `[num_images]`.
    captions: per image its reference captions (raw text, at least one).
    source: the captions file they came from (for messages).
    where: per image the "file:line" (or JSON entry) of its first caption.
    """

    images: list[str]
    captions: list[list[str]]
    source: str
    where: list[str]

    def pairs(self) -> tuple[list[int], list[str]]:
        """(image index, caption) of every reference, in file order: training examples."""
        index = [i for i, refs in enumerate(self.captions) for _ in refs]
        return index, [c for refs in self.captions for c in refs]

    def __len__(self) -> int:
        return len(self.images)


def default_images_dir(captions_path: str) -> str:
    """Where a captions file's images are: its `Images/` or `images/` folder, else beside it."""
    base = os.path.dirname(os.path.abspath(captions_path))
    for name in ("Images", "images"):
        if tf.io.gfile.isdir(os.path.join(base, name)):
            return os.path.join(base, name)
    return base


def _finish(names: dict, images_dir: str, source: str) -> CaptionSet:
    """Checks every named image exists; names -> {"captions": [...], "where": str}."""
    paths, captions, where = [], [], []
    for name, entry in names.items():
        path = os.path.join(images_dir, name)
        if not tf.io.gfile.exists(path):
            raise DataError(f"{entry['where']}: image {name} not found in {images_dir}")
        if not entry["captions"]:
            raise DataError(f"{entry['where']}: image {name} has no caption")
        paths.append(path)
        captions.append(entry["captions"])
        where.append(entry["where"])
    if not paths:
        raise DataError(f"{source}: no captions")
    return CaptionSet(paths, captions, source, where)


def read_flickr(captions_path: str, images_dir: str = "") -> CaptionSet:
    """A Flickr8k-style captions file (see the module docstring)."""
    images_dir = images_dir or default_images_dir(captions_path)
    names: dict = collections.OrderedDict()
    for number, line in enumerate(read_lines(captions_path), start=1):
        where = f"{captions_path}:{number}"
        if not line.strip() or (number == 1 and line.strip().lower() == HEADER):
            continue
        if "\t" in line:  # Flickr8k.token.txt: name.jpg#0<TAB>caption
            name, caption = line.split("\t", 1)
            name = name.rsplit("#", 1)[0]
        elif "," in line:
            name, caption = line.split(",", 1)
        else:
            raise DataError(f"{where}: expected 'image,caption', got {line[:60]!r}")
        name, caption = name.strip(), caption.strip().strip('"')
        if not name:
            raise DataError(f"{where}: no image name")
        entry = names.setdefault(name, {"captions": [], "where": where})
        if not caption:
            raise DataError(f"{where}: image {name} has an empty caption")
        entry["captions"].append(caption)
    return _finish(names, images_dir, captions_path)


def read_coco(json_path: str, images_dir: str = "") -> CaptionSet:
    """COCO captions JSON (`images` and `annotations`)."""
    images_dir = images_dir or default_images_dir(json_path)
    if not tf.io.gfile.exists(json_path):
        raise DataError(f"file not found: {json_path}")
    try:
        with tf.io.gfile.GFile(json_path) as f:
            data = json.load(f)
        images, annotations = data["images"], data["annotations"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{json_path}: not COCO captions JSON ({err!r:.100})") from err
    names: dict = collections.OrderedDict()
    by_id = {}
    for k, image in enumerate(images):
        where = f"{json_path}: images[{k}]"
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataError(f"{where}: needs 'id' and 'file_name'")
        by_id[image["id"]] = image["file_name"]
        names[image["file_name"]] = {"captions": [], "where": where}
    for k, note in enumerate(annotations):
        where = f"{json_path}: annotations[{k}]"
        if not isinstance(note, dict) or "image_id" not in note or "caption" not in note:
            raise DataError(f"{where}: needs 'image_id' and 'caption'")
        if note["image_id"] not in by_id:
            raise DataError(f"{where}: caption of unknown image id {note['image_id']!r}")
        caption = str(note["caption"]).strip()
        if not caption:
            raise DataError(f"{where}: empty caption")
        names[by_id[note["image_id"]]]["captions"].append(caption)
    return _finish(names, images_dir, json_path)


def read_captions(path: str, images_dir: str = "") -> CaptionSet:
    """COCO JSON (`.json`) or a Flickr8k-style captions file."""
    if path.endswith(".json"):
        return read_coco(path, images_dir)
    return read_flickr(path, images_dir)


def check_images(captions: CaptionSet) -> None:
    """Decodes every image once (TensorFlow's decoder, as training does); a file that is
    not a PNG, JPEG, GIF or BMP image is a DataError naming it and its caption line."""
    for path, where in zip(captions.images, captions.where):
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
            message = str(err).splitlines()[0][:120]
            raise DataError(f"{where}: cannot decode image {path} ({message})") from err


# --- Text: normalization and a word vocabulary ----------------------------------------------


def normalize(strings) -> tf.Tensor:
    """Captions `[batch]` -> lowercase words separated by single spaces (in-graph)."""
    lowered = tf.strings.lower(strings, encoding="utf-8")
    spaced = tf.strings.regex_replace(lowered, r"[^\pL\pN']+", " ")
    return tf.strings.strip(spaced)


def normalize_texts(texts: list[str]) -> list[str]:
    """`normalize` of Python strings (evaluation tokenizes references the same way)."""
    if not texts:
        return []
    return [t.decode("utf-8") for t in normalize(tf.constant(texts)).numpy()]


def build_words(captions: list[str], min_count: int = 1) -> str:
    """The word vocabulary of training captions: words seen `min_count` times or more,
    most frequent first (ties alphabetical), as one space-separated string."""
    counts = collections.Counter(w for text in normalize_texts(captions) for w in text.split())
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return " ".join(kept)


class WordTokenizer(tf.Module):
    """Words <-> ids in-graph, with the `tokenize`/`detokenize`/`id_to_string` of
    tensorflow_text's SentencepieceTokenizer (so search and export take either).

    Ids 0-3 are pad, unk, bos, eos; word i of `words` has id 4 + i; an unknown word
    is unk. Detokenizing drops the special ids and joins words with spaces.

    Args:
        words: the vocabulary (`build_words`), space-separated, each word once.
    """

    def __init__(self, words: str, name: str = "word_tokenizer"):
        super().__init__(name=name)
        listed = words.split()
        if len(set(listed)) != len(listed):
            raise ValueError("a word vocabulary lists each word once")
        self.words = " ".join(listed)
        self.vocab_size = vocab.CHAR_SPECIALS + len(listed)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(listed or ["\x00"]),
                tf.range(vocab.CHAR_SPECIALS, vocab.CHAR_SPECIALS + max(len(listed), 1)),
            ),
            default_value=vocab.UNK_ID,
        )
        self.strings = tf.constant(["<pad>", "<unk>", "<s>", "</s>", *listed])

    def tokenize(self, strings) -> tf.RaggedTensor:
        """Captions `[batch]` -> ids `[batch, (words)]` int32 (normalized first)."""
        words = tf.strings.split(normalize(strings))
        return words.with_flat_values(tf.cast(self.table.lookup(words.flat_values), tf.int32))

    def id_to_string(self, ids) -> tf.Tensor:
        """The word (or `<pad>`, `<unk>`, `<s>`, `</s>`) of each id, any shape."""
        return tf.gather(self.strings, tf.clip_by_value(ids, 0, self.vocab_size - 1))

    def detokenize(self, ids) -> tf.Tensor:
        """Ids `[batch, (steps)]` (ragged or dense) -> strings `[batch]`, specials dropped."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.ragged.boolean_mask(ids, ids >= vocab.CHAR_SPECIALS)
        return tf.strings.reduce_join(self.id_to_string(ids), axis=1, separator=" ")


# --- tf.data ----------------------------------------------------------------------------------


def decode_image(data, image_size: int) -> tf.Tensor:
    """Encoded PNG/JPEG/GIF/BMP bytes (a scalar) -> `[size, size, 3]` float32 in [0, 1]:
    greyscale repeated to RGB, alpha dropped, resized (bilinear, antialiased)."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def caption_ids(tokenizer, captions, max_length: int):
    """Captions `[batch]` -> (target_in `[batch, T]` BOS + ids, target_out ids + EOS), PAD
    after; each caption cut to `max_length - 1` tokens."""
    ids = tokenizer.tokenize(captions)[:, : max_length - 1]
    rows = ids.nrows()
    target_in = tf.concat([tf.fill([rows, 1], vocab.BOS_ID), ids], axis=1)
    target_out = tf.concat([ids, tf.fill([rows, 1], vocab.EOS_ID)], axis=1)
    return target_in.to_tensor(vocab.PAD_ID), target_out.to_tensor(vocab.PAD_ID)


def make_train_dataset(
    inputs: CaptionSet | np.ndarray,
    captions: CaptionSet,
    tokenizer,
    image_size: int,
    batch_size: int,
    max_length: int,
    seed: int,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Batches `(inputs, target_in [B, T], target_out [B, T])`, one caption per example.

    Args:
        inputs: `captions` itself (images read from its files, decoded in-graph to
            `[B, size, size, 3]`), or precomputed features `[num_images, ...]` float32.
        captions: the split; each (image, caption) pair is one example per pass.
        repeat: shuffle and repeat for ever (training); False: one pass in order.

    The shuffle buffer holds every pair (an index and a caption, not pixels), so the
    training checkpoint of the iterator stays small.
    """
    index, texts = captions.pairs()
    dataset = tf.data.Dataset.from_tensor_slices((np.array(index, np.int32), texts))
    if repeat:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True).repeat()
    if isinstance(inputs, CaptionSet):
        paths = tf.constant(inputs.images)

        def load(i, text):
            return decode_image(tf.io.read_file(tf.gather(paths, i)), image_size), text
    else:
        features = tf.constant(np.asarray(inputs, np.float32))

        def load(i, text):
            return tf.gather(features, i), text

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=repeat)

    def tokenize(pixels, text):
        return (pixels, *caption_ids(tokenizer, text, max_length))

    return dataset.map(tokenize).prefetch(tf.data.AUTOTUNE)


def image_batches(paths: list[str], image_size: int, batch_size: int) -> tf.data.Dataset:
    """Decoded images `[B, size, size, 3]` of `paths`, in order (evaluation)."""
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(paths))
    dataset = dataset.map(
        lambda p: decode_image(tf.io.read_file(p), image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_features(captions: CaptionSet, features_dir: str) -> np.ndarray:
    """Precomputed features `[num_images, ...]` from `<features_dir>/<image stem>.npy`: one
    vector `[dim]` per image (the cs231n setting) or a grid `[H, W, dim]`, all the same shape."""
    arrays, shape = [], None
    for path, where in zip(captions.images, captions.where):
        stem = os.path.splitext(os.path.basename(path))[0]
        feature_path = os.path.join(features_dir, stem + ".npy")
        if not tf.io.gfile.exists(feature_path):
            raise DataError(f"{where}: features {feature_path} not found")
        try:
            with tf.io.gfile.GFile(feature_path, "rb") as f:
                array = np.load(f, allow_pickle=False).astype(np.float32)
        except ValueError as err:
            raise DataError(f"{feature_path}: not a .npy array ({err})") from err
        if array.ndim not in (1, 3) or (shape is not None and array.shape != shape):
            raise DataError(
                f"{feature_path}: shape {array.shape}; expected [dim] or [H, W, dim], the "
                f"same for every image ({shape})"
            )
        shape = array.shape
        arrays.append(array)
    return np.stack(arrays)
