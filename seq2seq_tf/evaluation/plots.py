"""Pictures a person would rather look at than read: attention heatmaps, and a caption's
attention laid over its image (the Show, Attend and Tell figure)."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")  # files only; no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def alignment_figure(source: list[str], target: list[str], weights):
    """A matplotlib figure of one attention matrix (target pieces x source pieces)."""
    figure, axes = plt.subplots(figsize=(1 + 0.4 * len(source), 1 + 0.4 * max(len(target), 1)))
    axes.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source)), source, rotation=90)
    axes.set_yticks(range(len(target)), target)
    axes.set_xlabel("source pieces")
    axes.set_ylabel("target pieces")
    figure.tight_layout()
    return figure


def plot_alignments(model, lines: list[str], out_dir: str, batch_size: int = 32) -> int:
    """Writes out_dir/NNNNN.png: attention heatmap of each sentence (target x source pieces).

    `model`: a loaded SavedModel (or anything with an `align` signature in `.signatures`).
    """
    os.makedirs(out_dir, exist_ok=True)
    align = model.signatures["align"]
    written = 0
    for first in range(0, len(lines), batch_size):
        result = align(inputs=tf.constant(lines[first : first + batch_size]))
        sources = result["source_pieces"].numpy()
        targets = result["target_pieces"].numpy()
        weights = result["alignments"].numpy()
        for row in range(len(sources)):
            src = [p.decode("utf-8") for p in sources[row] if p]
            tgt = [p.decode("utf-8") for p in targets[row] if p]
            figure = alignment_figure(src, tgt, weights[row, : len(tgt), : len(src)])
            figure.savefig(os.path.join(out_dir, f"{first + row:05d}.png"), dpi=80)
            plt.close(figure)
            written += 1
    return written


def alignment_png(source: list[str], target: list[str], weights) -> bytes:
    """One attention heatmap as PNG bytes (for TensorBoard)."""
    figure = alignment_figure(source, target, weights)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def attention_overlay_figure(image_bytes: bytes, words: list[str], maps, columns: int = 5):
    """The image, then one panel per word with its attention map `[steps, H, W]` upsampled
    (bilinear) over the image; `words` label the panels."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False).numpy()
    height, width = image.shape[:2]
    panels = len(words) + 1
    rows = (panels + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("image", fontsize=9)
    for k, word in enumerate(words):
        weights = np.asarray(maps[k], np.float32)[..., None]
        up = tf.image.resize(weights, [height, width], method="bilinear").numpy()[..., 0]
        ax = axes.flat[k + 1]
        ax.imshow(image)
        ax.imshow(up, cmap="gray", alpha=0.6, vmin=0.0, vmax=max(float(up.max()), 1e-6))
        ax.set_title(word, fontsize=9)
    figure.tight_layout()
    return figure


def attention_overlay_png(image_bytes: bytes, words: list[str], maps) -> bytes:
    """`attention_overlay_figure` as PNG bytes (the caption CLI's files, TensorBoard)."""
    figure = attention_overlay_figure(image_bytes, words, maps)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72)
    plt.close(figure)
    return buffer.getvalue()
