"""Image decoding for captioning: bytes -> float32 RGB in [0, 255], square, checked first.

Images enter the captioning models as float32 tensors ``(size, size, 3)``,
RGB, values in ``[0, 255]``; each CNN backbone applies its own
preprocessing later. This module is the data side: TensorFlow ops only, so
the same functions run in `tf.data` and inside a `tf.function` exported in
a SavedModel (the ``caption`` signature decodes with `decode_image_batch`).

Decoding rules, the same for training and serving:

- Formats: JPEG, PNG, GIF (first frame) and BMP, recognised by their magic
  bytes as `tf.io.decode_image` does. Anything else is refused with a
  message naming the element and its first bytes.
- Grey images become three equal channels. A PNG with transparency is
  composited on white: transparent pixels usually carry black RGB, so
  dropping alpha would turn a logo's background black, while white is how
  the image looks on a page. The alpha of a 32-bit BMP is dropped instead:
  many writers leave it 0, and compositing would whiten the whole image.
- Size: the image is squashed to ``size x size`` (bilinear, antialiased),
  not centre-cropped. Captions describe the whole scene ("a dog on the left
  of a bench"), and a crop could cut away what they mention; the mild
  distortion of a 4:3 photo costs little to a CNN, and attention maps then
  stretch back onto the whole original picture.

Truncated files, as measured with TensorFlow 2.21: `tf.io.decode_image`
raises ``InvalidArgumentError`` for a JPEG missing any of its bytes, even
only the final end-of-image marker (``jpeg::Uncompress failed. Invalid JPEG
data or crop window``; libjpeg also prints "Improper call to JPEG library"
on stderr), and for a PNG missing any byte of its final ``IEND`` chunk
(``Invalid PNG data, size N``). Neither message says which image of a
batch failed, so `decode_image_batch` decodes through `tf.data` with
``ignore_errors`` and reports the first element that did not come out by
its index. A GIF missing its one-byte trailer still decodes; a truncated
BMP raises. Pillow is more lenient than TensorFlow on PNG (it loads a PNG
without ``IEND``), so `check_image_file` checks the ``IEND`` chunk itself.

Example:
    ```python
    image = decode_image(tf.io.read_file("dog.jpg"), 224)  # (224, 224, 3) float32
    bad = check_image_files(paths)  # {path: reason} for files TensorFlow cannot decode
    dataset = image_dataset([p for p in paths if p not in bad], 224).batch(32)
    ```
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

__all__ = [
    "check_image_file",
    "check_image_files",
    "decode_image",
    "decode_image_batch",
    "image_dataset",
]

# Magic bytes as tf.io.decode_image classifies them (decode_image_op.cc).
_FORMATS = (
    ("JPEG", b"\xff\xd8\xff"),
    ("PNG", b"\x89PNG\r\n\x1a\n"),
    ("GIF", b"GIF8"),
    ("BMP", b"BM"),
)
_FORMAT_NAMES = "JPEG, PNG, GIF or BMP"
_SHOWN_BYTES = 8
# The IEND chunk (length 0, type, CRC) that ends every PNG; libpng wants all of it.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# How the first bytes of a refused file appear in messages: hex, then as text
# (hexdump style). No quote or backslash, which TensorFlow would escape again.
_BYTE_HEX = [f"{b:02x}" for b in range(256)]
_BYTE_CHAR = [chr(b) if 32 <= b < 127 and chr(b) not in "'\"\\" else "." for b in range(256)]


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"`size` must be an integer >= 1. Received: size={size!r}")
    return size


def _format_index(data: tf.Tensor) -> tf.Tensor:
    """Index into `_FORMATS` of each element's format, or len(_FORMATS) when none matches."""
    index = tf.fill(tf.shape(data), len(_FORMATS))
    for i, (_, magic) in enumerate(_FORMATS):  # No two magics match the same bytes.
        matches = tf.equal(tf.strings.substr(data, 0, len(magic)), magic)
        index = tf.where(matches, i, index)
    return index


def _head_text(data: tf.Tensor) -> tf.Tensor:
    """The first bytes of a scalar string, e.g. ``3c 68 74 6d 6c 3e 0a 3c |<html>.<|``."""
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 0, _SHOWN_BYTES), tf.uint8), tf.int32)
    hex_text = tf.strings.reduce_join(tf.gather(tf.constant(_BYTE_HEX), head), separator=" ")
    text = tf.strings.reduce_join(tf.gather(tf.constant(_BYTE_CHAR), head))
    return tf.strings.join([hex_text, " |", text, "|"])


