"""Caption readers (Flickr8k-style and COCO, good and broken), the word vocabulary, tf.data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.data import captions as cd
from seq2seq_tf.data.text import DataError


def _png(path, size=8, channels=3):
    path.write_bytes(
        tf.io.encode_png(tf.fill([size, size, channels], tf.constant(90, tf.uint8))).numpy()
    )


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "Images").mkdir()
    for name in ("a.png", "b.png"):
        _png(tmp_path / "Images" / name)
    return tmp_path


def test_flickr_layout(folder):
    path = folder / "captions.txt"
    path.write_text("image,caption\na.png,A dog, running.\nb.png,two cats\na.png,a dog\n")
    split = cd.read_flickr(str(path))
    assert [p.rsplit("/", 1)[-1] for p in split.images] == ["a.png", "b.png"]
    assert split.captions == [["A dog, running.", "a dog"], ["two cats"]]
    assert split.pairs() == ([0, 0, 1], ["A dog, running.", "a dog", "two cats"])
    cd.check_images(split)


def test_flickr_token_file(folder):
    path = folder / "Flickr8k.token.txt"
    path.write_text("a.png#0\tone\na.png#1\ttwo\n")
    assert cd.read_captions(str(path)).captions == [["one", "two"]]


@pytest.mark.parametrize(
    "text, message",
    [
        ("image,caption\nc.png,a cat\n", "captions.txt:2: image c.png not found"),
        ("image,caption\na.png,\n", "captions.txt:2: image a.png has an empty caption"),
        ("a.png a cat\n", "captions.txt:1: expected 'image,caption'"),
    ],
)
def test_flickr_errors_name_file_and_line(folder, text, message):
    path = folder / "captions.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        cd.read_flickr(str(path))


def test_unreadable_image_is_named(folder):
    (folder / "Images" / "b.png").write_bytes(b"\x89PNG broken")
    path = folder / "captions.txt"
    path.write_text("a.png,x\nb.png,y\n")
    with pytest.raises(DataError, match=r"captions.txt:2: cannot decode image .*b.png"):
        cd.check_images(cd.read_flickr(str(path)))


def test_coco_layout_and_errors(folder):
    good = {"images": [{"id": 7, "file_name": "a.png"}, {"id": 8, "file_name": "b.png"}],
            "annotations": [{"image_id": 8, "caption": "b one"}, {"image_id": 7, "caption": "a"},
                            {"image_id": 8, "caption": "b two"}]}  # fmt: skip
    path = folder / "captions.json"
    path.write_text(json.dumps(good))
    split = cd.read_captions(str(path))
    assert split.captions == [["a"], ["b one", "b two"]]
    unknown = dict(good, annotations=good["annotations"] + [{"image_id": 9, "caption": "x"}])
    path.write_text(json.dumps(unknown))
    with pytest.raises(DataError, match=r"annotations\[3\]: caption of unknown image id 9"):
        cd.read_captions(str(path))
    lonely = dict(good, annotations=good["annotations"][:1])
    path.write_text(json.dumps(lonely))
    with pytest.raises(DataError, match=r"images\[0\]: image a.png has no caption"):
        cd.read_captions(str(path))
    path.write_text("{not json")
    with pytest.raises(DataError, match="not COCO captions JSON"):
        cd.read_captions(str(path))


def test_words_round_trip():
    words = cd.build_words(["A red circle.", "a blue circle", "Red, red!"], min_count=2)
    assert words == "red a circle"
    tok = cd.WordTokenizer(words)
    ids = tok.tokenize(tf.constant(["A RED square circle"]))
    assert ids.to_list() == [[5, 4, 1, 6]]  # unknown "square" -> unk
    assert tok.detokenize(ids).numpy().tolist() == [b"a red circle"]
    assert tok.id_to_string(tf.constant([0, 3, 4])).numpy().tolist() == [b"<pad>", b"</s>", b"red"]


def test_train_dataset_batches(shapes_data):
    split = cd.read_flickr(f"{shapes_data}/train/captions.txt")
    tok = cd.WordTokenizer(cd.build_words(split.pairs()[1]))
    batch = next(iter(cd.make_train_dataset(split, split, tok, 32, 4, 20, seed=0)))
    images, target_in, target_out = (t.numpy() for t in batch)
    assert images.shape == (4, 32, 32, 3) and 0.0 <= images.min() and images.max() <= 1.0
    assert (target_in[:, 0] == 2).all()
    np.testing.assert_array_equal(
        target_in[:, 1:], np.where(target_out[:, :-1] == 3, 0, target_out[:, :-1])
    )
    lengths = (target_out != 0).sum(1)
    assert all(target_out[i, lengths[i] - 1] == 3 for i in range(4))


def test_decode_image_greyscale_rgba_sizes():
    grey = tf.io.encode_png(tf.fill([5, 9, 1], tf.constant(255, tf.uint8)))
    rgba = tf.io.encode_png(tf.fill([40, 20, 4], tf.constant(0, tf.uint8)))
    assert cd.decode_image(grey, 16).numpy().shape == (16, 16, 3)
    np.testing.assert_allclose(cd.decode_image(grey, 16).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(cd.decode_image(rgba, 8).numpy(), 0.0, atol=1e-6)


def test_load_features(folder, tmp_path):
    path = folder / "captions.txt"
    path.write_text("a.png,x\nb.png,y\n")
    split = cd.read_flickr(str(path))
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "a.npy", np.ones(5, np.float32))
    with pytest.raises(DataError, match="b.npy not found"):
        cd.load_features(split, str(feats))
    np.save(feats / "b.npy", np.zeros(5, np.float32))
    assert cd.load_features(split, str(feats)).shape == (2, 5)
