"""What an exported translation model gives back in Python: `TranslationResult`."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from zoo.tasks.base import Result, strings
from zoo.tasks.truncation import warn_truncated


@dataclasses.dataclass
class TranslationResult(Result):
    """One translation: the text, its output tokens, the source tokens and the attention.

    `attention` has shape `(len(tokens), len(source_tokens))`: row `t` is the
    distribution over the source tokens when output token `t` was produced.
    `score` is the sum of the output's log-probabilities (end token included)
    for greedy search (`beam_size=1` in the recipe), and that sum divided by
    the GNMT length penalty for beam search. An empty input gives `text == ""`,
    no tokens and score 0. `truncated`: the decoding hit `max_length` before
    the end token, so the translation is cut (a `zoo.TruncationWarning` names
    the input).
    """

    source: str
    text: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray
    score: float
    truncated: bool = False

    @classmethod
    def from_outputs(cls, sources: list[str], out: dict) -> list[TranslationResult]:
        results = []
        for i, source in enumerate(sources):
            tokens = strings(out["tokens"][i])
            source_tokens = strings(out["source_tokens"][i])
            # Exports older than `truncated` cannot tell: no warning.
            truncated = "truncated" in out and bool(out["truncated"][i])
            results.append(
                cls(
                    source=source,
                    text=out["translation"][i].decode("utf-8"),
                    tokens=tokens,
                    source_tokens=source_tokens,
                    attention=out["attention"][i][: len(tokens), : len(source_tokens)],
                    score=float(out["score"][i]),
                    truncated=truncated,
                )
            )
            if truncated:
                warn_truncated(
                    "input",
                    i,
                    source,
                    f"the translation hit max_length ({len(tokens)} tokens: decode.max_length, "
                    "or the max_length option) before its end token; it is cut there",
                )
        return results

    def plot(self, path: str | os.PathLike | None = None, **kwargs):
        """The attention heatmap (`zoo.plots.plot_attention`): source across, output down."""
        from zoo.plots import plot_attention

        return plot_attention(self.attention, self.source_tokens, self.tokens, path, **kwargs)
