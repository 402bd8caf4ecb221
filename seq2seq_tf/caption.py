"""Caption images with an exported captioner; needs only tensorflow (and matplotlib for
--plot_attention).

    python -m seq2seq_tf.caption --model_dir=exported/shapes img1.png img2.jpg \
        [--beam_width=5] [--plot_attention=DIR]

`--model_dir` may be a SavedModel or a TF Serving base path (the highest version).
Prints one line per image, `<file>\t<caption>`. `--beam_width` overrides the
export-time beam. `--plot_attention` writes DIR/<image name>.png per image: the
picture, then each word's attention laid over it (the Show, Attend and Tell figure).
"""

from __future__ import annotations

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import os  # noqa: E402
import sys  # noqa: E402

import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from seq2seq_tf.errors import MissingFileError, UserError  # noqa: E402
from seq2seq_tf.serving.client import resolve_saved_model  # noqa: E402


def load_captioner(model_dir: str):
    """The SavedModel of a captioner (it has a `caption` signature)."""
    try:  # a SentencePiece vocabulary's graph needs the tensorflow_text ops registered
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass
    model = tf.saved_model.load(resolve_saved_model(model_dir))
    if "caption_beam" not in model.signatures:
        raise UserError(
            f"{model_dir} has no `caption` signature (signatures: "
            f"{', '.join(sorted(model.signatures))}): is it a captioner's export?"
        )
    return model


def read_images(paths: list[str]) -> list[bytes]:
    """The bytes of each image file (a missing one is an error naming it)."""
    data = []
    for path in paths:
        if not tf.io.gfile.exists(path):
            raise MissingFileError(f"image not found: {path}")
        data.append(tf.io.gfile.GFile(path, "rb").read())
    return data


def caption(model, data: list[bytes], beam_width: int | None = None) -> dict:
    """Captions, tokens and attention maps of encoded images (one batch)."""
    images = tf.constant(data)
    try:
        if beam_width:
            out = model.signatures["caption_beam"](
                images=images, beam_width=tf.constant(beam_width, tf.int32)
            )
        else:
            out = model.signatures["caption"](images=images)
    except tf.errors.InvalidArgumentError as err:
        lines = [line for line in str(err).splitlines() if "images:" in line or "Invalid" in line]
        raise UserError(f"cannot caption: {(lines or [str(err)])[0].strip()[:200]}") from err
    tokens = [[t.decode("utf-8") for t in row if t] for row in out["tokens"].numpy()]
    return {
        "captions": [c.decode("utf-8") for c in out["captions"].numpy()],
        "tokens": tokens,
        "attention": [maps[: len(t)] for maps, t in zip(out["attention"].numpy(), tokens)],
    }


def main(argv):
    f = flags.FLAGS
    paths = argv[1:]
    if not paths:
        raise UserError("give one or more image files after the flags")
    if f.beam_width is not None and f.beam_width < 1:
        raise UserError(f"--beam_width must be >= 1, got {f.beam_width}")
    data = read_images(paths)
    model = load_captioner(f.model_dir)
    out = caption(model, data, f.beam_width)
    if f.plot_attention:
        from seq2seq_tf.evaluation import plots

        os.makedirs(f.plot_attention, exist_ok=True)
        for path, raw, words, maps in zip(paths, data, out["tokens"], out["attention"]):
            name = os.path.splitext(os.path.basename(path))[0] + ".png"
            with open(os.path.join(f.plot_attention, name), "wb") as handle:
                handle.write(plots.attention_overlay_png(raw, words, maps))
    for path, text in zip(paths, out["captions"]):
        sys.stdout.write(f"{path}\t{text}\n")
    sys.stdout.flush()


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base path.")
    flags.DEFINE_integer("beam_width", None, "Beam width (default: the export's).")
    flags.DEFINE_string("plot_attention", "", "Write each image's attention figure here.")
    flags.mark_flags_as_required(["model_dir"])
    cli.run(main, positional=True)


if __name__ == "__main__":
    run()
