"""What an exported parser gives back in Python: `ParseResult`."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from zoo.tasks.base import Result, strings
from zoo.tasks.truncation import warn_truncated

PLACEHOLDER = "XX"  # as `zoo.tasks.parsing.task.PLACEHOLDER` (imported there: no TensorFlow here)


@dataclasses.dataclass
class ParseResult(Result):
    """One parse: the tree, the linearised symbols, the words and the attention.

    `tree` is bracketed with the sentence's words in place of the ``XX``
    placeholders, ``"(S (NP John) (VP has (NP a dog)) .)"``; `linearized` is
    what the decoder wrote, ``"(S (NP XX )NP (VP XX (NP XX XX )NP )VP XX )S"``.
    `attention` has shape `(len(tokens), len(source_tokens))`, the source
    tokens being the words and ``[END]``. An empty sentence gives
    ``tree == ""``, no tokens and score 0.

    `parsed_words` is the number of words (from the first) the decoder's
    tree covers. When a tree over every word does not fit in `max_length`
    symbols, the decoder parses the first words and the others are attached
    flat under the root (their attention rows are zeros); with `max_length`
    below 4 the tree is empty. Either way a `zoo.TruncationWarning` names
    the sentence.
    """

    sentence: str
    tree: str
    linearized: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray
    score: float
    parsed_words: int = 0

    @classmethod
    def from_outputs(cls, sentences: list[str], out: dict) -> list[ParseResult]:
        results = []
        for i, sentence in enumerate(sentences):
            tokens = strings(out["tokens"][i])
            words = strings(out["source_tokens"][i])
            # Exports older than `parsed_words` never attach words: count the XX.
            parsed = (
                int(out["parsed_words"][i])
                if "parsed_words" in out
                else sum(t == PLACEHOLDER for t in tokens)
            )
            result = cls(
                sentence=sentence,
                tree=out["tree"][i].decode("utf-8"),
                linearized=out["linearized"][i].decode("utf-8"),
                tokens=tokens,
                source_tokens=words,
                attention=out["attention"][i][: len(tokens), : len(words)],
                score=float(out["score"][i]),
                parsed_words=parsed,
            )
            cut = "truncated" in out and bool(out["truncated"][i])
            why = result.truncation(cut)
            if why:
                warn_truncated("sentence", i, sentence, why)
            results.append(result)
        return results

    def truncation(self, cut: bool = False) -> str:
        """Why the tree does not cover every word as the decoder parsed them ("" when it does).

        `cut`: the decoding hit `max_length` before it ended (unconstrained decoding).
        """
        n = len(self.words)
        if cut:
            return (
                f"the decoding hit max_length ({len(self.tokens)} symbols) before the tree "
                "was closed: the output is cut (zoo.data.treebank.repair_linearized mends it)"
            )
        if self.parsed_words >= n:
            return ""
        limit = (
            "too long for max_length (decode.max_length, or the max_length option): "
            f"a tree over {n:,} words needs at least {n + 3:,} symbols"
        )
        if not self.tokens:
            return f"{limit}, and no tree fits; the tree is empty"
        if sum(t == PLACEHOLDER for t in self.tokens) < n:
            return f"{limit}; the tree covers words 1-{self.parsed_words:,} only"
        return (
            f"{limit}; the parser's tree covers words 1-{self.parsed_words:,}, words "
            f"{self.parsed_words + 1:,}-{n:,} are attached flat under the root"
        )

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
