"""Telling the caller that an output does not cover its whole input (`TruncationWarning`).

A task's `results` (what `zoo.load(...)(...)` and `zoo predict` return) reads
from the signature's outputs whether decoding stopped at `max_length` or could
not reach every word, and warns with `warn_truncated`; evaluation counts such
outputs, and the inputs longer than training's limit, in its metrics
(`cut_lines` writes them in the log).
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings

from zoo.tasks.base import TruncationWarning

PREVIEW_WORDS = 6
"""The first words of an input a warning quotes."""

_ZOO = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


input_positions: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "input_positions", default=None
)
"""Where each item of the batch being decoded stands among the caller's inputs (0-based).

`zoo.load` decodes a long list in sorted batches and sets it, so that a
warning names the input as the caller numbers them.
"""


def warn_truncated(noun: str, index: int, text: str, why: str, *, words: bool = True) -> None:
    """Warns (`TruncationWarning`) that the output of batch item `index` does not cover its input.

    The message names the item ("sentence 3", 1-based among the caller's
    inputs when `input_positions` is set, else "sentence 2 of the batch",
    0-based), its number of words and first words, then `why`:
    ``sentence 3 (2,800 words, 'The cat sat on the mat ...'): ...``.
    With `words=False`, `text` is a name (an image's file), quoted as it is.
    The warning points at the first caller outside `zoo` (`model.parse(...)`).
    """
    split = text.split()
    preview = " ".join(split[:PREVIEW_WORDS]) + (" ..." if len(split) > PREVIEW_WORDS else "")
    count = "1 word" if len(split) == 1 else f"{len(split):,} words"
    described = f"{count}, {preview!r}" if words else repr(text)
    positions = input_positions.get()
    if positions is not None and index < len(positions):
        where = f"{noun} {positions[index] + 1}"
    else:
        where = f"{noun} {index} of the batch"
    warnings.warn(
        f"{where} ({described}): {why}",
        TruncationWarning,
        stacklevel=_caller_outside_zoo(),
    )


def _caller_outside_zoo() -> int:
    """The `stacklevel` of the first frame outside the `zoo` package (the user's call)."""
    level, frame = 2, sys._getframe(2)  # level 1: `warn_truncated`; 2: its caller
    while frame is not None and frame.f_code.co_filename.startswith(_ZOO):
        level, frame = level + 1, frame.f_back
    return level


def cut_lines(over_long: int, over_long_text: str, cut: int, cut_text: str) -> list[str]:
    """The evaluation log's lines on inputs past training's limit and on cut outputs.

    `test: {over_long} {over_long_text}` and `test: {cut} {cut_text}`, each
    only when its count is not 0: training drops the over-long examples,
    evaluation decodes and scores every one.
    """
    lines = []
    if over_long:
        lines.append(f"test: {over_long} {over_long_text}")
    if cut:
        lines.append(f"test: {cut} {cut_text}")
    return lines
