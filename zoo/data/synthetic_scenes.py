"""The embedded default captioning data set: rendered scenes of shapes with captions.

Each scene is one to three shapes on a light background, described by a
caption that is a deterministic function of the picture, so a perfect model
can reach BLEU 100 and the attention of a good one has somewhere to look.
The generator keeps every object's box and, for every caption word, which
object it names, so the attention itself can be scored
(`zoo.metrics.caption_metrics.pointing_accuracy`). Everything is seeded and
drawn here; nothing is downloaded.

The pictures
------------
The image (``image_size`` pixels square, RGB, encoded as PNG so that it takes
the same decoding path as a real photo) is divided into a 3 x 3 grid of cells
and each object sits in its own cell, jittered inside it but always at least
a margin away from the cell's edges: objects never overlap, neighbours are
at least two margins apart (6 px at 96 px), and which cell an object is in
is never in doubt. Shapes are circle, square, triangle (apex up), diamond
and cross; colours red, green, blue, yellow, purple and orange (each a little
jittered); sizes small and large (about 0.35 and 0.7 of a cell, 11 and 22 px
at 96 px, so four times the area). The background is a light grey with a
slight tint and a gentle linear gradient, different in every image.

The captions
------------
Objects are described in a canonical order: left to right by grid column,
top to bottom within a column. Each is ``a SIZE COLOUR SHAPE``. A lone object
is followed by where it is::

    a large red circle at the top left      (top row: at the top left / at the top / at the top right)
    a small blue cross on the left          (middle row: on the left / in the middle / on the right)
    a small green diamond at the bottom     (bottom row, like the top one)

Two or three objects are chained by the relation of each object to the next
one, read off the cells, along the axis of the larger displacement::

    a small red circle left of a large blue square
    a large green triangle above a small yellow cross below a small purple diamond

``X left of Y``: Y is more columns than rows away (always to the right,
given the order); ``X above Y`` / ``X below Y``: more rows than columns away.
Layouts where two consecutive objects are as many rows as columns apart
(diagonal neighbours) are never drawn, so the relation is never a judgement
call. Captions are 7 to 16 words over the 26 words of `VOCABULARY`.

``word_objects`` gives, for each word of ``caption.split()``, the index in
``objects`` of the object it names: the size, colour and shape words of the
k-th object described give k; "a", the relation words and the position words
give -1. Object k of ``objects`` is the k-th object of the caption.

Determinism
-----------
All choices come from `random.Random(seed).random()`, whose sequence Python
guarantees across versions and machines, and the shapes are rasterised here
with integer arithmetic (not by Pillow's drawing code, which has changed
between releases), so the pixels of a scene depend on nothing but the seed
and ``image_size``. The PNG bytes are identical wherever Pillow uses the same
zlib. The same seed gives the same captions and layouts at every
``image_size``, and the first n scenes of a larger set are the set of size n.
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Sequence
from functools import cache
from typing import TypeVar

import numpy as np
from PIL import Image

__all__ = [
    "COLOURS",
    "SHAPES",
    "SIZES",
    "VOCABULARY",
    "Scene",
    "SceneObject",
    "generate_scenes",
    "split_scenes",
]

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
"""The shape words."""

COLOURS = {
    "red": (214, 40, 40),
    "green": (36, 158, 62),
    "blue": (40, 84, 214),
    "yellow": (236, 200, 26),
    "purple": (136, 56, 186),
    "orange": (244, 126, 22),
}
"""The colour words and the RGB each is drawn in (jittered by up to 10 a channel)."""

SIZES = ("small", "large")
"""The size words."""

_RELATION_WORDS = ("left", "of", "above", "below")
_POSITION_WORDS = ("at", "on", "in", "the", "top", "bottom", "left", "right", "middle")

VOCABULARY = tuple(
    dict.fromkeys(("a", *SIZES, *COLOURS, *SHAPES, *_RELATION_WORDS, *_POSITION_WORDS))
)
"""Every word a caption can use (26 words)."""

_COLOUR_JITTER = 10
_GRID = 3

# Where a lone object is, by (row, column) of its cell.
_POSITIONS = {
    (0, 0): "at the top left",
    (0, 1): "at the top",
    (0, 2): "at the top right",
    (1, 0): "on the left",
    (1, 1): "in the middle",
    (1, 2): "on the right",
    (2, 0): "at the bottom left",
    (2, 1): "at the bottom",
    (2, 2): "at the bottom right",
}

Cell = tuple[int, int]
"""A grid cell as ``(column, row)``, so that sorting cells gives the caption order."""


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """One shape of a scene.

    Attributes:
        shape: one of `SHAPES`.
        colour: one of the keys of `COLOURS`.
        size: one of `SIZES`.
        box: ``(x0, y0, x1, y1)`` in pixels, end exclusive: the square the
            shape is drawn in (the shape touches all four sides of it).
    """

    shape: str
    colour: str
    size: str
    box: tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class Scene:
    """A rendered scene and its caption.

    Attributes:
        image: the picture, PNG-encoded RGB, ``image_size`` pixels square.
        caption: lower-case words separated by single spaces.
        objects: the shapes, in the order the caption describes them.
        word_objects: one entry per word of ``caption.split()``: the index in
            ``objects`` of the object the word names, or -1.
    """

    image: bytes
    caption: str
    objects: tuple[SceneObject, ...]
    word_objects: tuple[int, ...]

    @property
    def boxes(self) -> tuple[tuple[int, int, int, int], ...]:
        """The objects' boxes, in caption order."""
        return tuple(o.box for o in self.objects)


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in ``[0, n)`` from one `random()` draw.

    `random.Random.randrange` may change between Python versions and draws a
    variable number of values; `random()` is guaranteed stable, and one draw
    per choice keeps scenes the same at every image size.
    """
    return min(int(rng.random() * n), n - 1)


def _relation(first: Cell, second: Cell) -> str:
    columns, rows = second[0] - first[0], second[1] - first[1]
    if abs(columns) > abs(rows):
        return "left of"
    return "above" if rows > 0 else "below"


@cache
def _layouts(count: int) -> tuple[tuple[Cell, ...], ...]:
    """Every set of ``count`` cells, sorted, with no consecutive diagonal pair."""
    cells = sorted((column, row) for column in range(_GRID) for row in range(_GRID))
    layouts: list[tuple[Cell, ...]] = [()]
    for _ in range(count):
        layouts = [
            layout + (cell,)
            for layout in layouts
            for cell in cells
            if not layout
            or (cell > layout[-1] and abs(cell[0] - layout[-1][0]) != abs(cell[1] - layout[-1][1]))
        ]
    return tuple(layouts)


@cache
def _mask(shape: str, side: int) -> np.ndarray:
    """The pixels of ``shape`` in a ``side`` x ``side`` square, as a bool array.

    Pixel centres are tested in doubled integer coordinates ``u, v`` running
    from ``-(side - 1)`` to ``side - 1``, so the square's edges are at
    ``+-side`` and no floating point is involved.
    """
    u = np.arange(1 - side, side, 2, dtype=np.int64)[None, :]
    v = u.T
    if shape == "circle":
        mask = u * u + v * v <= side * side
    elif shape == "square":
        mask = np.ones((side, side), dtype=bool)
    elif shape == "triangle":
        # Apex at the top middle, base along the bottom; the + 1 keeps a pixel (two
        # for an even side) in the top row.
        mask = 2 * np.abs(u) <= v + side + 1
    elif shape == "diamond":
        mask = np.abs(u) + np.abs(v) <= side
    elif shape == "cross":
        mask = (3 * np.abs(u) <= side) | (3 * np.abs(v) <= side)
    else:
        raise ValueError(f"Unknown shape. Expected one of {SHAPES}. Received: shape={shape!r}")
    return np.broadcast_to(mask, (side, side))


class _Geometry:
    """Pixel sizes for one image size."""

    def __init__(self, image_size: int):
        self.image_size = image_size
        self.edges = [i * image_size // _GRID for i in range(_GRID + 1)]
        self.sides = {"large": 7 * image_size // 30}
        self.sides["small"] = self.sides["large"] // 2
        self.margin = max(2, image_size // 32)
        ramp = np.arange(1 - image_size, image_size, 2, dtype=np.int32)  # doubled pixel centres
        self.ramp_x = ramp[None, :]
        self.ramp_y = ramp[:, None]

    def place(self, rng: random.Random, cell: Cell, side: int) -> tuple[int, int, int, int]:
        start = []
        for axis in cell:
            low, high = self.edges[axis] + self.margin, self.edges[axis + 1] - self.margin - side
            start.append(low + _below(rng, high - low + 1))
        x0, y0 = start
        return (x0, y0, x0 + side, y0 + side)

    def background(self, rng: random.Random) -> np.ndarray:
        # Grey 208-236, tint +-6 a channel, gradient +-12: always within 190-254.
        grey = 208 + _below(rng, 29)
        tint = np.array([grey + _below(rng, 13) - 6 for _ in range(3)], dtype=np.int32)
        slope_x, slope_y = _below(rng, 25) - 12, _below(rng, 25) - 12
        # A linear gradient, in integers: the ramps run over +-image_size, so
        # this is within +-(|slope_x| + |slope_y|) / 2 <= 12 grey levels.
        gradient = (slope_x * self.ramp_x + slope_y * self.ramp_y) // (2 * self.image_size)
        return (gradient[:, :, None] + tint).astype(np.uint8)


def _scene(rng: random.Random, geometry: _Geometry, min_objects: int, max_objects: int) -> Scene:
    count = min_objects + _below(rng, max_objects - min_objects + 1)
    layouts = _layouts(count)
    cells = layouts[_below(rng, len(layouts))]
    image = geometry.background(rng)
    objects, words, word_objects = [], [], []
    for index, cell in enumerate(cells):
        shape = SHAPES[_below(rng, len(SHAPES))]
        colour = list(COLOURS)[_below(rng, len(COLOURS))]
        size = SIZES[_below(rng, len(SIZES))]
        rgb = [c + _below(rng, 2 * _COLOUR_JITTER + 1) - _COLOUR_JITTER for c in COLOURS[colour]]
        box = geometry.place(rng, cell, geometry.sides[size])
        x0, y0, x1, y1 = box
        image[y0:y1, x0:x1][_mask(shape, x1 - x0)] = rgb  # 12-254: no clipping needed
        objects.append(SceneObject(shape=shape, colour=colour, size=size, box=box))
        if index:
            relation = _relation(cells[index - 1], cell).split()
            words += relation
            word_objects += [-1] * len(relation)
        words += ["a", size, colour, shape]
        word_objects += [-1, index, index, index]
    if count == 1:
        column, row = cells[0]
        position = _POSITIONS[(row, column)].split()
        words += position
        word_objects += [-1] * len(position)
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=1)
    return Scene(
        image=buffer.getvalue(),
        caption=" ".join(words),
        objects=tuple(objects),
        word_objects=tuple(word_objects),
    )


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Expected {name} to be an integer >= {low}. Received: {name}={value!r}")
    if high is not None and value > high:
        raise ValueError(f"Expected {name} to be <= {high}. Received: {name}={value!r}")


def generate_scenes(
    size: int,
    seed: int = 0,
    *,
    image_size: int = 96,
    min_objects: int = 1,
    max_objects: int = 3,
) -> list[Scene]:
    """Draws and renders ``size`` scenes with their captions.

    Args:
        size: the number of scenes.
        seed: picks the scenes; the same seed gives the same scenes (the same
            captions and layouts at every ``image_size``).
        image_size: the side of the square images in pixels, at least 48
            (small shapes are 11 px at 96, 7 px at 64, 5 px at 48).
        min_objects: the fewest objects in a scene, 1 to 3.
        max_objects: the most objects in a scene, ``min_objects`` to 3; the
            number of objects is uniform between the two.

    Returns:
        A list of `Scene`s. 10,000 scenes of 96 px take about 9 s (one busy core).
    """
    _check_int("size", size, 0)
    _check_int("seed", seed, 0)
    _check_int("image_size", image_size, 48)
    _check_int("min_objects", min_objects, 1, _GRID)
    _check_int("max_objects", max_objects, min_objects, _GRID)
    rng = random.Random(seed)
    geometry = _Geometry(image_size)
    return [_scene(rng, geometry, min_objects, max_objects) for _ in range(size)]


_Item = TypeVar("_Item")


def split_scenes(
    scenes: Sequence[_Item], validation_size: int, test_size: int, seed: int = 0
) -> tuple[list[_Item], list[_Item], list[_Item]]:
    """Splits scenes at random into train, validation and test.

    The split is by image: every scene is a different picture, but scenes of
    the same caption (frequent among one-object scenes) can fall on both
    sides, as the same sentence describes different photos in COCO.

    Args:
        scenes: the scenes (or anything else to split).
        validation_size: the number of validation scenes.
        test_size: the number of test scenes.
        seed: picks the held-out scenes.

    Returns:
        ``(train, validation, test)`` lists, each in the input order.
    """
    _check_int("validation_size", validation_size, 0)
    _check_int("test_size", test_size, 0)
    if validation_size + test_size > len(scenes):
        raise ValueError(
            f"Expected validation_size + test_size <= the number of scenes ({len(scenes)}). "
            f"Received: validation_size={validation_size}, test_size={test_size}"
        )
    rng = random.Random(seed)
    order = list(range(len(scenes)))
    for i in range(len(order) - 1, 0, -1):  # Fisher-Yates on `random()` alone, like `_below`
        j = _below(rng, i + 1)
        order[i], order[j] = order[j], order[i]
    test = set(order[:test_size])
    validation = set(order[test_size : test_size + validation_size])
    return (
        [s for i, s in enumerate(scenes) if i not in test and i not in validation],
        [s for i, s in enumerate(scenes) if i in validation],
        [s for i, s in enumerate(scenes) if i in test],
    )