def _head_text_python(data: bytes) -> str:
    """`_head_text` in Python."""
    head = data[:_SHOWN_BYTES]
    return f"{head.hex(' ')} |{''.join(_BYTE_CHAR[b] for b in head)}|"


def _format_problem(data: tf.Tensor, what: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(ok, message) for a scalar string: is it a non-empty file of a known format."""
    empty = tf.equal(tf.strings.length(data), 0)
    known = _format_index(data) < len(_FORMATS)
    message = tf.where(
        empty,
        tf.strings.join([what, " is empty (0 bytes)"]),
        tf.strings.join(
            [what, f" is not a {_FORMAT_NAMES} file (starts with ", _head_text(data), ")"]
        ),
    )
    return tf.logical_and(known, tf.logical_not(empty)), message


def _decode_known(data: tf.Tensor, size: int) -> tf.Tensor:
    """Decodes bytes already known to be JPEG, PNG, GIF or BMP to ``(size, size, 3)`` float32."""

    def png() -> tf.Tensor:
        # decode_png gives 4 channels for every PNG kind (grey, palette, RGB),
        # with alpha 255 where the file has none.
        rgba = tf.cast(tf.io.decode_png(data, channels=4), tf.float32)
        alpha = rgba[..., 3:] / 255.0
        return rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)

    def other() -> tf.Tensor:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.cast(image, tf.float32)

    png_magic = dict(_FORMATS)["PNG"]
    is_png = tf.equal(tf.strings.substr(data, 0, len(png_magic)), png_magic)
    image = tf.cond(is_png, png, other)
    image = tf.ensure_shape(image, [None, None, 3])
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [size, size, 3])


def decode_image(
    data: tf.Tensor | bytes, size: int, *, source: str | tf.Tensor | None = None
) -> tf.Tensor:
    """Decodes one encoded image to a float32 ``(size, size, 3)`` RGB tensor in ``[0, 255]``.

    Works eagerly, in `tf.data` and in a `tf.function` (TensorFlow ops only).
    See the module docstring for the format, transparency and resizing rules.

    Args:
        data: a scalar string tensor (or bytes): the file's bytes.
        size: the side of the square output, in pixels.
        source: what to call the image in error messages, e.g. its path (a
            Python string or a scalar string tensor); default "the image".

    Returns:
        A float32 tensor of shape ``(size, size, 3)``.

    Raises:
        tf.errors.InvalidArgumentError: empty data or data of another format
            (the message names `source` and shows the first bytes), or data
            that TensorFlow cannot decode (a truncated or corrupt file).
        ValueError: `size` is not a positive integer.
    """
    size = _check_size(size)
    data = tf.convert_to_tensor(data, tf.string)
    data.shape.assert_has_rank(0)
    what = "the image" if source is None else source
    ok, message = _format_problem(data, tf.convert_to_tensor(what, tf.string))
    with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
        data = tf.identity(data)
    return _decode_known(data, size)


def decode_image_batch(data: tf.Tensor | Sequence[bytes], size: int) -> tf.Tensor:
    """Decodes a batch of encoded images to float32 ``(batch, size, size, 3)``.

    The decoding of the exported ``caption`` signature. Every element is
    checked before any is decoded, and a bad one fails the whole batch with
    an ``InvalidArgumentError`` that names its 0-based index in the batch:

    - ``image 2 of the batch is empty (0 bytes)``
    - ``image 2 of the batch is not a JPEG, PNG, GIF or BMP file (starts
      with 3c 68 74 6d 6c 3e 0a 3c |<html>.<|)``
    - ``image 2 of the batch could not be decoded: truncated, corrupt or unsupported
      JPEG data (8123 bytes)``; TensorFlow's own decoder error says no
      index, so decoding runs in `tf.data` with ``ignore_errors`` and the
      first missing element is reported.

    Only TensorFlow ops and an in-graph `tf.data` pipeline: it traces into a
    SavedModel (also with ``autograph=False``) and runs under TF Serving.
    An empty batch gives ``(0, size, size, 3)``.

    Args:
        data: a string tensor of shape ``(batch,)``, the files' bytes.
        size: the side of the square output, in pixels.

    Returns:
        A float32 tensor of shape ``(batch, size, size, 3)``, values in ``[0, 255]``.

    Raises:
        tf.errors.InvalidArgumentError: as listed above.
        ValueError: `size` is not a positive integer, or `data` is not 1-D.
    """
    size = _check_size(size)
    data = tf.convert_to_tensor(data, tf.string)
    data.shape.assert_has_rank(1)
    count = tf.size(data, out_type=tf.int64)
    positions = tf.range(count)
    # One more element, so that the messages below can always be built (the
    # Assert op evaluates its data even when the check passes).
    padded = tf.concat([data, [b"\xff\xd8\xff"]], 0)
    formats = tf.concat([_format_index(data), [0]], 0)

    known = (formats[:-1] < len(_FORMATS)) & (tf.strings.length(data) > 0)
    first_bad = tf.reduce_min(tf.concat([tf.boolean_mask(positions, ~known), [count]], 0))
    what = tf.strings.join(["image ", tf.strings.as_string(first_bad), " of the batch"])
    _, message = _format_problem(padded[first_bad], what)
    checked = tf.debugging.Assert(tf.reduce_all(known), [message])

    with tf.control_dependencies([checked]):
        data = tf.identity(data)

    def decode_all() -> tuple[tf.Tensor, tf.Tensor]:
        dataset = tf.data.Dataset.from_tensor_slices(data).enumerate()
        dataset = dataset.map(
            lambda index, item: (index, _decode_known(item, size)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        # When every image fails, the batch is empty rather than missing (a
        # lone bad file must reach the named error below, not "Dataset was empty").
        empty = tf.data.Dataset.from_tensors(
            (tf.zeros([0], tf.int64), tf.zeros([0, size, size, 3], tf.float32))
        )
        batches = dataset.ignore_errors().batch(tf.maximum(count, 1)).concatenate(empty)
        return batches.take(1).get_single_element()

    def nothing() -> tuple[tf.Tensor, tf.Tensor]:
        return tf.zeros([0], tf.int64), tf.zeros([0, size, size, 3], tf.float32)

    indices, images = tf.cond(count > 0, decode_all, nothing)
    decoded = tf.size(indices, out_type=tf.int64)
    kept = tf.range(decoded)
    first_failed = tf.reduce_min(tf.concat([tf.boolean_mask(kept, indices != kept), [decoded]], 0))
    format_names = tf.constant([name for name, _ in _FORMATS])
    failed = tf.strings.join(
        [
            "image ",
            tf.strings.as_string(first_failed),
            " of the batch could not be decoded: truncated, corrupt or unsupported ",
            tf.gather(format_names, formats[first_failed]),
            " data (",
            tf.strings.as_string(tf.strings.length(padded[first_failed])),
            " bytes)",
        ]
    )
    with tf.control_dependencies([tf.debugging.Assert(tf.equal(decoded, count), [failed])]):
        return tf.ensure_shape(tf.identity(images), [None, size, size, 3])


def image_dataset(
    paths_or_bytes: Iterable[str | os.PathLike | bytes],
    size: int,
    *,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of decoded images ``(size, size, 3)``, in the order given.

    Args:
        paths_or_bytes: image file paths (str or path-like; read with
            `tf.io.read_file`, and named in format errors), or the files'
            contents as bytes. Not both.
        size: the side of the square images.
        num_parallel_calls: images decoded in parallel.

    Raises:
        TypeError: a single path or bytes object, or a mix of paths and bytes.
        ValueError: `size` is not a positive integer.
    """
    _check_size(size)
    if isinstance(paths_or_bytes, (str, bytes, os.PathLike)):
        raise TypeError(
            "`paths_or_bytes` must be a sequence of paths or of bytes, not a single "
            f"{type(paths_or_bytes).__name__}. Received: {paths_or_bytes!r:.80}"
        )
    items = list(paths_or_bytes)
    if all(isinstance(item, bytes) for item in items):
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(items, tf.string, [len(items)]))
        return dataset.map(lambda data: decode_image(data, size), num_parallel_calls)
    if all(isinstance(item, (str, os.PathLike)) for item in items):
        paths = tf.constant([os.fspath(item) for item in items], tf.string, [len(items)])
        return tf.data.Dataset.from_tensor_slices(paths).map(
            lambda path: decode_image(tf.io.read_file(path), size, source=path),
            num_parallel_calls,
        )
    kinds = sorted({type(item).__name__ for item in items})
    raise TypeError(f"`paths_or_bytes` must be all paths or all bytes. Received types: {kinds}")


