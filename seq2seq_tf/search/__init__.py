"""Search over a step function, in pure TensorFlow (exports into a SavedModel)."""

from seq2seq_tf.search.beam import beam_search
from seq2seq_tf.search.common import (
    Hypotheses,
    StepFn,
    coverage_penalty,
    length_penalty,
    max_target_lengths,
)
from seq2seq_tf.search.sampling import decode, greedy_search, sample_search

__all__ = [
    "Hypotheses",
    "StepFn",
    "beam_search",
    "coverage_penalty",
    "decode",
    "greedy_search",
    "length_penalty",
    "max_target_lengths",
    "sample_search",
]
