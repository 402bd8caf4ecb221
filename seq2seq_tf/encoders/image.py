"""Image encoders: each turns a batch of images (or their features) into a `Memory`.

    SmallCNN             a CNN trained from scratch: blocks of 3x3 convolutions and 2x2
                         max pooling, `[B, S, S, 3]` -> an `S/2^blocks` square grid
    PrecomputedFeatures  features computed elsewhere (`.npy`): one vector per image (a
                         memory of one position, the cs231n setting) or a grid
    Backbone             a `keras.applications` network by name, without its top;
                         `weights="imagenet"` downloads them (needs internet), None
                         starts from random weights

A grid of H x W x C becomes a memory of H*W positions (row after row), all real
(mask True). `grid` is (H, W), which the attention maps are reshaped to. With
`position_channels` two channels (x and y in [-1, 1]) are appended to every grid
cell, so the attention context says where it looked (the relation words need it).
"""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_tf.layers.memory import Memory

ENCODERS = ("cnn", "features", "backbone")
# keras.applications.imagenet_utils.preprocess_input mode of each family (default "tf").
_PREPROCESS = {"ResNet50": "caffe", "ResNet101": "caffe", "ResNet152": "caffe",
               "VGG16": "caffe", "VGG19": "caffe", "DenseNet121": "torch",
               "DenseNet169": "torch", "DenseNet201": "torch"}  # fmt: skip


