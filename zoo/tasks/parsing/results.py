"""What an exported parser gives back in Python: `ParseResult`."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from zoo.tasks.base import Result, strings


@dataclasses.dataclass
class ParseResult(Result):
    """One parse: the tree, the linearised symbols, the words and the attention.

    `tree` is bracketed with the sentence's words in place of the ``XX``
    placeholders, ``"(S (NP John) (VP has (NP a dog)) .)"``; `linearized` is
    what the decoder wrote, ``"(S (NP XX )NP (VP XX (NP XX XX )NP )VP XX )S"``.
    `attention` has shape `(len(tokens), len(source_tokens))`, the source
    tokens being the words and ``[END]``. An empty sentence gives
    ``tree == ""``, no tokens and score 0.
    """

    sentence: str
    tree: str
    linearized: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray
    score: float

    @classmethod
    def from_outputs(cls, sentences: list[str], out: dict) -> list[ParseResult]:
        results = []
        for i, sentence in enumerate(sentences):
            tokens = strings(out["tokens"][i])
            words = strings(out["source_tokens"][i])
            results.append(
                cls(
                    sentence=sentence,
                    tree=out["tree"][i].decode("utf-8"),
                    linearized=out["linearized"][i].decode("utf-8"),
                    tokens=tokens,
                    source_tokens=words,
                    attention=out["attention"][i][: len(tokens), : len(words)],
                    score=float(out["score"][i]),
                )
            )
        return results

    @property
    def text(self) -> str:
        """The tree string (what `zoo predict` prints)."""
        return self.tree

    @property
    def words(self) -> list[str]:
        return self.source_tokens[:-1]

    def to_tree(self):
        """The parse as a `zoo.data.treebank.Tree` (``XX`` preterminals over the words).

        Raises:
            ValueError: the output is not a well-formed tree (possible only
                when the recipe decoded with `decode.constrained: false`);
                `zoo.data.treebank.repair_linearized` fixes it.
        """
        from zoo.data.treebank import delinearize

        return delinearize(self.tokens, self.words)

    def draw(self) -> str:
        """The tree drawn as text (see `zoo.data.treebank.Tree.draw`); "" for an empty sentence."""
        return self.to_tree().draw() if self.tokens else ""

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "linearized": self.linearized,
            "score": self.score,
        }

    def display(self) -> str:
        return f"{self.text}\n{self.draw()}" if self.tokens else self.text

    def plot(self, path: str | os.PathLike | None = None, **kwargs):
        """The attention heatmap (`zoo.plots.plot_attention`): words across, symbols down."""
        from zoo.plots import plot_attention

        return plot_attention(self.attention, self.source_tokens, self.tokens, path, **kwargs)
