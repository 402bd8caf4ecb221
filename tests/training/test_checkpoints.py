"""Checkpoint averaging: the averaged weights are the mean of the last checkpoints."""

import os

import numpy as np
from support import tiny_config

from seq2seq_tf import average_checkpoints, export, train


def test_averaged_weights_equal_the_mean_of_the_last_checkpoints(toy_data, tmp_path):
    config = tiny_config(toy_data, num_steps=30, checkpoint_every=10)
    train.train_and_evaluate(config, str(tmp_path))
    paths = average_checkpoints.last_checkpoints(str(tmp_path), 2)
    assert [p.rsplit("-", 1)[-1] for p in paths] == ["20", "30"]
    averaged = average_checkpoints.average_checkpoints(str(tmp_path), 2)
    assert averaged == os.path.join(str(tmp_path), "averaged", "averaged-30")

    # Training checkpoints name variables by their first path (often through the
    # optimizer), so weights are compared through restored models, not by key.
    def weights(path):
        model, _ = export.restore_model(str(tmp_path), path)
        return [w.numpy() for w in model.weights]

    runs = [weights(p) for p in paths]
    result = weights(averaged)
    assert len(result) > 10
    assert any(not np.allclose(a, b) for a, b in zip(*runs))  # the two really differ
    for got, *each in zip(result, *runs):
        np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-6, atol=1e-7)
    # Export takes it like any checkpoint.
    path = export.export(str(tmp_path), str(tmp_path / "export"), checkpoint=averaged)
    assert path.endswith("/30")