def _bmp_problem(data: bytes) -> str | None:
    """Why TensorFlow's BMP decoder would fail on or misread this BMP, else None."""
    # TensorFlow reads bits per pixel and compression at the offsets of the
    # common 40-byte (and later) info headers, and decodes 8, 24 or 32 bits
    # uncompressed; an 8-bit palette is ignored (the indices become grey levels).
    if len(data) < 34:
        return "truncated BMP header"
    bits = int.from_bytes(data[28:30], "little")
    compression = int.from_bytes(data[30:34], "little")
    if bits not in (8, 24, 32):
        return f"{bits}-bit BMP; TensorFlow decodes only 8-, 24- and 32-bit BMP"
    if compression in (1, 2):
        return "RLE-compressed BMP; TensorFlow decodes only uncompressed BMP"
    return None


def check_image_file(path: str | os.PathLike) -> str | None:
    """None when TensorFlow will decode the file as an image, else one line saying why not.

    Run before training (see `check_image_files`) so that a bad file is
    reported by name rather than failing inside `tf.data` with no name.
    The file is decoded in full by Pillow (JPEG at a reduced DCT scale, which
    still reads every byte), plus the checks where TensorFlow is stricter
    than Pillow: a PNG must end with its complete ``IEND`` chunk, a BMP must
    be 8-bit grey, 24-bit or 32-bit and uncompressed.

    Returns:
        None, or a reason that starts with the path, e.g.
        ``"images/a.jpg: truncated or corrupt JPEG (image file is truncated)"``.
    """
    from PIL import Image

    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return f"{name}: no such file"
    except IsADirectoryError:
        return f"{name}: a directory, not an image file"
    except OSError as error:
        return f"{name}: cannot be read ({error.strerror or error})"
    if not data:
        return f"{name}: empty file (0 bytes)"
    kind = next((kind for kind, magic in _FORMATS if data.startswith(magic)), None)
    if kind is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                other = f"a {image.format} image, not a {_FORMAT_NAMES} file"
        except Exception:
            other = f"not a {_FORMAT_NAMES} file (starts with {_head_text_python(data)})"
        return f"{name}: {other}"
    try:
        with Image.open(io.BytesIO(data)) as image:
            mode = image.mode
            if kind == "PNG":
                image.verify()  # Checks every chunk's CRC, which load() does not.
            else:
                if kind == "JPEG":
                    image.draft("RGB", (1, 1))
                image.load()
        if kind == "PNG":  # verify() leaves the image unusable: open again to decode.
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except Exception as error:
        reason = str(error) or type(error).__name__
        return f"{name}: truncated or corrupt {kind} ({reason})"
    if kind == "PNG" and _PNG_END not in data:
        return f"{name}: truncated PNG (no complete IEND chunk)"
    if kind == "BMP":
        problem = _bmp_problem(data)
        if problem is None and mode == "P":
            problem = "8-bit palette BMP; TensorFlow reads its colour indices as grey levels"
        if problem is not None:
            return f"{name}: {problem}"
    return None


def check_image_files(
    paths: Iterable[str | os.PathLike],
    *,
    progress: bool | Callable[[int, int], None] = True,
    workers: int = 4,
) -> dict[str, str]:
    """Runs `check_image_file` on many files; returns ``{path: reason}`` for the bad ones.

    Args:
        paths: the image files.
        progress: True for a progress bar, False for none, or a callable
            ``progress(done, total)`` called after each file.
        workers: files checked at once (threads: Pillow decodes without the GIL).

    Returns:
        The bad files, in the order given, mapped to their reasons.
    """
    names = [os.fspath(path) for path in paths]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be an integer >= 1. Received: workers={workers!r}")
    report = progress if callable(progress) else None
    bar = None
    if progress is True and names:
        import keras

        bar = keras.utils.Progbar(len(names), unit_name="image")
    bad = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (name, reason) in enumerate(
            zip(names, pool.map(check_image_file, names), strict=True), start=1
        ):
            if reason is not None:
                bad[name] = reason
            if bar is not None:
                bar.update(done)
            if report is not None:
                report(done, len(names))
    return bad
