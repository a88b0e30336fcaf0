import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, features

from zoo.data.images import (
    check_image_file,
    check_image_files,
    decode_image,
    decode_image_batch,
    image_dataset,
)


def encode(pixels: np.ndarray, fmt: str, mode: str | None = None, **options) -> bytes:
    """The pixels (uint8, converted to `mode` if given) as a file of format `fmt`."""
    image = Image.fromarray(np.asarray(pixels, np.uint8))
    buffer = io.BytesIO()
    (image if mode is None else image.convert(mode)).save(buffer, fmt, **options)
    return buffer.getvalue()


def solid(height: int, width: int, colour) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, len(colour))).copy()


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(noise(30, 40), "JPEG")


def test_png_rgba_is_composited_on_white():
    pixels = np.zeros((8, 12, 4), np.uint8)
    pixels[:, :4] = (255, 0, 0, 255)  # opaque red
    pixels[:, 4:8] = (0, 0, 0, 0)  # transparent black: the usual background
    pixels[:, 8:] = (0, 0, 255, 128)  # half-transparent blue
    image = decode_image(encode(pixels, "PNG", "RGBA"), 12).numpy()
    assert image.shape == (12, 12, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[6, 1], [255, 0, 0], atol=1e-3)
    np.testing.assert_allclose(image[6, 6], [255, 255, 255], atol=1e-3)
    np.testing.assert_allclose(image[6, 10], [127, 127, 255], atol=1)


def test_grayscale_jpeg_of_odd_size_becomes_square_rgb():
    grey = np.random.default_rng(1).integers(0, 256, (37, 91), np.uint8)
    image = decode_image(tf.constant(encode(grey, "JPEG", "L")), 16)
    assert image.shape == (16, 16, 3) and image.dtype == tf.float32
    pixels = image.numpy()
    assert pixels.min() >= 0 and pixels.max() <= 255
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])


@pytest.mark.parametrize(
    ("fmt", "atol"), [("PNG", 1e-3), ("BMP", 1e-3), ("GIF", 1e-3), ("JPEG", 3)]
)
def test_a_known_colour_keeps_its_colour(fmt, atol):
    colour = (200, 30, 90)
    image = decode_image(encode(solid(21, 34, colour), fmt), 10).numpy()
    assert image.shape == (10, 10, 3)
    np.testing.assert_allclose(image, np.broadcast_to(colour, image.shape), atol=atol)


def test_noise_stays_in_range(jpeg):
    image = decode_image(jpeg, 7).numpy()
    assert image.shape == (7, 7, 3) and 0 <= image.min() and image.max() <= 255


