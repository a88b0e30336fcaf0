import os
import urllib.error

import h5py
import keras
import numpy as np
import pytest
from keras.src.backend import config as keras_config
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils

from zoo.models.cnn_encoder import (
    APPLICATIONS,
    BACKBONES,
    LAST_BLOCK,
    CNNEncoder,
    adaptive_average_pool,
)
from zoo.models.learning_rate_multipliers import LearningRateMultipliers

GRID = 3
CHANNELS = {
    "small": 128,
    "mobilenet_v3_small": 576,
    "mobilenet_v3_large": 960,
    "resnet50": 2048,
    "inception_v3": 2048,
    "efficientnet_b0": 1280,
    "efficientnet_lite0": 1280,
    "efficientnet_lite1": 1280,
    "efficientnet_lite2": 1280,
}


def _images(batch, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _pool_reference(x, grid):
    """PyTorch AdaptiveAvgPool2d rule, written with loops."""
    _, h, w, _ = x.shape
    out = np.zeros((x.shape[0], grid, grid, x.shape[-1]), x.dtype)
    for i in range(grid):
        r0, r1 = (i * h) // grid, -((-(i + 1) * h) // grid)
        for j in range(grid):
            c0, c1 = (j * w) // grid, -((-(j + 1) * w) // grid)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


@pytest.fixture(scope="module")
def fine_tuned():
    """One encoder per backbone (random weights, last block trainable), built once per module."""
    cache = {}

    def get(backbone):
        if backbone not in cache:
            encoder = CNNEncoder(backbone, grid_size=GRID, fine_tune_from=LAST_BLOCK[backbone])
            encoder.build((None, None, None, 3))
            cache[backbone] = encoder
        return cache[backbone]

    return get


@pytest.mark.parametrize("size,grid", [(7, 3), (6, 3), (12, 6), (2, 3), (1, 4), (5, 5)])
def test_adaptive_average_pool_matches_reference(size, grid):
    x = np.random.default_rng(0).normal(size=(2, size, size + 3, 4)).astype("float32")
    np.testing.assert_allclose(
        adaptive_average_pool(x, grid), _pool_reference(x, grid), rtol=1e-5, atol=1e-6
    )


def test_adaptive_average_pool_handles_sizes_known_only_at_run_time():
    pool = keras.layers.Lambda(lambda x: adaptive_average_pool(x, 3))
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, pool(inputs))
    for h, w in [(9, 4), (2, 7)]:
        x = np.random.default_rng(h).normal(size=(1, h, w, 2)).astype("float32")
        np.testing.assert_allclose(
            model.predict(x, verbose=0), _pool_reference(x, 3), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize(
    "backbone,family",
    [
        ("mobilenet_v3_small", "mobilenet_v3"),
        ("mobilenet_v3_large", "mobilenet_v3"),
        ("resnet50", "resnet50"),
        ("inception_v3", "inception_v3"),
        ("efficientnet_b0", "efficientnet"),
    ],
)
def test_preprocessing_matches_keras_preprocess_input(backbone, family):
    images = _images(2, 8)
    expected = getattr(keras.applications, family).preprocess_input(images.copy())
    np.testing.assert_allclose(CNNEncoder(backbone).preprocess(images), expected, rtol=1e-6)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_grid_of_annotations_for_two_resolutions(backbone, fine_tuned):
    encoder = fine_tuned(backbone)
    assert encoder.output_dim == CHANNELS[backbone]
    for size in (96, 160):
        annotations = encoder(_images(1, size))
        assert annotations.shape == (1, GRID * GRID, CHANNELS[backbone])
        assert np.all(np.isfinite(annotations))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_fine_tune_from_trains_only_the_named_layer_and_later_ones(backbone, fine_tuned):
    encoder = fine_tuned(backbone)
    layers = encoder.backbone.layers
    start = [layer.name for layer in layers].index(LAST_BLOCK[backbone])
    expected = {layer.name for layer in layers[start:] if any(v.trainable for v in layer.weights)}
    trained = {layer.name for layer in layers if layer.trainable_weights}
    assert expected and trained == expected
    assert len(encoder.trainable_weights) == len(encoder.backbone.trainable_weights)
    assert len(encoder.backbone.trainable_weights) < len(encoder.backbone.weights) // 2


@pytest.mark.parametrize("backbone", ["small", "mobilenet_v3_small"])
def test_frozen_backbone_has_no_trainable_weights_and_fixed_statistics(backbone):
    encoder = CNNEncoder(backbone, grid_size=2, fine_tune_from=None, projection_dim=5)
    images = _images(2, 64)
    before = encoder(images, training=False)
    assert encoder.backbone.trainable_weights == []
    assert [v.path for v in encoder.trainable_weights] == [
        v.path for v in encoder.projection.trainable_weights
    ]
    statistics = [v.numpy().copy() for v in encoder.backbone.non_trainable_weights]
    np.testing.assert_allclose(encoder(images, training=True), before, rtol=1e-5, atol=1e-5)
    for old, variable in zip(statistics, encoder.backbone.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())
    assert encoder.learning_rate_multipliers() == {}


def test_auto_trains_a_random_backbone_and_freezes_a_pretrained_one(tmp_path):
    scratch = CNNEncoder("small", grid_size=2)
    scratch.build((None, 32, 32, 3))
    assert len(scratch.trainable_weights) == len(scratch.backbone.weights) - 8  # 4 BN x 2 stats
    path = str(tmp_path / "small.weights.h5")
    scratch.backbone.save_weights(path)
    pretrained = CNNEncoder("small", grid_size=2, weights=path)
    pretrained.build((None, 32, 32, 3))
    assert pretrained.trainable_weights == []


def test_fine_tuned_pretrained_backbone_keeps_batch_norm_in_inference_mode(tmp_path):
    source = CNNEncoder("small", grid_size=2)
    source.build((None, None, None, 3))
    path = str(tmp_path / "small.weights.h5")
    source.backbone.save_weights(path)
    encoder = CNNEncoder(
        "small", grid_size=2, weights=path, fine_tune_from="block3_conv", projection_dim=4
    )
    inputs = keras.Input((48, 48, 3))
    model = keras.Model(inputs, encoder(inputs))
    backbone = encoder.backbone
    trained = {layer.name for layer in backbone.layers if layer.trainable_weights}
    assert trained == {"block3_conv", "block4_conv"}, "BatchNorm stays frozen when pretrained"
    bn = [v.numpy().copy() for v in backbone.get_layer("block4_bn").weights]
    kernel = backbone.get_layer("block4_conv").kernel.numpy().copy()
    early = backbone.get_layer("block1_conv").kernel.numpy().copy()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(_images(4, 48), np.ones((4, 4, 4)), epochs=1, verbose=0)
    for old, variable in zip(bn, backbone.get_layer("block4_bn").weights, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())
    assert not np.allclose(kernel, backbone.get_layer("block4_conv").kernel.numpy())
    np.testing.assert_array_equal(early, backbone.get_layer("block1_conv").kernel.numpy())


def test_learning_rate_multipliers_name_the_trainable_backbone_variables_only():
    encoder = CNNEncoder(
        "small", grid_size=2, fine_tune_from="block4_conv", projection_dim=3,
        learning_rate_multiplier=0.1,
    )  # fmt: skip
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, encoder(inputs))
    multipliers = encoder.learning_rate_multipliers()
    optimizer = LearningRateMultipliers("adam", multipliers)
    optimizer.build(model.trainable_variables)
    scaled = [v.path for v in model.trainable_variables if optimizer.multiplier_of(v.path) != 1]
    assert scaled == [v.path for v in encoder.backbone.trainable_variables]
    assert len(scaled) == 3 and set(multipliers.values()) == {0.1}  # conv kernel, BN gamma + beta
    # Paths start with the enclosing models' scopes, which depend on how they were built.
    assert optimizer.multiplier_of(f"captioner/{scaled[0]}") == 0.1
    assert optimizer.multiplier_of(f"captioner/not_{scaled[0]}") == 1.0


