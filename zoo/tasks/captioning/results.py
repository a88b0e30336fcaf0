"""What an exported captioner gives back in Python: `CaptionResult`, and the images it takes."""

from __future__ import annotations

import dataclasses
import io
import os
import re
from pathlib import Path

import numpy as np

from zoo.tasks.base import Result, strings


@dataclasses.dataclass
class CaptionResult(Result):
    """One caption: the text, its words, where the model looked for each, and the score.

    `attention` has shape `(len(tokens), grid, grid)`: map `t` is the
    attention over the image's grid of cells when word `t` was produced
    (row-major, cell `(0, 0)` at the top left). `score` is the caption's
    log-probability (end token included), divided by the GNMT length penalty
    for beam search. `image` names the input (its path, or `"<bytes>"`,
    `"<array>"`, `"<PIL image>"`); `image_data` holds the encoded image that
    was captioned, for `pixels()` and the overlay figure.
    """

    image: str
    text: str
    tokens: list[str]
    attention: np.ndarray
    score: float
    image_data: bytes = dataclasses.field(repr=False, default=b"")
    truncated: bool = False

    @classmethod
    def from_outputs(cls, named: list[tuple[str, bytes]], out: dict) -> list[CaptionResult]:
        from zoo.tasks.truncation import warn_truncated

        results = []
        for i, (name, data) in enumerate(named):
            tokens = strings(out["tokens"][i])
            truncated = "truncated" in out and bool(out["truncated"][i])  # older exports: no flag
            results.append(
                cls(
                    image=name,
                    text=out["caption"][i].decode("utf-8"),
                    tokens=tokens,
                    attention=out["attention"][i][: len(tokens)],
                    score=float(out["score"][i]),
                    image_data=data,
                    truncated=truncated,
                )
            )
            if truncated:
                warn_truncated(
                    "image",
                    i,
                    name,
                    f"the caption hit max_length ({len(tokens)} words: decode.max_length, or the "
                    "max_length option) before its end; it is cut there",
                    words=False,
                )
        return results

    @property
    def words(self) -> list[str]:
        return self.tokens

    def pixels(self) -> np.ndarray:
        """The captioned image as an RGB uint8 array `(H, W, 3)`, at its own resolution."""
        from PIL import Image

        with Image.open(io.BytesIO(self.image_data)) as image:
            return np.asarray(image.convert("RGB"))

    def plot_title(self, source: str) -> str:
        return Path(source).name

    def plot(self, path: str | os.PathLike | None = None, **kwargs):
        """The image under each word's upsampled, smoothed attention (`plot_caption_attention`)."""
        from zoo.plots import plot_caption_attention

        return plot_caption_attention(self.pixels(), self.tokens, self.attention, path, **kwargs)


MAX_PIXELS = 50_000_000
"""The largest image (width x height) `zoo.load` decodes: more is refused before decoding
(a small file can hold a huge image, and the graph decodes it whole)."""


def check_pixels(name: str, data: bytes) -> bytes:
    """`data`, or a `ValueError` naming `name` when its header says it is over `MAX_PIXELS`."""
    import warnings

    from PIL import Image

    too_big = f"image {name} has more than the {MAX_PIXELS:,} pixels zoo decodes at once"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's own decompression-bomb warning
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height = image.size
    except Image.DecompressionBombError as error:  # past PIL's own, higher limit
        raise ValueError(f"{too_big} ({error}); resize it first") from None
    except Exception:  # noqa: BLE001  (not an image PIL knows: the graph names the problem)
        return data
    if width * height > MAX_PIXELS:
        raise ValueError(f"{too_big} ({width:,} x {height:,}); resize it first")
    return data


def encoded_image(item) -> tuple[str, bytes]:
    """(name, encoded bytes) of a path, bytes, an `(H, W[, C])` uint8 array or a PIL image."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        return str(path), check_pixels(str(path), path.read_bytes())
    if isinstance(item, (bytes, bytearray)):
        return "<bytes>", check_pixels("<bytes>", bytes(item))
    from PIL import Image

    if isinstance(item, Image.Image):
        name, image = "<PIL image>", item
    elif isinstance(item, np.ndarray):
        if item.dtype != np.uint8 or item.ndim not in (2, 3):
            raise TypeError(
                "an image array must be uint8 (H, W) or (H, W, 3|4). "
                f"Received: dtype={item.dtype}, shape={item.shape}"
            )
        name, image = "<array>", Image.fromarray(item)
    else:
        raise TypeError(
            "caption() takes image paths, encoded bytes, uint8 arrays or PIL images. "
            f"Received: {type(item).__name__}"
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return name, buffer.getvalue()


def name_bad_image(message: str, names: list[str]) -> str:
    """The graph's "image 2 of the batch ..." error, with the image's name put in."""
    match = re.search(r"image (\d+) of the batch(.*)", message, flags=re.DOTALL)
    if not match or int(match.group(1)) >= len(names):
        return message
    from zoo.tasks.truncation import input_positions

    index = int(match.group(1))
    # tf.debugging.Assert prints its data as a list: drop the closing bracket.
    detail = match.group(2).split("\n")[0].strip().removesuffix("]").strip()
    positions = input_positions.get()
    if positions is not None and len(positions) == len(names):  # zoo.load's batches
        return f"image {names[index]} (input {positions[index] + 1}) {detail}"
    return f"image {names[index]} (input {index + 1} of {len(names)}) {detail}"