def test_gif_gives_its_first_frame():
    frames = [Image.fromarray(solid(10, 10, colour)) for colour in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = decode_image(buffer.getvalue(), 4).numpy()
    np.testing.assert_allclose(image, np.broadcast_to((255, 0, 0), (4, 4, 3)), atol=1e-3)


def test_images_are_squashed_not_cropped():
    pixels = solid(20, 80, (0, 0, 255))
    pixels[:, :20] = (255, 0, 0)  # the left quarter, which a centre crop would cut away
    image = decode_image(encode(pixels, "PNG"), 8).numpy()
    np.testing.assert_allclose(image[:, 0], np.broadcast_to((255, 0, 0), (8, 3)), atol=1e-3)
    np.testing.assert_allclose(image[:, 7], np.broadcast_to((0, 0, 255), (8, 3)), atol=1e-3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the image is empty"),
        (b"<html>\n<body>", r"the image is not a JPEG, PNG, GIF or BMP file \(starts with 3c 68 "),
    ],
)
def test_decode_image_refuses_what_is_not_an_image(data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        decode_image(data, 8)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_size_must_be_a_positive_integer(jpeg, size):
    with pytest.raises(ValueError, match="size"):
        decode_image(jpeg, size)
    with pytest.raises(ValueError, match="size"):
        decode_image_batch([jpeg], size)


def test_batch_decodes_mixed_formats(jpeg):
    png = encode(solid(5, 9, (10, 20, 30)), "PNG")
    images = decode_image_batch(tf.constant([jpeg, png, jpeg]), 6)
    assert images.shape == (3, 6, 6, 3) and images.dtype == tf.float32
    np.testing.assert_allclose(images[0], decode_image(jpeg, 6))
    np.testing.assert_allclose(images[1], np.broadcast_to((10, 20, 30), (6, 6, 3)), atol=1e-3)
    assert decode_image_batch(tf.constant([], tf.string), 6).shape == (0, 6, 6, 3)


def batch_error(batch: list[bytes]) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        decode_image_batch(batch, 8)
    return info.value.message


def test_batch_errors_name_the_bad_element(jpeg):
    png = encode(noise(20, 20), "PNG")
    assert (
        "image 2 of the batch is not a JPEG, PNG, GIF or BMP file (starts with "
        "3c 21 44 4f 43 54 59 50 |<!DOCTYP|)"
    ) in batch_error([jpeg, jpeg, b"<!DOCTYPE html>", jpeg])
    assert "image 1 of the batch is empty (0 bytes)" in batch_error([jpeg, b"", jpeg])
    truncated_jpeg = jpeg[: len(jpeg) // 2]
    assert (
        f"image 2 of the batch could not be decoded: truncated, corrupt or unsupported JPEG data "
        f"({len(truncated_jpeg)} bytes)"
    ) in batch_error([jpeg, png, truncated_jpeg, jpeg])
    # Only the final IEND chunk missing: TensorFlow's PNG decoder refuses it too.
    message = batch_error([png[:-12], jpeg])
    assert (
        "image 0 of the batch could not be decoded: truncated, corrupt or unsupported PNG"
        in message
    )
    one_bit_bmp = encode(noise(4, 4), "BMP", "1")
    assert "image 1 of the batch could not be decoded: truncated, corrupt or unsupported BMP" in (
        batch_error([jpeg, one_bit_bmp])
    )
    # The first bad element is named; a format error is found before decoding.
    assert "image 1 of the batch is empty" in batch_error([truncated_jpeg, b"", b"x"])


def test_batch_decoding_is_exported_in_a_saved_model(tmp_path, jpeg):
    class Captioner(tf.Module):
        # autograph=False as keras.export.ExportArchive traces.
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
        def caption(self, images):
            return {"mean": tf.reduce_mean(decode_image_batch(images, 8), axis=[1, 2, 3])}

    tf.saved_model.save(Captioner(), str(tmp_path / "export"))
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    png = encode(solid(3, 7, (40, 40, 40)), "PNG")
    means = loaded.caption(tf.constant([png, jpeg]))["mean"].numpy()
    np.testing.assert_allclose(means[0], 40, atol=1e-3)
    np.testing.assert_allclose(means[1], decode_image(jpeg, 8).numpy().mean(), rtol=1e-5)
    serving = loaded.signatures["serving_default"]
    assert serving(images=tf.constant([jpeg]))["mean"].shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 1 of the batch could not be"):
        loaded.caption(tf.constant([png, jpeg[:-2]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 0 of the batch is not a JPEG"):
        loaded.caption(tf.constant([b"GIF7 no", png]))


def test_image_dataset_from_paths_and_bytes(tmp_path, jpeg):
    paths = []
    for i, data in enumerate([jpeg, encode(solid(4, 4, (1, 2, 3)), "BMP")]):
        paths.append(tmp_path / f"{i}.img")
        paths[-1].write_bytes(data)
    from_paths = np.stack(list(image_dataset(paths, 5).as_numpy_iterator()))
    from_bytes = np.stack(list(image_dataset([p.read_bytes() for p in paths], 5)))
    assert from_paths.shape == (2, 5, 5, 3)
    np.testing.assert_array_equal(from_paths, from_bytes)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"notes\.txt is not a JPEG, PNG"):
        list(image_dataset([paths[0], notes], 5))
    with pytest.raises(TypeError, match="all paths or all bytes"):
        image_dataset([paths[0], jpeg], 5)
    with pytest.raises(TypeError, match="single str"):
        image_dataset(str(paths[0]), 5)


@pytest.fixture
def image_files(tmp_path, jpeg):
    def write(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        return str(tmp_path / name)

    png = encode(noise(16, 16), "PNG")
    return {
        "good.jpg": write("good.jpg", jpeg),
        "good.png": write("good.png", png),
        "good.gif": write("good.gif", encode(noise(8, 8), "GIF")),
        "good.bmp": write("good.bmp", encode(noise(8, 8), "BMP")),
        "grey.bmp": write("grey.bmp", encode(noise(8, 8), "BMP", "L")),
        "truncated.jpg": write("truncated.jpg", jpeg[: len(jpeg) * 2 // 3]),
        "no_eoi.jpg": write("no_eoi.jpg", jpeg[:-2]),
        "no_iend.png": write("no_iend.png", png[:-12]),
        "half.png": write("half.png", png[: len(png) // 2]),
        "notes.txt": write("notes.txt", b"A child in a pink dress.\n"),
        "empty.jpg": write("empty.jpg", b""),
        "one_bit.bmp": write("one_bit.bmp", encode(noise(8, 8), "BMP", "1")),
        "missing.jpg": str(tmp_path / "missing.jpg"),
    }


def test_check_image_file(image_files, tmp_path):
    for name in ["good.jpg", "good.png", "good.gif", "good.bmp", "grey.bmp"]:
        assert check_image_file(image_files[name]) is None, name
    expected = {
        "truncated.jpg": "truncated or corrupt JPEG (image file is truncated",
        "no_eoi.jpg": "truncated or corrupt JPEG",
        "no_iend.png": "truncated",
        "half.png": "truncated or corrupt PNG",
        "notes.txt": "not a JPEG, PNG, GIF or BMP file (starts with 41 20 63 68 69 6c 64 20 |A child |)",
        "empty.jpg": "empty file (0 bytes)",
        "one_bit.bmp": "1-bit BMP; TensorFlow decodes only 8-, 24- and 32-bit BMP",
        "missing.jpg": "no such file",
    }
    for name, reason in expected.items():
        message = check_image_file(image_files[name])
        assert message is not None and message.startswith(image_files[name] + ": "), name
        assert reason in message, (name, message)
        assert "\n" not in message
    assert "a directory" in check_image_file(tmp_path)


def test_check_image_file_agrees_with_tensorflow(image_files):
    for name, path in image_files.items():
        if name == "missing.jpg":
            continue
        try:
            decode_image(tf.io.read_file(path), 4)
            decoded = True
        except tf.errors.InvalidArgumentError:
            decoded = False
        assert decoded == (check_image_file(path) is None), name


def test_check_image_file_flags_palette_bmp(tmp_path):
    path = tmp_path / "palette.bmp"
    path.write_bytes(encode(noise(8, 8), "BMP", "P"))
    assert "palette BMP" in check_image_file(path)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_check_image_file_names_other_formats(tmp_path):
    path = tmp_path / "photo.webp"
    path.write_bytes(encode(noise(8, 8), "WEBP"))
    assert check_image_file(path) == f"{path}: a WEBP image, not a JPEG, PNG, GIF or BMP file"


def test_check_image_files_returns_the_bad_ones(image_files):
    calls = []
    bad = check_image_files(
        image_files.values(), progress=lambda done, total: calls.append((done, total)), workers=2
    )
    assert list(bad) == [
        image_files[name]
        for name in [
            "truncated.jpg",
            "no_eoi.jpg",
            "no_iend.png",
            "half.png",
            "notes.txt",
            "empty.jpg",
            "one_bit.bmp",
            "missing.jpg",
        ]
    ]
    assert all(reason.startswith(path) for path, reason in bad.items())
    assert calls[-1] == (len(image_files), len(image_files)) and len(calls) == len(image_files)
    assert check_image_files([], progress=False) == {}
