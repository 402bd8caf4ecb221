"""Checkpoint averaging: the averaged weights are the mean of the last checkpoints."""

import os

import numpy as np
import tensorflow as tf
from conftest import tiny_config

from seq2seq_tf import average_checkpoints, train


def test_averaged_weights_equal_the_mean_of_the_last_checkpoints(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=30, checkpoint_every=10)
    train.train_and_evaluate(config, str(tmp_path))
    paths = average_checkpoints.last_checkpoints(str(tmp_path), 2)
    assert [p.rsplit("-", 1)[-1] for p in paths] == ["20", "30"]
    averaged = average_checkpoints.average_checkpoints(str(tmp_path), 2)
    assert averaged == os.path.join(str(tmp_path), "averaged", "averaged-30")
    result = tf.train.load_checkpoint(averaged)
    readers = [tf.train.load_checkpoint(p) for p in paths]
    names = [n for n in result.get_variable_to_shape_map() if n.startswith("model/")]
    assert len(names) > 10
    for name in names:
        expected = np.mean([r.get_tensor(name) for r in readers], axis=0)
        np.testing.assert_allclose(result.get_tensor(name), expected, rtol=1e-6, atol=1e-7)
    # Export takes it like any checkpoint.
    from seq2seq_tf import export

    path = export.export(str(tmp_path), str(tmp_path / "export"), checkpoint=averaged)
    assert path.endswith("/30")
