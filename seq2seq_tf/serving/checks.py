"""What every serving module checks of its raw input before tokenizing it."""

from __future__ import annotations

import tensorflow as tf


def check_utf8(strings, name: str):
    """An InvalidArgumentError listing the rows of `strings` [batch] that are not UTF-8."""
    repaired = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace")
    valid = tf.equal(repaired, strings)
    bad_rows = tf.where(~valid)[:, 0]
    return tf.debugging.Assert(
        tf.reduce_all(valid), [f"{name}: not valid UTF-8 at rows", bad_rows], summarize=10
    )
