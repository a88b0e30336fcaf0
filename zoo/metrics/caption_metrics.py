"""Caption quality (BLEU, CIDEr-D, ROUGE-L, METEOR) and attention pointing accuracy.

`caption_scores` runs the scorers of pycocoevalcap, the Python 3 package of
the MS COCO caption evaluation that captioning papers report, so our figures
are comparable with theirs: corpus BLEU-1..4 (closest reference length for
the brevity penalty), CIDEr-D (what that package calls "CIDEr": clipped
tf-idf n-gram cosines, a Gaussian length penalty with sigma 6, times 10),
ROUGE-L (LCS F-measure with beta 1.2, the mean over images) and, on request,
METEOR 1.5. All on the 0-1 scale the COCO evaluation prints (CIDEr-D can
exceed 1; it is 10 for a caption equal to all its references of 4 or more
words whose n-grams are rare in the corpus).

Tokenisation is done here, in Python, instead of with the COCO evaluation's
Stanford PTBTokenizer, which needs Java and writes temporary files into the
installed package: text is lower-cased, every Unicode punctuation character
(category P*) becomes a space, and words are what lies between whitespace.
For captions without punctuation (ours) the words are the ones the PTB
tokenizer gives; otherwise they can differ slightly ("it's" -> "it s" here,
"it 's" there; "t-shirt" -> "t shirt" here, "t-shirt" there).

`pointing_accuracy` scores the attention itself on data with object boxes
(`zoo.data.synthetic_scenes`): for every word that names an object, the
attention map of the step that produced the word should peak on that object.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "PointingCounts",
    "caption_scores",
    "corpus_pointing_accuracy",
    "pointing_accuracy",
    "tokenize_caption",
]

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels, end exclusive."""


