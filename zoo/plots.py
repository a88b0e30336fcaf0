"""Attention heatmaps and quality-vs-length curves, drawn off screen.

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

__all__ = ["plot_attention", "plot_bleu_by_length", "save_figure"]

# Inches per token: 60 x 60 tokens gives a 15-inch heatmap, readable at 100 dpi
# with 8-point labels; short sentences keep a sensible minimum size.
_CELL_INCHES = 0.25
_MIN_SIDE_INCHES = 2.5
_TICK_FONT_SIZE = 8
_DPI = 100


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


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write ``figure`` as a PNG at ``path``, atomically, creating folders."""
    path = os.fspath(path)
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=_DPI), binary=True)
