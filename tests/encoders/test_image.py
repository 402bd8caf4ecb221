"""Image encoders: the memory's shape and mask, coordinates, features, a backbone."""

from __future__ import annotations

import numpy as np
import pytest

from seq2seq_tf.encoders.image import Backbone, PrecomputedFeatures, SmallCNN


def test_cnn_memory_shape_mask_and_coordinates():
    cnn = SmallCNN(32, (4, 6), position_channels=True)
    cnn.build()
    memory = cnn(np.random.rand(3, 32, 32, 3).astype("float32"))
    assert cnn.grid == (8, 8)
    assert tuple(memory.values.shape) == (3, 64, 8) and cnn.output_dim == 8
    assert memory.mask.numpy().all() and tuple(memory.mask.shape) == (3, 64)
    coords = memory.values.numpy()[0, :, 6:].reshape(8, 8, 2)  # x, y per cell, row-major
    np.testing.assert_allclose(coords[0, :, 0], np.linspace(-1, 1, 8), atol=1e-6)
    np.testing.assert_allclose(coords[:, 0, 1], np.linspace(-1, 1, 8), atol=1e-6)


def test_cnn_grid_is_the_conv_output_row_major():
    cnn = SmallCNN(16, (5,), position_channels=False)
    cnn.build()
    images = np.random.rand(2, 16, 16, 3).astype("float32")
    x = cnn.conv0_0(images).numpy()  # NumPy 2x2 max pool of the convolution
    pooled = x.reshape(2, 8, 2, 8, 2, 5).max(axis=(2, 4))
    np.testing.assert_allclose(cnn(images).values.numpy(), pooled.reshape(2, 64, 5), atol=1e-6)


@pytest.mark.parametrize("kernel_sizes, field", [(None, 22), ((3, 3, 1), 14), ((5, 1, 1), 12)])
def test_cnn_cell_sees_exactly_its_receptive_field(kernel_sizes, field):
    """With positive kernels and zero biases a cell's feature is positive exactly when a
    single bright pixel lies in what the cell sees: probes along a row and a column."""
    cnn = SmallCNN(64, (2, 2, 2), position_channels=False, kernel_sizes=kernel_sizes)
    cnn.build()
    for conv in cnn.convs:
        conv.kernel.assign(np.ones(conv.kernel.shape, "float32"))
    assert cnn.receptive_field == field
    margin = (field - 8) // 2  # on each side of the cell's own 8 x 8 pixels
    row, col = 3, 4  # the cell
    seen = np.arange(64)
    expected = seen[(seen >= 8 * col - margin) & (seen <= 8 * col + 7 + margin)]
    probes = np.zeros((64, 64, 64, 3), "float32")
    probes[seen, 8 * row + 3, seen] = 1.0  # probe i at x = i on one row of the cell
    along_row = cnn(probes).values.numpy()[:, row * 8 + col, 0] > 0
    np.testing.assert_array_equal(seen[along_row], expected)
    probes = np.zeros((64, 64, 64, 3), "float32")
    probes[seen, seen, 8 * col + 5] = 1.0  # probe i at y = i on one column of the cell
    along_col = cnn(probes).values.numpy()[:, row * 8 + col, 0] > 0
    expected = seen[(seen >= 8 * row - margin) & (seen <= 8 * row + 7 + margin)]
    np.testing.assert_array_equal(seen[along_col], expected)


def test_cnn_refuses_even_kernels_or_a_wrong_count():
    with pytest.raises(ValueError, match="one odd size per block"):
        SmallCNN(32, (4, 4), kernel_sizes=(3, 2))
    with pytest.raises(ValueError, match="one odd size per block"):
        SmallCNN(32, (4, 4), kernel_sizes=(3,))


def test_cnn_refuses_an_indivisible_size():
    with pytest.raises(ValueError, match="not divisible"):
        SmallCNN(30, (4, 4))


def test_features_vector_and_grid():
    vec = PrecomputedFeatures((7,))
    memory = vec(np.ones((2, 7), "float32"))
    assert tuple(memory.values.shape) == (2, 1, 7) and vec.grid == (1, 1)
    grid = PrecomputedFeatures((3, 4, 5))
    memory = grid(np.arange(120, dtype="float32").reshape(2, 3, 4, 5))
    assert tuple(memory.values.shape) == (2, 12, 5) and grid.grid == (3, 4)
    np.testing.assert_array_equal(
        memory.values.numpy()[1, 5], np.arange(120).reshape(2, 12, 5)[1, 5]
    )


def test_backbone_by_name_without_weights():
    net = Backbone("MobileNetV2", 32, weights=None)
    memory = net(np.random.rand(1, 32, 32, 3).astype("float32"))
    assert net.grid == (1, 1) and tuple(memory.values.shape) == (1, 1, net.output_dim)
    with pytest.raises(ValueError, match="no 'NoSuchNet'"):
        Backbone("NoSuchNet", 32)
