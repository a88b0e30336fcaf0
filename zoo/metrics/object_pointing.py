"""Attention scored on real photos: does the word naming an object look at it?

For each generated word that names a COCO category (`CATEGORY_WORDS`: "man",
"women", "people" -> ``person``; "puppy" -> ``dog``; ...) in an image that
holds at least one box of that category, the word's attention peak (the
cell of largest weight, the first in row-major order) is a *hit* when that
cell overlaps a box of the category (they share part of a pixel; touching
along an edge is not enough). A word naming a category the image has no box
of (a hallucination, or an object COCO did not annotate) cannot be scored:
it is counted apart, in ``unboxed``.

Two baselines say what a figure means, scored on the same words:

- ``centre``: the peak always on the cell holding the image centre (for an
  even grid, the cell below and right of it); photographers centre their
  subjects, so this is the baseline to beat.
- ``uniform``: the peak on a cell drawn uniformly at random: the expected
  hit rate, the share of cells that overlap a box of the category.

The attention grid covers the whole image (the model sees the photo resized
to a square, aspect ratio not kept), so a cell ``(i, j)`` of an ``H`` x
``W`` grid covers ``[j / W, (j + 1) / W)`` of the width and ``[i / H, (i + 1) / H)``
of the height, boxes being compared in the same fractions of their image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from zoo.metrics.caption_metrics import cells_overlapping_box

__all__ = ["CATEGORY_WORDS", "ObjectPointing", "object_pointing"]

# Caption words -> the COCO category they name. The category's own name (and its plural),
# then the words Flickr8k and COCO captions use for it. Multi-word categories are matched
# by their head word ("hydrant", "racket"). Words that name several categories ("bat",
# "glass") take the one captions mean most often; words that are more often something
# else ("orange" the colour, "sign" of any kind, "traffic") are left out, and with them
# the stop sign category.
_WORDS = {
    "person": (
        "person persons people man men woman women boy boys girl girls child children kid "
        "kids baby babies toddler guy guys lady ladies player players skier skiers surfer "
        "surfers skateboarder skateboarders snowboarder biker bikers cyclist rider riders "
        "adult adults teenager teenagers crowd"
    ),
    "bicycle": "bicycle bicycles bike bikes",
    "car": "car cars",
    "motorcycle": "motorcycle motorcycles motorbike motorbikes scooter moped",
    "airplane": "airplane airplanes plane planes jet jets airliner aircraft",
    "bus": "bus buses",
    "train": "train trains locomotive",
    "truck": "truck trucks",
    "boat": "boat boats ship ships canoe kayak",
    "traffic light": "stoplight",
    "fire hydrant": "hydrant",
    "parking meter": "meter",
    "bench": "bench benches",
    "bird": "bird birds duck ducks seagull pigeon",
    "cat": "cat cats kitten kitty",
    "dog": "dog dogs puppy puppies",
    "horse": "horse horses pony",
    "sheep": "sheep lamb ram",
    "cow": "cow cows cattle bull",
    "elephant": "elephant elephants",
    "bear": "bear bears",
    "zebra": "zebra zebras",
    "giraffe": "giraffe giraffes",
    "backpack": "backpack backpacks",
    "umbrella": "umbrella umbrellas",
    "handbag": "handbag purse",
    "tie": "tie",
    "suitcase": "suitcase suitcases luggage",
    "frisbee": "frisbee",
    "skis": "skis ski",
    "snowboard": "snowboard",
    "sports ball": "ball balls football soccer basketball",
    "kite": "kite kites",
    "baseball bat": "bat",
    "baseball glove": "glove mitt",
    "skateboard": "skateboard",
    "surfboard": "surfboard surfboards",
    "tennis racket": "racket racquet",
    "bottle": "bottle bottles",
    "wine glass": "glass glasses",
    "cup": "cup cups mug",
    "fork": "fork",
    "knife": "knife",
    "spoon": "spoon",
    "bowl": "bowl bowls",
    "banana": "banana bananas",
    "apple": "apple apples",
    "sandwich": "sandwich sandwiches",
    "orange": "oranges",
    "broccoli": "broccoli",
    "carrot": "carrot carrots",
    "hot dog": "hotdog",
    "pizza": "pizza pizzas",
    "donut": "donut donuts doughnut",
    "cake": "cake cakes",
    "chair": "chair chairs",
    "couch": "couch sofa",
    "potted plant": "plant plants",
    "bed": "bed",
    "dining table": "table tables",
    "toilet": "toilet toilets",
    "tv": "tv television",
    "laptop": "laptop laptops computer",
    "mouse": "mouse",
    "remote": "remote",
    "keyboard": "keyboard",
    "cell phone": "phone cellphone",
    "microwave": "microwave",
    "oven": "oven stove",
    "toaster": "toaster",
    "sink": "sink",
    "refrigerator": "refrigerator fridge",
    "book": "book books",
    "clock": "clock",
    "vase": "vase",
    "scissors": "scissors",
    "teddy bear": "teddy",
    "hair drier": "hairdryer",
    "toothbrush": "toothbrush",
}
CATEGORY_WORDS: dict[str, str] = {
    word: category for category, words in _WORDS.items() for word in words.split()
}
"""Lower-cased caption word -> COCO category name (79 of the 80 categories)."""


@dataclasses.dataclass
class ObjectPointing:
    """Counts of object words over a corpus, with the two baselines on the same words.

    Attributes:
        hits: words whose attention peak overlaps a box of their category.
        total: words scored (naming a category the image has a box of).
        centre_hits: of the same words, how many the centre cell would hit.
        uniform_hits: the expected hits of a uniformly random cell (a sum of shares).
        unboxed: object words naming a category with no box in their image (not scored).
        by_category: category -> [hits, total].
    """

    hits: int = 0
    total: int = 0
    centre_hits: int = 0
    uniform_hits: float = 0.0
    unboxed: int = 0
    by_category: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.hits / self.total if self.total else 0.0

    @property
    def centre_accuracy(self) -> float:
        return self.centre_hits / self.total if self.total else 0.0

    @property
    def uniform_accuracy(self) -> float:
        return self.uniform_hits / self.total if self.total else 0.0

    def add(self, other: ObjectPointing) -> None:
        self.hits += other.hits
        self.total += other.total
        self.centre_hits += other.centre_hits
        self.uniform_hits += other.uniform_hits
        self.unboxed += other.unboxed
        for category, (hits, total) in other.by_category.items():
            counts = self.by_category.setdefault(category, [0, 0])
            counts[0] += hits
            counts[1] += total


def object_pointing(
    words: Sequence[str],
    attention,
    boxes: Iterable[tuple[str, Sequence[float]]],
    image_size: tuple[float, float],
    *,
    category_words: Mapping[str, str] = CATEGORY_WORDS,
) -> ObjectPointing:
    """Scores one caption's attention against the boxes of its image.

    Args:
        words: the caption's words (tokens, as the model wrote them); case is ignored.
        attention: ``(steps, H, W)``, step ``t`` being where the model looked
            for word ``t``; at least ``len(words)`` steps.
        boxes: ``(category, (x0, y0, x1, y1))`` in pixels of the original image, end
            exclusive (COCO's ``[x, y, width, height]`` is ``(x, y, x + width, y + height)``).
        image_size: ``(width, height)`` of the original image, in pixels.
        category_words: word -> category name.

    Returns:
        The `ObjectPointing` counts of this caption.
    """
    attention = np.asarray(attention)
    if attention.ndim != 3 or attention.shape[0] < len(words):
        raise ValueError(
            "Expected attention of shape (steps, H, W) with a step per word. Received: "
            f"shape={attention.shape} for {len(words)} words"
        )
    grid = attention.shape[1:]
    cells: dict[str, np.ndarray] = {}
    for category, box in boxes:
        covered = cells_overlapping_box(box, image_size, grid)
        cells[category] = cells[category] | covered if category in cells else covered
    centre = (grid[0] // 2, grid[1] // 2)
    counts = ObjectPointing()
    for step, word in enumerate(words):
        category = category_words.get(str(word).lower())
        if category is None:
            continue
        if category not in cells:
            counts.unboxed += 1
            continue
        covered = cells[category]
        peak = np.unravel_index(int(np.argmax(attention[step])), grid)
        hit = bool(covered[peak])
        counts.hits += int(hit)
        counts.total += 1
        counts.centre_hits += int(covered[centre])
        counts.uniform_hits += float(covered.mean())
        tally = counts.by_category.setdefault(category, [0, 0])
        tally[0] += int(hit)
        tally[1] += 1
    return counts
