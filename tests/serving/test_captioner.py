"""The caption SavedModel: round trip in a fresh process with PNG and JPEG bytes, and bad
bytes (not an image, empty, truncated, huge, greyscale, RGBA) get a defined answer."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

_FRESH = r"""
import json, sys, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
png = open(sys.argv[2], "rb").read()
jpg = tf.io.encode_jpeg(tf.io.decode_png(png), quality=95).numpy()
out = model.signatures["caption"](images=tf.constant([png, jpg]))
print(json.dumps({
    "captions": [c.decode() for c in out["captions"].numpy()],
    "attention": list(out["attention"].shape),
    "modules": sorted(m for m in sys.modules if m.startswith("seq2seq")),
}))
"""


@pytest.fixture(scope="module")
def model(caption_export):
    return tf.saved_model.load(caption_export)


@pytest.fixture(scope="module")
def png(shapes_data) -> bytes:
    return open(sorted(glob.glob(f"{shapes_data}/test/Images/*.png"))[0], "rb").read()


@pytest.mark.slow
def test_fresh_process_png_and_jpeg(caption_export, shapes_data, model, png):
    path = sorted(glob.glob(f"{shapes_data}/test/Images/*.png"))[0]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run(
        [sys.executable, "-c", _FRESH, caption_export, path],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["modules"] == []
    here = model.signatures["caption"](images=tf.constant([png]))
    assert result["captions"][0] == here["captions"].numpy()[0].decode()
    assert result["attention"][0] == 2 and result["attention"][2:] == [8, 8]


def test_caption_outputs(model, png):
    out = model.signatures["caption"](images=tf.constant([png, png]))
    tokens = out["tokens"].numpy()
    maps = out["attention"].numpy()
    length = int((tokens[0] != b"").sum())
    assert out["captions"].numpy()[0].decode() == " ".join(t.decode() for t in tokens[0, :length])
    # each token's map is a distribution over the grid; after the caption, zeros
    np.testing.assert_allclose(maps[0, :length].sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert not maps[0, length:].any()
    nbest = model.signatures["caption_nbest"](
        images=tf.constant([png]), n=tf.constant(2), beam_width=tf.constant(3)
    )
    assert nbest["captions"].shape == (1, 2)
    assert nbest["scores"].numpy()[0, 0] >= nbest["scores"].numpy()[0, 1]


def _encoded(png: bytes) -> dict:
    image = tf.io.decode_png(png)
    return {
        "grey": tf.io.encode_png(tf.image.rgb_to_grayscale(image)).numpy(),
        "rgba": tf.io.encode_png(
            tf.concat([image, tf.fill(tf.shape(image[..., :1]), tf.constant(255, tf.uint8))], -1)
        ).numpy(),
        "big": tf.io.encode_png(tf.zeros([4000, 4000, 3], tf.uint8)).numpy(),
    }


def test_greyscale_rgba_and_large_images_are_captioned(model, png):
    images = _encoded(png)
    out = model.signatures["caption"](
        images=tf.constant([png, images["grey"], images["rgba"], images["big"]])
    )
    assert out["captions"].shape == (4,)
    rgb = model.signatures["caption"](images=tf.constant([png]))["captions"].numpy()[0]
    assert out["captions"].numpy()[2] == rgb  # alpha dropped: the same picture


@pytest.mark.parametrize(
    "bad, message",
    [(b"", "not a PNG, JPEG"), (b"hello", "not a PNG, JPEG"), ("truncated", "PNG"),
     ("huge", "more than")],
)  # fmt: skip
def test_bad_bytes_fail_the_request_naming_the_row(model, png, bad, message):
    if bad == "truncated":
        bad = png[: len(png) // 2]
    if bad == "huge":  # a header claiming 100000 x 100000 pixels
        bad = png[:16] + (100000).to_bytes(4, "big") * 2 + png[24:]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.signatures["caption"](images=tf.constant([png, bad]))


def test_empty_batch(model):
    out = model.signatures["caption"](images=tf.constant([], tf.string))
    assert out["captions"].shape == (0,) and out["attention"].shape[0] == 0
