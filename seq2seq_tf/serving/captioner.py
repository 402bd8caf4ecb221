"""The captioning serving module: image bytes -> decode/resize -> model -> search -> captions.

Everything runs in one graph; a SavedModel of it needs only `tensorflow` (and
`tensorflow_text` for a SentencePiece vocabulary).

Bad input gets a defined answer: an empty batch gives empty outputs; bytes that do
not start like a PNG, JPEG, GIF or BMP (an empty string, text) and images of more
than `MAX_PIXELS` pixels fail the request with an InvalidArgumentError naming the
rows; bytes that start like an image but do not decode (a truncated PNG) fail it
with TensorFlow's decoder message. Greyscale becomes RGB, alpha is dropped, and
any size is resized to the model's square input.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from seq2seq_tf import search
from seq2seq_tf.data import captions as caption_data
from seq2seq_tf.data import vocab
from seq2seq_tf.serving.translator import SearchDefaults, check_sampling_arguments

MAX_PIXELS = 40_000_000  # a 4000 x 4000 photo is 16 M; beyond this is refused, not decoded
_IDS = {"start_id": vocab.BOS_ID, "end_id": vocab.EOS_ID, "pad_id": vocab.PAD_ID}
_STRINGS = tf.TensorSpec([None], tf.string)
_INT = tf.TensorSpec([], tf.int32)
_FLOAT = tf.TensorSpec([], tf.float32)
SIGNATURES = {
    "serving_default": "caption",
    "caption": "caption",
    "caption_beam": "caption_beam",
    "caption_nbest": "caption_nbest",
    "sample": "sample",
}


def _uint(data, start: int, length: int, big_endian: bool):
    """The unsigned integer of `length` bytes at `start` of each string `[batch]`."""
    padded = tf.strings.substr(data + b"\x00" * (start + length), start, length)
    digits = tf.reshape(tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64), [-1, length])
    order = range(length) if big_endian else range(length - 1, -1, -1)
    value = tf.zeros_like(digits[:, 0])
    for i in order:
        value = value * 256 + digits[:, i]
    return value


def header_pixels(data):
    """Width x height from the header of each PNG, GIF or BMP `[batch]` (0 for others,
    JPEG included: its size sits after variable-length segments)."""
    png = _uint(data, 16, 4, True) * _uint(data, 20, 4, True)
    gif = _uint(data, 6, 2, False) * _uint(data, 8, 2, False)
    bmp = _uint(data, 18, 4, False) * _uint(data, 22, 4, False)
    kind = tf.strings.substr(data, 0, 2)
    return tf.where(
        tf.strings.substr(data, 0, 4) == b"\x89PNG", png, tf.where(
            kind == b"GI", gif, tf.where(kind == b"BM", bmp, tf.zeros_like(png))
        )
    )  # fmt: skip


def check_images(data):
    """Assertions that fail a request whose rows are not images or far too large."""
    data = data + b"\x00" * 4  # every row has the bytes substr reads
    head = tf.strings.substr(data, 0, 4)
    known = (
        (head == b"\x89PNG")
        | (tf.strings.substr(data, 0, 3) == b"\xff\xd8\xff")
        | (tf.strings.substr(data, 0, 3) == b"GIF")
        | (tf.strings.substr(data, 0, 2) == b"BM")
    )
    small = header_pixels(data) <= MAX_PIXELS
    return [
        tf.debugging.Assert(
            tf.reduce_all(known),
            ["images: not a PNG, JPEG, GIF or BMP image at rows", tf.where(~known)[:, 0]],
            summarize=10,
        ),
        tf.debugging.Assert(
            tf.reduce_all(small),
            [f"images: more than {MAX_PIXELS} pixels at rows", tf.where(~small)[:, 0]],
            summarize=10,
        ),
    ]


class CaptionServer(tf.Module):
    """Decoding + model + search, as one exportable module.

    Signatures (images: encoded bytes `[batch]`):
        caption(images) -> captions [batch], scores [batch], tokens [batch, steps]
            (the caption's tokens, "" after its end) and attention [batch, steps, H, W]
            (each token's weights over the grid; zeros without attention). Beam search
            of the export-time width (`SearchDefaults`; greedy at 1).
        caption_beam(images, beam_width) -> the same with another beam.
        caption_nbest(images, n, beam_width) -> captions [batch, n], scores [batch, n].
        sample(images, temperature, top_k, top_p, seed) -> captions, scores
            (log-probabilities of the samples; temperature 0 = greedy).

    Args:
        model: a `models.captioner.Captioner` with an image encoder.
        tokenizer: `data.captions.WordTokenizer` or a SentencePiece tokenizer.
        image_size: the model's input side.
        max_length: most tokens a caption gets (EOS included).
        defaults: export-time beam width and length penalty.
        spm_model_path: the SentencePiece model, kept as an asset (None for words).
    """

    def __init__(
        self,
        model: keras.Model,
        tokenizer,
        image_size: int,
        max_length: int,
        defaults: SearchDefaults | None = None,
        spm_model_path: str | None = None,
    ):
        super().__init__(name="captioner")
        self.model = model
        self.tokenizer = tokenizer
        if spm_model_path:
            self.spm_model = tf.saved_model.Asset(spm_model_path)
        self.image_size = int(image_size)
        self.max_length = int(max_length)
        self._defaults = defaults or SearchDefaults(beam_width=3)

    def decode_images(self, data):
        """Checked bytes `[batch]` -> `([max(batch, 1), S, S, 3]` float, batch)`; an empty
        batch gets one black image so the search has a row (outputs are cut to batch)."""
        with tf.control_dependencies(check_images(data)):
            batch = tf.size(data)
        blank = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8))
        data = tf.cond(batch > 0, lambda: data, lambda: blank[None])
        size = self.image_size
        spec = tf.TensorSpec([size, size, 3], tf.float32)
        pixels = tf.map_fn(
            lambda d: caption_data.decode_image(d, size), data, fn_output_signature=spec
        )
        return pixels, batch

    def _budget(self, state):
        batch = tf.shape(state["cells"][0][0])[0]
        return tf.fill([batch], self.max_length)

    def _texts(self, ids, lengths):
        """Ids `[batch, n, steps]`, lengths `[batch, n]` -> strings `[batch, n]`."""
        shape = tf.shape(lengths)
        flat = tf.reshape(ids, [shape[0] * shape[1], -1])
        ragged = tf.RaggedTensor.from_tensor(flat, lengths=tf.reshape(lengths, [-1]))
        return tf.reshape(self.tokenizer.detokenize(ragged), shape)

    def _with_attention(self, pixels, state, hyps, batch):
        """The best caption of each row with its tokens and attention maps."""
        ids, lengths = hyps.ids[:, 0], hyps.lengths[:, 0]
        steps = tf.shape(ids)[1]
        real = tf.sequence_mask(lengths, steps)
        target_in = tf.concat([tf.fill([tf.shape(ids)[0], 1], vocab.BOS_ID), ids[:, :-1]], 1)
        weights = self.model.alignments(state, target_in)  # batch x steps x H*W
        weights *= tf.cast(real, tf.float32)[:, :, None]
        height, width = self.model.grid
        maps = tf.reshape(weights, [-1, steps, height, width])
        tokens = tf.where(real, self.tokenizer.id_to_string(ids), "")
        return {
            "captions": self._texts(hyps.ids, hyps.lengths)[:batch, 0],
            "scores": hyps.scores[:batch, 0],
            "tokens": tokens[:batch],
            "attention": maps[:batch],
        }

    def _beam(self, data, beam_width, n_best):
        pixels, batch = self.decode_images(data)
        state = self.model.initial_state(pixels, training=False)
        hyps = search.beam_search(
            self.model.step,
            state,
            self._budget(state),
            beam_width,
            self._defaults.length_penalty,
            0.0,
            n_best=n_best,
            beam_invariant=self.model.beam_invariant,
            **_IDS,
        )
        return pixels, state, hyps, batch

    @tf.function(input_signature=[_STRINGS])
    def caption(self, images):
        pixels, state, hyps, batch = self._beam(images, self._defaults.beam_width, 1)
        return self._with_attention(pixels, state, hyps, batch)

    @tf.function(input_signature=[_STRINGS, _INT])
    def caption_beam(self, images, beam_width):
        check = tf.debugging.assert_greater_equal(
            beam_width, 1, message="caption_beam: beam_width must be >= 1"
        )
        with tf.control_dependencies([check]):
            images = tf.identity(images)
        pixels, state, hyps, batch = self._beam(images, beam_width, 1)
        return self._with_attention(pixels, state, hyps, batch)

    @tf.function(input_signature=[_STRINGS, _INT, _INT])
    def caption_nbest(self, images, n, beam_width):
        checks = [
            tf.debugging.assert_greater_equal(n, 1, message="caption_nbest: n must be >= 1"),
            tf.debugging.assert_greater_equal(
                beam_width, 1, message="caption_nbest: beam_width must be >= 1"
            ),
        ]
        with tf.control_dependencies(checks):
            images = tf.identity(images)
        _, _, hyps, batch = self._beam(images, tf.maximum(n, beam_width), n)
        return {
            "captions": self._texts(hyps.ids, hyps.lengths)[:batch],
            "scores": hyps.scores[:batch],
        }

    @tf.function(input_signature=[_STRINGS, _FLOAT, _INT, _FLOAT, _INT])
    def sample(self, images, temperature, top_k, top_p, seed):
        with tf.control_dependencies(check_sampling_arguments("sample", temperature, top_k, top_p)):
            images = tf.identity(images)
        pixels, batch = self.decode_images(images)
        state = self.model.initial_state(pixels, training=False)
        hyps = search.sample_search(
            self.model.step, state, self._budget(state), temperature, top_k, top_p, seed, **_IDS
        )
        texts = self._texts(hyps.ids, hyps.lengths)[:, 0]
        return {"captions": texts[:batch], "scores": hyps.log_probs[:batch, 0]}

    def signature_functions(self) -> dict:
        """Signature name -> tf.function (in-process use: dev evaluation, the benchmark)."""
        return {name: getattr(self, method) for name, method in SIGNATURES.items()}
