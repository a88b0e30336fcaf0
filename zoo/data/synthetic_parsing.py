"""Parsing examples: sentences with their gold trees, synthetic or from a treebank.

The embedded default data set of the parsing recipe reuses the grammar of
the synthetic translation language (`zoo.data.synthetic_translation`): its
source sentences come with Penn-style trees (S, NP, VP, PP, SBAR, ADJP...),
so the parser learns the same English-like syntax the translator reads.
Gold trees keep their part-of-speech tags: the model never sees them (they
become `XX` in the linearised target), but EVALB-style scoring deletes
punctuation by the gold tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from zoo.data.synthetic_translation import generate_source_trees
from zoo.data.treebank import Tree, clean_tree, linearize, parse_bracketed


@dataclasses.dataclass(frozen=True)
class ParseExample:
    """A sentence and its cleaned gold tree (with part-of-speech tags)."""

    tree: Tree

    @property
    def words(self) -> list[str]:
        return self.tree.leaves()

    @property
    def sentence(self) -> str:
        return " ".join(self.words)

    @property
    def linearized(self) -> str:
        """The decoder's target: `(S (NP XX XX )NP ... )S`."""
        return " ".join(linearize(self.tree))


def examples_from_trees(trees: Iterable[Tree]) -> list[ParseExample]:
    """Cleans treebank trees (traces, function tags, outer bracket); trees left empty are skipped."""
    out = []
    for tree in trees:
        cleaned = clean_tree(tree)
        if cleaned is not None:
            out.append(ParseExample(cleaned))
    return out


def generate_parse_examples(
    size: int, seed: int = 0, *, min_words: int = 3, max_words: int = 60
) -> list[ParseExample]:
    """`size` seeded sentences of the synthetic grammar with their trees (deterministic)."""
    bracketed = generate_source_trees(size, seed, min_words=min_words, max_words=max_words)
    return examples_from_trees(
        parse_bracketed(text, source="synthetic grammar")[0] for text in bracketed
    )