def _grid_memory(grid, position_channels: bool) -> Memory:
    """`[B, H, W, C]` -> Memory `[B, H*W, C (+2)]`, every position real."""
    shape = ops.shape(grid)
    batch, height, width = shape[0], shape[1], shape[2]
    if position_channels:
        ys = ops.linspace(-1.0, 1.0, height)
        xs = ops.linspace(-1.0, 1.0, width)
        yy, xx = ops.meshgrid(ys, xs, indexing="ij")
        coords = ops.cast(ops.stack([xx, yy], axis=-1)[None], grid.dtype)  # 1 x H x W x 2
        coords = ops.broadcast_to(coords, (batch, height, width, 2))
        grid = ops.concatenate([grid, coords], axis=-1)
    values = ops.reshape(grid, (batch, height * width, ops.shape(grid)[-1]))
    return Memory(values, ops.ones((batch, height * width), dtype="bool"))


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class SmallCNN(keras.layers.Layer):
    """A CNN trained from scratch: per entry of `filters` a block of `convs_per_block`
    k x k ReLU convolutions (k from `kernel_sizes`) and a 2x2 max pool.

    The kernels set how much of the picture one grid cell sees (`receptive_field`):
    3, 3, 3 gives 22 pixels for a cell of 8, so the cells beside an object see it
    too; a 1 in the last block gives 14, so the cells that see an object are about
    the ones it covers and the attention has to land on it to read it.

    Args:
        image_size: side S of the square input images.
        filters: channels of each block; the grid side is S / 2^len(filters).
        convs_per_block: convolutions before each pool.
        kernel_sizes: the convolutions' odd kernel side per block (None: 3 each).
        position_channels: append x, y coordinates to the grid (see the module docstring).

    Call arguments:
        images: `[batch, S, S, 3]` float in [0, 1].

    Returns:
        Memory `[batch, H*W, filters[-1] (+2)]`.
    """

    def __init__(
        self,
        image_size: int,
        filters=(32, 64, 128),
        convs_per_block: int = 1,
        position_channels: bool = True,
        kernel_sizes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.filters = tuple(int(f) for f in filters)
        self.convs_per_block = int(convs_per_block)
        sizes = (3,) * len(self.filters) if kernel_sizes is None else kernel_sizes
        self.kernel_sizes = tuple(int(k) for k in sizes)
        if len(self.kernel_sizes) != len(self.filters) or any(
            k < 1 or k % 2 == 0 for k in self.kernel_sizes
        ):
            raise ValueError(
                f"kernel sizes {self.kernel_sizes}: need one odd size per block "
                f"({len(self.filters)})"
            )
        self.position_channels = bool(position_channels)
        if self.image_size % (2 ** len(self.filters)):
            raise ValueError(
                f"image size {image_size} is not divisible by 2^{len(self.filters)} (blocks)"
            )
        self.convs = []
        for b, width in enumerate(self.filters):
            for c in range(self.convs_per_block):
                conv = keras.layers.Conv2D(
                    width,
                    self.kernel_sizes[b],
                    padding="same",
                    activation="relu",
                    name=f"conv{b}_{c}",
                )
                setattr(self, f"conv{b}_{c}", conv)  # tracked by checkpoints by name
                self.convs.append(conv)
        self.pool = keras.layers.MaxPooling2D(2)
        self.output_dim = self.filters[-1] + (2 if self.position_channels else 0)

    @property
    def grid(self) -> tuple[int, int]:
        side = self.image_size // 2 ** len(self.filters)
        return side, side

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the square one grid cell's feature depends on."""
        side, stride = 1, 1
        for k in self.kernel_sizes:
            side += self.convs_per_block * (k - 1) * stride  # the block's convolutions
            side += stride  # its 2x2 pool
            stride *= 2
        return side

    def build(self, input_shape=None):
        shape = (None, self.image_size, self.image_size, 3)
        for b in range(len(self.filters)):
            for c in range(self.convs_per_block):
                conv = getattr(self, f"conv{b}_{c}")
                conv.build(shape)
                shape = (*shape[:3], conv.filters)
            shape = (None, shape[1] // 2, shape[2] // 2, shape[3])
        self.built = True

    def call(self, images, training=None):
        x = ops.cast(images, self.compute_dtype)
        for b in range(len(self.filters)):
            for c in range(self.convs_per_block):
                x = getattr(self, f"conv{b}_{c}")(x)
            x = self.pool(x)
        return _grid_memory(x, self.position_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "filters": self.filters,
            "convs_per_block": self.convs_per_block,
            "position_channels": self.position_channels,
            "kernel_sizes": self.kernel_sizes,
        }


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class PrecomputedFeatures(keras.layers.Layer):
    """Features computed elsewhere: `[batch, dim]` (one position) or `[batch, H, W, dim]`.

    Args:
        feature_shape: one image's features, `(dim,)` or `(H, W, dim)`.
        position_channels: append coordinates to a grid (as SmallCNN).
    """

    def __init__(self, feature_shape, position_channels: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.feature_shape = tuple(int(d) for d in feature_shape)
        if len(self.feature_shape) not in (1, 3):
            raise ValueError(f"features are [dim] or [H, W, dim], got {self.feature_shape}")
        self.position_channels = bool(position_channels) and len(self.feature_shape) == 3
        self.output_dim = self.feature_shape[-1] + (2 if self.position_channels else 0)

    @property
    def grid(self) -> tuple[int, int]:
        return (1, 1) if len(self.feature_shape) == 1 else self.feature_shape[:2]

    def build(self, input_shape=None):
        self.built = True

    def call(self, features, training=None):
        features = ops.cast(features, self.compute_dtype)
        if len(self.feature_shape) == 1:
            batch = ops.shape(features)[0]
            return Memory(features[:, None, :], ops.ones((batch, 1), dtype="bool"))
        return _grid_memory(features, self.position_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "feature_shape": self.feature_shape,
            "position_channels": self.position_channels,
        }


@keras.saving.register_keras_serializable(package="seq2seq_tf")
class Backbone(keras.layers.Layer):
    """A `keras.applications` network (e.g. "MobileNetV2", "ResNet50") without its top.

    Args:
        name_in_keras: the constructor's name in `keras.applications`.
        image_size: side of the square input images.
        weights: None (random) or "imagenet" (downloaded by Keras: needs internet).
        trainable_backbone: fine-tune it (False: frozen, a feature extractor).
        position_channels: append coordinates to the grid.

    Call arguments:
        images: `[batch, S, S, 3]` float in [0, 1]; scaled as the family expects.
    """

    def __init__(
        self,
        name_in_keras: str,
        image_size: int,
        weights: str | None = None,
        trainable_backbone: bool = False,
        position_channels: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        constructor = getattr(keras.applications, name_in_keras, None)
        if constructor is None:
            raise ValueError(f"keras.applications has no {name_in_keras!r}")
        self.name_in_keras = name_in_keras
        self.image_size = int(image_size)
        self.pretrained = weights or None
        self.trainable_backbone = bool(trainable_backbone)
        self.position_channels = bool(position_channels)
        self.network = constructor(
            include_top=False,
            weights=self.pretrained,
            input_shape=(self.image_size, self.image_size, 3),
        )
        self.network.trainable = self.trainable_backbone
        out = self.network.output_shape
        self._grid = (int(out[1]), int(out[2]))
        self.output_dim = int(out[3]) + (2 if self.position_channels else 0)
        self.mode = _PREPROCESS.get(name_in_keras, "tf")

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    def build(self, input_shape=None):
        self.built = True

    def call(self, images, training=None):
        x = keras.applications.imagenet_utils.preprocess_input(
            ops.cast(images, "float32") * 255.0, mode=self.mode
        )
        grid = self.network(x, training=bool(training) and self.trainable_backbone)
        return _grid_memory(ops.cast(grid, self.compute_dtype), self.position_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "name_in_keras": self.name_in_keras,
            "image_size": self.image_size,
            "weights": self.pretrained,
            "trainable_backbone": self.trainable_backbone,
            "position_channels": self.position_channels,
        }
