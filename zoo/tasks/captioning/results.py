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

    @classmethod
    def from_outputs(cls, named: list[tuple[str, bytes]], out: dict) -> list[CaptionResult]:
        results = []
        for i, (name, data) in enumerate(named):
            tokens = strings(out["tokens"][i])
            results.append(
                cls(
                    image=name,
                    text=out["caption"][i].decode("utf-8"),
                    tokens=tokens,
                    attention=out["attention"][i][: len(tokens)],
                    score=float(out["score"][i]),
                    image_data=data,
                )
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


def encoded_image(item) -> tuple[str, bytes]:
    """(name, encoded bytes) of a path, bytes, an `(H, W[, C])` uint8 array or a PIL image."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        return str(path), path.read_bytes()
    if isinstance(item, (bytes, bytearray)):
        return "<bytes>", bytes(item)
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
