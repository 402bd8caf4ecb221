"""evaluation.plots: attention heatmaps."""

import warnings

import numpy as np

from seq2seq_tf.evaluation import plots


def test_alignment_png_is_a_valid_png_of_the_matrix():
    import io

    import matplotlib.image

    weights = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    png = plots.alignment_png(["▁the", "▁dog", "</s>"], ["▁der", "▁Hund"], weights)
    assert isinstance(png, bytes) and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR" and png.rstrip(b"\x00")[-8:-4] == b"IEND"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10
    # An empty target (nothing translated) still gives a picture.
    with warnings.catch_warnings():  # matplotlib: "identical low and high ylims"
        warnings.simplefilter("ignore", UserWarning)
        empty = plots.alignment_png(["</s>"], [], np.zeros((0, 1)))
    assert empty[:8] == b"\x89PNG\r\n\x1a\n"
