"""Attention heatmaps, caption attention overlays and quality-vs-length curves, off screen.

Figures are built with `matplotlib.figure.Figure` on the Agg canvas, never
through pyplot: nothing opens a window, nothing is kept in pyplot's global
figure list (so a loop over thousands of sentences does not leak), and the
module works on a headless server. PNGs are written to a temporary file and
renamed, so a half-written image never appears.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from zoo.atomic_file import write_atomically

__all__ = [
    "plot_attention",
    "plot_bleu_by_length",
    "plot_caption_attention",
    "save_figure",
    "upsample_attention",
]

# Inches per token: 60 x 60 tokens gives a 15-inch heatmap, readable at 100 dpi
# with 8-point labels; short sentences keep a sensible minimum size.
_CELL_INCHES = 0.25
_MIN_SIDE_INCHES = 2.5
_TICK_FONT_SIZE = 8
_DPI = 100
# Caption attention panels: about 2 inches wide each, plus room for the word.
_PANEL_INCHES = 2.0
_PANEL_TITLE_INCHES = 0.35
# Brightness of a pixel the model did not look at at all (a fully attended
# pixel keeps its own): dark enough to show the focus, light enough to keep
# the scene recognisable.
_UNATTENDED_BRIGHTNESS = 0.25


def _token_text(token: object) -> str:
    if isinstance(token, bytes):
        return token.decode("utf-8", errors="replace")
    return str(token)


def plot_attention(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heatmap of attention weights: output tokens down, source tokens across.

    Source tokens label the x axis at the top (rotated 90 degrees), output
    tokens the y axis, as in Bahdanau et al. (2015), Figure 3. Weights are
    drawn with the viridis colormap on [0, 1] (on their own range when they
    fall outside it, e.g. raw scores) with a colorbar. The figure grows with
    the number of tokens.

    Args:
        weights: array-like of shape ``(len(target_tokens), len(source_tokens))``
            or larger (decoder padding, which is trimmed off).
        source_tokens: labels of the columns (tokens or bytes).
        target_tokens: labels of the rows.
        path: where to write a PNG; parent folders are created.
        title: optional figure title.
        ax: draw into these axes instead of a new figure.

    Returns:
        The `matplotlib.figure.Figure` drawn on.

    Raises:
        ValueError: weights not 2-D, or smaller than the token lists.
    """
    weights = np.asarray(weights, dtype=np.float64)
    source = [_token_text(t) for t in source_tokens]
    target = [_token_text(t) for t in target_tokens]
    needed = (len(target), len(source))
    if weights.ndim != 2 or weights.shape[0] < needed[0] or weights.shape[1] < needed[1]:
        raise ValueError(
            "Expected weights of shape (target_tokens, source_tokens) at least "
            f"{needed} for {needed[0]} target and {needed[1]} source tokens. "
            f"Received: weights.shape={weights.shape}"
        )
    if 0 in needed:
        raise ValueError(
            f"Expected at least one source and one target token. Received: "
            f"{needed[1]} source tokens and {needed[0]} target tokens"
        )
    weights = weights[: needed[0], : needed[1]]

    if ax is None:
        longest = max(len(t) for t in source + target)
        label_inches = 0.5 + 0.07 * longest  # room for the tick labels
        width = max(_MIN_SIDE_INCHES, _CELL_INCHES * needed[1]) + label_inches + 1.2
        height = max(_MIN_SIDE_INCHES, _CELL_INCHES * needed[0]) + label_inches + 0.3
        if title:
            height += 0.4
        figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
    else:
        figure = ax.figure

    finite = weights[np.isfinite(weights)]
    in_unit_range = finite.size == 0 or (finite.min() >= 0.0 and finite.max() <= 1.0)
    vmin, vmax = (0.0, 1.0) if in_unit_range else (None, None)
    image = ax.imshow(
        weights, cmap="viridis", vmin=vmin, vmax=vmax, aspect="equal", interpolation="nearest"
    )
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xticks(range(needed[1]), source, rotation=90, fontsize=_TICK_FONT_SIZE)
    ax.set_yticks(range(needed[0]), target, fontsize=_TICK_FONT_SIZE)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.tick_params(length=0)
    colorbar = figure.colorbar(image, ax=ax, shrink=min(1.0, max(0.3, 8 / needed[0])))
    colorbar.ax.tick_params(labelsize=_TICK_FONT_SIZE)
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_bleu_by_length(
    series: Mapping[str, Sequence[Mapping]],
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """BLEU against source-sentence length, one line per model.

    The shape of Bahdanau et al. (2015), Figure 2. Each series is the output
    of `zoo.metrics.bleu.bleu_by_length`; buckets with no sentence (bleu
    None) leave a gap in the line. When all series count the same sentences
    per bucket, the counts are shown under the bucket labels.

    Args:
        series: model name -> list of ``{"bucket", "count", "bleu"}`` dicts,
            all with the same buckets in the same order.
        path: where to write a PNG; parent folders are created.
        title: optional figure title.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    if not series:
        raise ValueError("Expected at least one series. Received: series={}")
    names = list(series)
    buckets = [row["bucket"] for row in series[names[0]]]
    for name in names[1:]:
        other = [row["bucket"] for row in series[name]]
        if other != buckets:
            raise ValueError(
                f"Expected every series to have the same buckets. Received: "
                f"{names[0]!r} has {buckets}, {name!r} has {other}"
            )
    counts = [tuple(row.get("count") for row in series[name]) for name in names]
    labels = list(buckets)
    if len(set(counts)) == 1 and None not in counts[0]:
        labels = [
            f"{bucket}\n(n={count})" for bucket, count in zip(buckets, counts[0], strict=True)
        ]

    figure = Figure(figsize=(max(5.0, 0.9 * len(buckets) + 2), 4.0), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    positions = np.arange(len(buckets))
    for name in names:
        scores = [math.nan if row["bleu"] is None else row["bleu"] for row in series[name]]
        ax.plot(positions, scores, marker="o", label=name)
    ax.set_xticks(positions, labels, fontsize=_TICK_FONT_SIZE)
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("BLEU")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(figure, path)
    return figure


def upsample_attention(attention, image_shape: Sequence[int], *, smooth: bool = True) -> np.ndarray:
    """Stretches one decoding step's attention grid over the image, peak scaled to 1.

    The image is divided into the attention's ``h`` x ``w`` grid of equal
    cells, cell ``(i, j)`` covering rows ``[i * H / h, (i + 1) * H / h)`` and
    columns likewise (the geometry of
    `zoo.metrics.caption_metrics.pointing_accuracy`); a pixel belongs to the
    cell holding its centre. Without smoothing every pixel takes its cell's
    weight. With smoothing, that blocky map is blurred with a Gaussian of
    standard deviation half a cell along each axis, the grid's border cells
    extended outwards (edge padding), which gives the soft blobs of Xu et al.
    (2015), Figure 3. The blur is computed exactly, cell by cell, from the
    Gaussian's cumulative distribution, so it costs ``O(H * h + W * w)``
    besides the two matrix products. The map is then divided by its maximum.

    Args:
        attention: array-like ``(h, w)``, the non-negative weights of one
            decoding step over the feature grid.
        image_shape: ``(H, W)``, the image's height and width in pixels.
        smooth: blur the map (the default) or keep the cells' sharp edges.

    Returns:
        A float32 array ``(H, W)`` with values in ``[0, 1]`` and maximum 1;
        all zeros when the weights are all zero (negative values end up 0).

    Raises:
        ValueError: attention not a non-empty 2-D array of finite numbers, or
            ``image_shape`` not two positive integers.
    """
    grid = np.asarray(attention, dtype=np.float64)
    height, width = _pixel_shape(image_shape)
    if grid.ndim != 2 or 0 in grid.shape:
        raise ValueError(
            "Expected attention of shape (grid_height, grid_width), not empty. "
            f"Received: attention.shape={grid.shape}, image_shape={(height, width)}"
        )
    if not np.all(np.isfinite(grid)):
        raise ValueError(
            f"Expected finite attention weights. Received: attention of shape {grid.shape} "
            "with NaN or infinite values"
        )
    rows = _upsampling_matrix(grid.shape[0], height, smooth)
    columns = _upsampling_matrix(grid.shape[1], width, smooth)
    return _scale_to_unit_peak(rows @ grid @ columns.T)


def plot_caption_attention(
    image,
    words: Sequence[str | bytes],
    attention,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    columns: int = 5,
    smooth: bool = True,
) -> Figure:
    """Where the captioning model looked for each word, as in Show, Attend and Tell.

    Panels are laid out ``columns`` to a row: first the plain image (titled
    ``title``, or "image"), then one panel per word, titled with the word,
    showing the image through that step's attention: each pixel keeps
    ``0.25 + 0.75 * a`` of its brightness, ``a`` being the attention map from
    `upsample_attention` (peak 1). What the model attended to stays as it is
    and the rest is dimmed to a quarter, still recognisable; this reads more
    clearly than the paper's white alpha mask, which washes out the very
    region it points at. Each panel is about 2 inches on its longer side.
    Where a step's weights sum to less than 1 (a model with a visual
    sentinel, which took the rest), its title adds the image's share, as in
    "dog (image 0.84)"; Lu et al. (2017) plot the same per word.

    Args:
        image: ``(H, W, 3)`` RGB array, uint8 or float with values in
            ``[0, 255]`` (as `zoo.data.images` decodes them; values outside
            are clipped), ``(H, W)`` or ``(H, W, 1)`` grayscale, ``(H, W, 4)``
            (alpha dropped), or a PIL image.
        words: the generated words, str or bytes, ``T`` of them; may be empty.
        attention: ``(T', h, w)`` weights of each decoding step over the
            feature grid, or ``(T', h * w)`` flattened row-major over a square
            grid, with ``T' >= T``; step ``t`` produced word ``t``, and the
            steps after the last word (end token, padding) are ignored.
        path: where to write a PNG; parent folders are created.
        title: title of the plain image's panel.
        columns: panels per row, at least 1.
        smooth: passed to `upsample_attention`.

    Returns:
        The `matplotlib.figure.Figure`, with ``T + 1`` axes.

    Raises:
        ValueError: image neither 2-D nor 3-D with 1, 3 or 4 channels; the
            attention not 2-D (over a square grid) or 3-D; fewer attention
            steps than words; ``columns`` below 1.
    """
    pixels = _image_pixels(image)
    grids = _caption_attention_grids(attention)
    labels = [_token_text(word) for word in words]
    if grids.shape[0] < len(labels):
        raise ValueError(
            f"Expected at least one attention step per word. Received: {len(labels)} words "
            f"and attention.shape={np.shape(attention)}"
        )
    grids = grids[: len(labels)]  # steps after the last word are ignored
    if not np.all(np.isfinite(grids)):
        raise ValueError(
            f"Expected finite attention weights for the {len(labels)} words. "
            f"Received: attention of shape {np.shape(attention)} with NaN or infinite values"
        )
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(
            f"Expected columns to be a positive integer. Received: columns={columns!r}"
        )

    height, width = pixels.shape[:2]
    panels = len(labels) + 1
    panel_columns = min(int(columns), panels)
    panel_rows = math.ceil(panels / panel_columns)
    scale = _PANEL_INCHES / max(height, width)
    panel_width = max(0.5, width * scale)
    panel_height = max(0.5, height * scale) + _PANEL_TITLE_INCHES
    figure = Figure(
        figsize=(panel_columns * panel_width + 0.2, panel_rows * panel_height + 0.2),
        dpi=_DPI,
        layout="constrained",
    )
    FigureCanvasAgg(figure)

    def panel(index: int, shown: np.ndarray, label: str) -> None:
        ax = figure.add_subplot(panel_rows, panel_columns, index + 1)
        ax.imshow(shown)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=10)

    panel(0, pixels, title if title else "image")
    row_matrix = _upsampling_matrix(grids.shape[1], height, smooth)
    column_matrix = _upsampling_matrix(grids.shape[2], width, smooth)
    for step, label in enumerate(labels):
        share = float(grids[step].sum())
        if share < _FULL_SHARE:
            label = f"{label} (image {share:.2f})"
        attended = _scale_to_unit_peak(row_matrix @ grids[step] @ column_matrix.T)
        brightness = _UNATTENDED_BRIGHTNESS + (1.0 - _UNATTENDED_BRIGHTNESS) * attended
        panel(step + 1, pixels * brightness[:, :, np.newaxis], label)
    if path is not None:
        save_figure(figure, path)
    return figure


# A step whose weights sum below this gave the rest to a sentinel (softmax rows sum to 1).
_FULL_SHARE = 0.995


def _pixel_shape(image_shape) -> tuple[int, int]:
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 2 or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in shape
    ):
        raise ValueError(
            f"Expected image_shape (height, width) of two positive integers. "
            f"Received: image_shape={image_shape!r}"
        )
    return int(shape[0]), int(shape[1])


_erf = np.frompyfunc(math.erf, 1, 1)


def _upsampling_matrix(cells: int, pixels: int, smooth: bool) -> np.ndarray:
    """``(pixels, cells)`` matrix taking a grid axis to the image axis (rows sum to 1)."""
    if not smooth:
        # The cell holding pixel y's centre: floor((y + 0.5) * cells / pixels), in integers.
        cell = (2 * np.arange(pixels) + 1) * cells // (2 * pixels)
        matrix = np.zeros((pixels, cells))
        matrix[np.arange(pixels), cell] = 1.0
        return matrix
    # The blocky map blurred by a Gaussian: the weight of cell i at pixel y is
    # the Gaussian's mass, centred on y's centre, over the cell's extent; the
    # first and last cells extend to infinity (edge padding).
    cell_size = pixels / cells
    edges = np.arange(cells + 1) * cell_size
    edges[0], edges[-1] = -np.inf, np.inf
    centres = np.arange(pixels) + 0.5
    sigma = 0.5 * cell_size
    z = (edges[np.newaxis, :] - centres[:, np.newaxis]) / (sigma * math.sqrt(2.0))
    cumulative = 0.5 * (1.0 + _erf(z).astype(np.float64))
    return np.diff(cumulative, axis=1)


def _scale_to_unit_peak(values: np.ndarray) -> np.ndarray:
    peak = float(values.max())
    if peak > 0.0:
        values = values / peak
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def _image_pixels(image) -> np.ndarray:
    """RGB float64 ``(H, W, 3)`` in ``[0, 1]`` from an array or a PIL image."""
    from PIL import Image

    if isinstance(image, Image.Image):
        image = image.convert("RGB")
    pixels = np.asarray(image)
    shape = pixels.shape
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if (
        pixels.ndim != 3
        or pixels.shape[2] not in (1, 3, 4)
        or 0 in pixels.shape
        or not (np.issubdtype(pixels.dtype, np.number) or pixels.dtype == np.bool_)
    ):
        raise ValueError(
            "Expected an image of shape (height, width, 3), (height, width) or a PIL image. "
            f"Received: image.shape={shape}, dtype={pixels.dtype}"
        )
    pixels = pixels[:, :, :3].astype(np.float64)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.clip(np.nan_to_num(pixels), 0.0, 255.0) / 255.0


def _caption_attention_grids(attention) -> np.ndarray:
    grids = np.asarray(attention, dtype=np.float64)
    if grids.ndim == 2:
        side = math.isqrt(grids.shape[1])
        if side == 0 or side * side != grids.shape[1]:
            raise ValueError(
                "Expected flat attention (steps, h * w) over a square grid. "
                f"Received: attention.shape={grids.shape}"
            )
        grids = grids.reshape(grids.shape[0], side, side)
    if grids.ndim != 3 or 0 in grids.shape[1:]:
        raise ValueError(
            "Expected attention of shape (steps, h, w) or (steps, h * w). "
            f"Received: attention.shape={grids.shape}"
        )
    return grids


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write ``figure`` as a PNG at ``path``, atomically, creating folders."""
    path = os.fspath(path)
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=_DPI), binary=True)