def tokenize_caption(text: str) -> str:
    """Lower-cases, turns punctuation into spaces and joins the words with single spaces.

    Example: ``tokenize_caption("A Dog, running!")`` -> ``"a dog running"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected a caption string. Received: {text!r}")
    characters = (" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    return " ".join("".join(characters).split())


def caption_scores(
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[str],
    *,
    meteor: bool = False,
) -> dict[str, float]:
    """Corpus caption scores with the COCO evaluation's scorers.

    CIDEr-D weighs n-grams by their document frequency among the references
    of this corpus, so it depends on the whole corpus: it is 0 for a corpus
    of one image, and an n-gram that occurs in the references of every image
    counts for nothing. BLEU uses the COCO evaluation's tiny smoothing
    constants, so a corpus with no matching 4-gram gets a BLEU-4 close to,
    but not exactly, 0.

    Args:
        references: for each image, one or more reference captions.
        hypotheses: one generated caption per image, aligned with ``references``.
        meteor: also compute METEOR 1.5. It runs the Java jar of pycocoevalcap
            (``java`` must be on PATH) and takes some 10-20 s to start.

    Returns:
        ``{"bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l"}`` (and
        ``"meteor"``) as floats on the 0-1 scale (CIDEr-D 0-10).
    """
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(
            "Expected one list of references per hypothesis. Received: "
            f"{len(hypotheses)} hypotheses and {len(references)} lists of references"
        )
    if not hypotheses:
        raise ValueError("Expected at least one caption. Received: an empty corpus")
    gts, res = {}, {}
    for index, (refs, hypothesis) in enumerate(zip(references, hypotheses, strict=True)):
        if isinstance(refs, str) or not refs:
            raise ValueError(
                "Expected a non-empty list of reference captions per image. "
                f"Received: references[{index}]={refs!r}"
            )
        gts[index] = [tokenize_caption(r) for r in refs]
        if not all(gts[index]):
            raise ValueError(
                f"Expected references with at least one word. Received: references[{index}]={refs!r}"
            )
        res[index] = [tokenize_caption(hypothesis)]
    if meteor and shutil.which("java") is None:
        raise RuntimeError("METEOR needs Java: no `java` on PATH. Use meteor=False.")

    # Imported here so that pointing accuracy works without pycocoevalcap.
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"bleu_{n}": float(b) for n, b in enumerate(bleu, start=1)}
    scores["cider"] = float(Cider().compute_score(gts, res)[0])
    scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            scores["meteor"] = float(scorer.compute_score(gts, res)[0])
        finally:
            del scorer  # stops the Java process
    return scores


class PointingCounts(NamedTuple):
    """Words whose attention peak fell on the object they name, out of all object words."""

    hits: int
    total: int

    @property
    def accuracy(self) -> float:
        """``hits / total``, or 0.0 when no word names an object."""
        return self.hits / self.total if self.total else 0.0


def _image_shape(image_size: int | Sequence[int]) -> tuple[int, int]:
    if np.ndim(image_size) == 0:
        shape = (image_size, image_size)
    else:
        shape = tuple(image_size)
    if len(shape) != 2 or any(
        isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in shape
    ):
        raise ValueError(
            "Expected image_size as a positive integer or (height, width). "
            f"Received: image_size={image_size!r}"
        )
    return int(shape[0]), int(shape[1])


def _attention_grids(attention, grid_shape: Sequence[int] | None) -> np.ndarray:
    attention = np.asarray(attention)
    if attention.ndim == 3:
        if grid_shape is not None and tuple(grid_shape) != attention.shape[1:]:
            raise ValueError(
                f"Expected grid_shape to match the attention's grid {attention.shape[1:]}. "
                f"Received: grid_shape={tuple(grid_shape)}"
            )
        return attention
    if attention.ndim != 2:
        raise ValueError(
            "Expected attention of shape (steps, height, width) or (steps, height * width). "
            f"Received: shape={attention.shape}"
        )
    if grid_shape is None:
        side = int(round(attention.shape[1] ** 0.5))
        if side * side != attention.shape[1]:
            raise ValueError(
                "Expected grid_shape for flat attention over a grid that is not square. "
                f"Received: {attention.shape[1]} positions"
            )
        grid_shape = (side, side)
    height, width = grid_shape
    if height * width != attention.shape[1]:
        raise ValueError(
            f"Expected grid_shape with {attention.shape[1]} cells. Received: grid_shape={grid_shape}"
        )
    return attention.reshape(attention.shape[0], height, width)


def cells_overlapping_box(box, image_size: tuple, grid: tuple) -> np.ndarray:
    """Boolean ``(H, W)``: the cells of an ``H`` x ``W`` grid over the image that share part of
    a pixel with ``box`` ``(x0, y0, x1, y1)`` (end exclusive); ``image_size`` is ``(width, height)``.

    Cell ``j`` of a row spans ``[j * width / W, (j + 1) * width / W)``; half-open intervals
    ``[a, b)`` and ``[c, d)`` overlap iff ``a < d`` and ``c < b``, so a box that only touches a
    cell along an edge does not overlap it. The edges are multiplied through by the grid
    size, which keeps integer sizes exact.
    """
    width, height = image_size
    rows, columns = grid
    x0, y0, x1, y1 = box
    j, i = np.arange(columns), np.arange(rows)
    across = (j * width < x1 * columns) & (x0 * columns < (j + 1) * width)
    down = (i * height < y1 * rows) & (y0 * rows < (i + 1) * height)
    return down[:, None] & across[None, :]


def pointing_accuracy(
    attention,
    word_objects: Sequence[int],
    boxes: Sequence[Box],
    image_size: int | Sequence[int],
    *,
    grid_shape: Sequence[int] | None = None,
) -> PointingCounts:
    """Counts the words whose attention peak lies on the object they name, in one caption.

    The image is divided into the attention's ``H`` x ``W`` grid of equal
    cells (cell ``(i, j)`` covers rows ``[i * height / H, (i + 1) * height / H)``
    and columns likewise, edges at fractional pixels when the sizes do not
    divide). For each word ``t`` with ``word_objects[t] = k >= 0`` the peak of
    ``attention[t]`` (the first maximum in row-major order) is a hit when
    the peak cell and object ``k``'s box share at least part of a pixel; a
    cell that only touches the box along an edge is a miss. Overlap rather
    than "the cell's centre inside the box" because coarse grids (6 x 6 cells
    of 16 px on a 96-px image) have cells larger than small objects.

    Args:
        attention: the attention weights of each decoding step, ``(steps, H,
            W)``, or ``(steps, H * W)`` flattened in row-major order (as a
            ``(H, W, C)`` feature map reshaped to ``(H * W, C)``). Step ``t``
            is the step that produced word ``t``; steps after the last word
            (the end token) are ignored.
        word_objects: for each word, the index in ``boxes`` of the object it
            names, or -1 for words that name none (they are not counted).
        boxes: ``(x0, y0, x1, y1)`` pixel boxes, end exclusive.
        image_size: the image's side, or ``(height, width)``, in pixels, in
            the frame of ``boxes``.
        grid_shape: ``(H, W)`` for flat attention; by default the grid is
            taken to be square.

    Returns:
        `PointingCounts` ``(hits, total)``, ``total`` being the number of words
        that name an object; ``.accuracy`` is their ratio.
    """
    height, width = _image_shape(image_size)
    grids = _attention_grids(attention, grid_shape)
    word_objects = [int(k) for k in word_objects]
    if len(word_objects) > grids.shape[0]:
        raise ValueError(
            f"Expected at least one attention step per word. Received: {len(word_objects)} "
            f"words and {grids.shape[0]} steps"
        )
    for k in word_objects:
        if not -1 <= k < len(boxes):
            raise ValueError(
                f"Expected object indices in [-1, {len(boxes)}). Received: word_objects={word_objects}"
            )
    rows, columns = grids.shape[1:]
    hits = total = 0
    for step, k in enumerate(word_objects):
        if k < 0:
            continue
        row, column = np.unravel_index(int(np.argmax(grids[step])), (rows, columns))
        hit = cells_overlapping_box(boxes[k], (width, height), (rows, columns))[row, column]
        hits += int(hit)
        total += 1
    return PointingCounts(hits, total)


def corpus_pointing_accuracy(
    attentions: Sequence,
    word_objects: Sequence[Sequence[int]],
    boxes: Sequence[Sequence[Box]],
    image_size: int | Sequence[int],
    *,
    grid_shape: Sequence[int] | None = None,
) -> PointingCounts:
    """`pointing_accuracy` summed over captions: each object word counts once.

    Args:
        attentions: one attention array per caption (see `pointing_accuracy`),
            or a padded batch ``(batch_size, steps, ...)``.
        word_objects: one list per caption.
        boxes: one list of boxes per caption's image.
        image_size: the side, or ``(height, width)``, shared by all images.
        grid_shape: ``(H, W)`` for flat attention.

    Returns:
        `PointingCounts` over the corpus; ``.accuracy`` is the share of all
        object words that hit (a micro average, not a mean of captions).
    """
    if not len(attentions) == len(word_objects) == len(boxes):
        raise ValueError(
            "Expected as many attention arrays, word_objects and boxes. Received: "
            f"{len(attentions)}, {len(word_objects)} and {len(boxes)}"
        )
    hits = total = 0
    for attention, objects, image_boxes in zip(attentions, word_objects, boxes, strict=True):
        counts = pointing_accuracy(
            attention, objects, image_boxes, image_size, grid_shape=grid_shape
        )
        hits += counts.hits
        total += counts.total
    return PointingCounts(hits, total)