@keras.saving.register_keras_serializable(package="zoo_tests")
class _Captioner(keras.Model):
    """A subclassed model around the encoder, as the captioning task builds one."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = encoder
        self.head = keras.layers.Dense(2, name="head")

    def build(self, images_shape):
        self.encoder.build(images_shape)
        self.head.build((None, None, self.encoder.output_dim))

    def build_from_config(self, config):
        self.build(config["input_shape"])

    def call(self, images):
        return self.head(self.encoder(images))

    def get_config(self):
        encoder = keras.saving.serialize_keras_object(self.encoder)
        return {**super().get_config(), "encoder": encoder}


def test_nested_in_a_subclassed_model_reloads_with_its_multipliers(tmp_path):
    encoder = CNNEncoder(
        "small", grid_size=2, fine_tune_from="block4_conv", learning_rate_multiplier=0.1
    )
    model = _Captioner(encoder, name="captioner")
    model.build((None, 32, 32, 3))
    optimizer = LearningRateMultipliers("adam", encoder.learning_rate_multipliers())
    model.compile(optimizer=optimizer, loss="mse")
    images = _images(2, 32)
    model.fit(images, np.zeros((2, 4, 2)), verbose=0)
    path = tmp_path / "captioner.keras"
    model.save(path)
    # The encoder is built from its own build config first, out of the captioner's scope:
    # its variable paths lose the "captioner/" prefix.
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(images), model(images), rtol=1e-5, atol=1e-6)
    scaled = [
        v.path
        for v in reloaded.trainable_variables
        if reloaded.optimizer.multiplier_of(v.path) != 1
    ]
    assert scaled == [v.path for v in reloaded.encoder.backbone.trainable_variables]
    assert len(scaled) == 3
    for a, b in zip(optimizer.variables, reloaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_config_round_trip():
    encoder = CNNEncoder(
        "resnet50", grid_size=5, weights="imagenet", fine_tune_from="conv5_block1_1_conv",
        learning_rate_multiplier=0.1, projection_dim=32, dropout=0.2, name="encoder",
    )  # fmt: skip
    config = encoder.get_config()
    assert config["weights"] == "imagenet" and config["backbone"] == "resnet50"
    assert CNNEncoder.from_config(config).get_config() == config


def test_coordinates_append_each_cells_row_and_column():
    plain = CNNEncoder("small", grid_size=3, name="plain")
    with_coordinates = CNNEncoder("small", grid_size=3, coordinates=True, name="coords")
    images = _images(2, 48)
    plain.build(images.shape)
    with_coordinates.build(images.shape)
    with_coordinates.set_weights(plain.get_weights())
    out = np.asarray(with_coordinates(images))
    assert out.shape == (2, 9, 130) and with_coordinates.output_dim == 130
    np.testing.assert_allclose(out[:, :, :128], np.asarray(plain(images)), rtol=1e-6)
    # Cell i * 3 + j is in row i and column j, mapped onto [-1, 1].
    expected = [(r, c) for r in (-1.0, 0.0, 1.0) for c in (-1.0, 0.0, 1.0)]
    np.testing.assert_array_equal(out[0, :, 128:], expected)
    np.testing.assert_array_equal(out[1, :, 128:], expected)
    single = CNNEncoder("small", grid_size=1, coordinates=True)
    np.testing.assert_array_equal(np.asarray(single(images))[:, :, 128:], 0.0)
    projected = CNNEncoder("small", grid_size=3, coordinates=True, projection_dim=5)
    assert np.asarray(projected(images)).shape == (2, 9, 5)
    assert projected.projection.kernel.shape == (130, 5)  # the coordinates are projected too
    config = with_coordinates.get_config()
    assert config["coordinates"] is True
    assert CNNEncoder.from_config(config).get_config() == config


def test_missing_weights_file_names_it_and_the_remedy(tmp_path):
    encoder = CNNEncoder("small", grid_size=2, weights="~/no/such/small.weights.h5")
    with pytest.raises(FileNotFoundError, match=r"small\.weights\.h5.*model\.encoder\.weights"):
        encoder.build((None, None, None, 3))


def test_from_config_does_not_fetch_pretrained_weights(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("from_config must not download")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    config = CNNEncoder("mobilenet_v3_small", grid_size=2, weights="imagenet").get_config()
    encoder = CNNEncoder.from_config(config)
    encoder.build((None, 64, 64, 3))
    assert encoder.get_config() == config


@pytest.mark.parametrize("backbone", ["small", "mobilenet_v3_small"])
def test_keras_file_round_trip_keeps_outputs(backbone, tmp_path):
    encoder = CNNEncoder(
        backbone, grid_size=2, projection_dim=6, dropout=0.1, fine_tune_from=LAST_BLOCK[backbone]
    )
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, encoder(inputs))
    images = _images(2, 64)
    if backbone == "small":  # tracing a fit step of MobileNet costs tens of seconds here
        model.compile(optimizer="adam", loss="mse")
        model.fit(images, np.ones((2, 4, 6)), epochs=1, verbose=0)
    path = tmp_path / "encoder.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(images), model(images), rtol=1e-5, atol=1e-5)
    assert reloaded.layers[-1].get_config() == encoder.get_config()
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)


@pytest.mark.parametrize(
    "backbone",
    # Building the larger networks takes seconds each: the default run checks one.
    [
        b if b == "mobilenet_v3_small" else pytest.param(b, marks=pytest.mark.slow)
        for b in APPLICATIONS
    ],
)
def test_offline_imagenet_names_the_file_to_provide(backbone, tmp_path, monkeypatch):
    requested = []

    def offline(url, target, *args, **kwargs):
        requested.append(os.path.basename(target))
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    # An empty cache, and no network: exactly what an offline machine does.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    encoder = CNNEncoder(backbone, weights="imagenet")
    with pytest.raises(OSError) as error:
        encoder.build((None, 96, 96, 3))
    file_name = APPLICATIONS[backbone][1]
    assert requested == [file_name], "the file named must be the one Keras asks for"
    message = str(error.value)
    assert file_name in message and "Temporary failure in name resolution" in message
    if backbone != "efficientnet_b0":
        assert f"model.encoder.weights=/path/to/{file_name}" in message


def test_efficientnet_imagenet_matches_keras_and_reloads_offline(tmp_path, monkeypatch):
    # A stand-in for efficientnetb0_notop.h5, with ImageNet-like input statistics.
    source = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    (normalization,) = [
        layer for layer in source.layers if isinstance(layer, keras.layers.Normalization)
    ]
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign([0.229**2, 0.224**2, 0.225**2])
    cached = str(tmp_path / "efficientnetb0_notop.h5")
    with h5py.File(cached, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: cached)
    reference = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=(None, None, 3)
    )
    encoder = CNNEncoder("efficientnet_b0", grid_size=2, weights="imagenet")
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, encoder(inputs))
    images = _images(2, 64)
    expected = np.reshape(adaptive_average_pool(reference(images), 2), (2, 4, 1280))
    np.testing.assert_allclose(model(images), expected, rtol=1e-5, atol=1e-5)

    def offline(*args, **kwargs):
        raise AssertionError("loading a saved model must not fetch weights")

    monkeypatch.setattr(file_utils, "get_file", offline)
    path = tmp_path / "encoder.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(images), expected, rtol=1e-5, atol=1e-5)


def test_local_weights_file_is_loaded(tmp_path):
    source = CNNEncoder("small", grid_size=2)
    source.build((None, None, None, 3))
    path = str(tmp_path / "small.weights.h5")
    source.backbone.save_weights(path)
    encoder = CNNEncoder("small", grid_size=2, weights=path)
    encoder.build((None, None, None, 3))
    for a, b in zip(source.backbone.weights, encoder.backbone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_legacy_h5_file_like_the_keras_imagenet_ones_is_loaded(tmp_path):
    source = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    path = str(tmp_path / "mobilenet_notop.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    encoder = CNNEncoder("mobilenet_v3_small", grid_size=2, weights=path)
    encoder.build((None, None, None, 3))
    # Unseeded initialisers draw new kernels for every network: equal means loaded.
    for a, b in zip(source.weights, encoder.backbone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert encoder.trainable_weights == []


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on the wrong file
def test_bad_arguments_are_reported(tmp_path):
    with pytest.raises(ValueError, match="backbone"):
        CNNEncoder("vgg16")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        CNNEncoder("small", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        CNNEncoder("small", weights=tmp_path / "missing.weights.h5").build((None, 32, 32, 3))
    with pytest.raises(ValueError, match="fine_tune_from='block9_conv'"):
        CNNEncoder("small", fine_tune_from="block9_conv").build((None, 32, 32, 3))
    with pytest.raises(ValueError, match="at least 75x75"):
        CNNEncoder("inception_v3").build((None, 64, 64, 3))
    wrong = tmp_path / "wrong.weights.h5"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save_weights(wrong)
    with pytest.raises(ValueError, match="Could not load"):
        CNNEncoder("small", weights=str(wrong)).build((None, 32, 32, 3))
