"""Labelled bracket precision, recall and F1 as EVALB scores them with COLLINS.prm.

Constituency parsers, Vinyals et al. (2015) among them, report the F1 of
the EVALB program (Sekine & Collins 1997) run with its ``COLLINS.prm``
parameter file. This module reimplements that scoring in plain Python so
parses can be scored without building the C program; trees come as
bracketed strings, ``"(TOP (S (NP (DT the) (NN dog)) (VP (VBD barked))))"``,
or as the nested tuples `parse_bracketed` returns.

One deliberate difference from the program: the words to delete as
punctuation are chosen by the gold tree's part-of-speech tags in both
trees, by position. A sequence-to-sequence parser predicts no tags (its
trees carry ``XX``), and EVALB reading those tags would keep the punctuation
of the predicted tree and report a length mismatch. With gold tags in the
predicted tree, the two agree.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "DELETED_LABELS",
    "EQUIVALENT_LABELS",
    "PUNCTUATION_TAGS",
    "BracketScore",
    "evalb",
    "labelled_brackets",
    "parse_bracketed",
]

BracketTree = tuple[str, "str | Sequence[BracketTree]"]
"""``(label, children)`` for a constituent, ``(pos_tag, word)`` for a word."""

Bracket = tuple[str, int, int]
"""A labelled span ``(label, start, end)``, end exclusive, over kept words."""

PUNCTUATION_TAGS = frozenset({",", ":", "``", "''", "."})
"""COLLINS.prm's ``DELETE_LABEL`` punctuation: words with these gold tags are
removed from both trees before spans are counted."""

TRACE_TAG = "-NONE-"

DELETED_LABELS = frozenset({"TOP", "ROOT", "", TRACE_TAG}) | PUNCTUATION_TAGS
"""Labels never counted as brackets (their children still are). COLLINS.prm
deletes ``TOP``; ``ROOT`` and the unlabelled root ``( (S ...))`` of raw Penn
Treebank files are the same node under other names."""

EQUIVALENT_LABELS = {"PRT": "ADVP"}
"""COLLINS.prm's ``EQ_LABEL ADVP PRT``: each label maps to its class name."""

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_FUNCTION_TAG = re.compile(r"[-=]")


@dataclasses.dataclass
class BracketScore:
    """Corpus totals of an EVALB comparison and the scores made from them.

    Attributes:
        matched: brackets of the predicted trees also in the gold trees,
            counted as a multiset per sentence.
        gold: brackets in the gold trees.
        predicted: brackets in the predicted trees.
        sentences: sentence pairs read, the skipped ones included (EVALB's
            "Number of sentence").
        exact_match: scored sentences whose brackets agree exactly
            (``matched == gold == predicted``).
        length_mismatch: sentence pairs skipped because their word counts
            differ (EVALB's error sentences); their brackets count nowhere.
        precision: ``100 * matched / predicted``, 0.0 when nothing was predicted.
        recall: ``100 * matched / gold``, 0.0 when there is no gold bracket.
        f1: ``2 * precision * recall / (precision + recall)``, 0.0 when both are 0.
    """

    matched: int
    gold: int
    predicted: int
    sentences: int
    exact_match: int
    length_mismatch: int
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(
        cls,
        matched: int,
        gold: int,
        predicted: int,
        sentences: int,
        exact_match: int,
        length_mismatch: int,
    ) -> BracketScore:
        """Builds a score from corpus totals, computing precision, recall and F1."""
        precision = 100.0 * matched / predicted if predicted else 0.0
        recall = 100.0 * matched / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(
            matched=matched,
            gold=gold,
            predicted=predicted,
            sentences=sentences,
            exact_match=exact_match,
            length_mismatch=length_mismatch,
            precision=precision,
            recall=recall,
            f1=f1,
        )

    @property
    def valid_sentences(self) -> int:
        """Sentences scored: those read less the length mismatches."""
        return self.sentences - self.length_mismatch

    def summary(self) -> str:
        """A few lines in the spirit of EVALB's ``=== Summary ===``."""
        valid = self.valid_sentences
        complete = 100.0 * self.exact_match / valid if valid else 0.0
        return "\n".join(
            [
                f"Number of sentence        = {self.sentences:6d}",
                f"Number of Error sentence  = {self.length_mismatch:6d}",
                f"Number of Valid sentence  = {valid:6d}",
                f"Bracketing Recall         = {self.recall:6.2f} ({self.matched}/{self.gold})",
                f"Bracketing Precision      = {self.precision:6.2f} "
                f"({self.matched}/{self.predicted})",
                f"Bracketing FMeasure       = {self.f1:6.2f}",
                f"Complete match            = {complete:6.2f} ({self.exact_match}/{valid})",
            ]
        )


def parse_bracketed(text: str) -> BracketTree:
    """Reads one bracketed tree into nested ``(label, children)`` tuples.

    A word is ``(pos_tag, word)`` with ``word`` a string; a constituent is
    ``(label, (child, ...))``. An unlabelled outer bracket, as in Penn
    Treebank files, gets the label ``""``.

    Example:

    >>> parse_bracketed("(S (NP (DT the) (NN dog)) (VP (VBD barked)))")
    ('S', (('NP', (('DT', 'the'), ('NN', 'dog'))), ('VP', (('VBD', 'barked'),))))

    Raises:
        ValueError: when ``text`` is not exactly one well-formed tree.
    """
    tokens = _TOKEN.findall(text)
    if not tokens:
        raise ValueError(f"Expected one bracketed tree. Received: text={text!r}")
    tree, position = _read_tree(tokens, 0, text)
    if position != len(tokens):
        raise ValueError(
            f"Expected one bracketed tree, found text after it. Received: text={text!r}"
        )
    return tree


def _read_tree(tokens: list[str], position: int, text: str) -> tuple[BracketTree, int]:
    def malformed(why: str) -> ValueError:
        return ValueError(f"Malformed bracketed tree: {why}. Received: text={text!r}")

    if tokens[position] != "(":
        raise malformed(f"expected '(' at token {position}, found {tokens[position]!r}")
    position += 1
    label = ""
    if position < len(tokens) and tokens[position] not in ("(", ")"):
        label = tokens[position]
        position += 1
    if position >= len(tokens):
        raise malformed("unclosed bracket")
    if tokens[position] not in ("(", ")"):
        word = tokens[position]
        position += 1
        if position >= len(tokens) or tokens[position] != ")":
            raise malformed(f"expected ')' after the word {word!r}")
        return (label, word), position + 1
    children = []
    while position < len(tokens) and tokens[position] == "(":
        child, position = _read_tree(tokens, position, text)
        children.append(child)
    if position >= len(tokens) or tokens[position] != ")":
        raise malformed("unclosed bracket")
    if not children:
        raise malformed(f"empty constituent {label!r}")
    return (label, tuple(children)), position + 1


def _as_tree(tree: str | BracketTree) -> BracketTree:
    if isinstance(tree, str):
        return parse_bracketed(tree)
    if isinstance(tree, tuple) and len(tree) == 2 and isinstance(tree[0], str):
        return tree
    raise TypeError(
        f"Expected a bracketed string or a (label, children) tuple. Received: tree={tree!r}"
    )


def _is_word(node: BracketTree) -> bool:
    return isinstance(node[1], str)


def _base_label(label: str) -> str:
    # Function tags and indices follow '-' or '=' (NP-SBJ-1, PP=2); labels that
    # start with '-' (-NONE-, -LRB-) are kept whole.
    if label.startswith("-"):
        return label
    return _FUNCTION_TAG.split(label, maxsplit=1)[0]


def _without_traces(node: BracketTree) -> BracketTree | None:
    # DELETE_LABEL -NONE-: traces go, and so do constituents left empty.
    if _is_word(node):
        return None if _base_label(node[0]) == TRACE_TAG else node
    children = tuple(
        kept for kept in (_without_traces(child) for child in node[1]) if kept is not None
    )
    return (node[0], children) if children else None


def _words(node: BracketTree) -> list[tuple[str, str]]:
    if _is_word(node):
        return [node]
    return [word for child in node[1] for word in _words(child)]


def _prepare(tree: str | BracketTree) -> BracketTree | None:
    return _without_traces(_as_tree(tree))


def _spans(node: BracketTree, start: int, out: list[Bracket]) -> int:
    # Appends (label, start, end) over word positions for every constituent
    # (not the part-of-speech preterminals) and returns the end position.
    if _is_word(node):
        return start + 1
    end = start
    for child in node[1]:
        end = _spans(child, end, out)
    out.append((node[0], start, end))
    return end


def _brackets(tree: BracketTree | None, deletion_tags: Sequence[str]) -> collections.Counter:
    brackets: collections.Counter = collections.Counter()
    if tree is None:
        return brackets
    kept_before = [0]
    for tag in deletion_tags:
        kept_before.append(kept_before[-1] + (_base_label(tag) not in PUNCTUATION_TAGS))
    spans: list[Bracket] = []
    _spans(tree, 0, spans)
    for label, start, end in spans:
        label = _base_label(label)
        if label in DELETED_LABELS:
            continue
        start, end = kept_before[start], kept_before[end]
        if start == end:  # it covered deleted words only
            continue
        brackets[EQUIVALENT_LABELS.get(label, label), start, end] += 1
    return brackets


def labelled_brackets(
    tree: str | BracketTree,
    pos_tags_for_deletion: Sequence[str] | None = None,
) -> collections.Counter:
    """The multiset of labelled brackets EVALB (COLLINS.prm) counts in a tree.

    Rules, in the order they apply:

    1. Traces go first: words tagged ``-NONE-`` are removed, and so is every
       constituent left with no word (``DELETE_LABEL -NONE-``).
    2. Punctuation words, those whose tag is ``,`` ``:`` `````` ``''`` or
       ``.``, are deleted (``DELETE_LABEL``). The tags come from
       ``pos_tags_for_deletion`` when given, which is how a predicted tree
       is scored with the gold tree's tags; else from the tree itself.
    3. Spans ``(start, end)``, end exclusive, count the kept words only, so a
       final period or a comma at a constituent's edge changes no span. A
       constituent that covered deleted words only is dropped.
    4. Part-of-speech tags (preterminals) are not brackets; nor are
       ``TOP``, ``ROOT``, an unlabelled root, ``-NONE-`` or a punctuation
       label. Their children still count.
    5. Function tags are cut from labels (``NP-SBJ-1`` -> ``NP``,
       ``PP=2`` -> ``PP``) unless the label starts with ``-``; ``PRT`` is
       counted as ``ADVP`` (``EQ_LABEL ADVP PRT``).
    6. Every remaining constituent counts once, the whole-sentence one
       included, and a unary chain with one label (``(NP (NP ...))``) counts
       twice: brackets are a multiset.

    Args:
        tree: a bracketed string or nested ``(label, children)`` tuples.
        pos_tags_for_deletion: one part-of-speech tag per word of ``tree``
            once its traces are removed; these tags, not the tree's own,
            decide which words are punctuation.

    Returns:
        A `collections.Counter` of ``(label, start, end)``.

    Raises:
        ValueError: when ``pos_tags_for_deletion`` has a different number of
            tags than the tree has words.
    """
    prepared = _prepare(tree)
    words = _words(prepared) if prepared is not None else []
    if pos_tags_for_deletion is None:
        deletion_tags = [tag for tag, _ in words]
    else:
        deletion_tags = list(pos_tags_for_deletion)
        if len(deletion_tags) != len(words):
            raise ValueError(
                "Expected one part-of-speech tag per word (traces excluded). Received: "
                f"{len(deletion_tags)} tags for {len(words)} words"
            )
    return _brackets(prepared, deletion_tags)


def evalb(
    gold_trees: Iterable[str | BracketTree],
    predicted_trees: Iterable[str | BracketTree],
) -> BracketScore:
    """Corpus labelled-bracket precision, recall and F1 with COLLINS.prm's rules.

    Each predicted tree is compared with its gold tree as a multiset of
    brackets (see `labelled_brackets` for what counts), punctuation being
    chosen by the gold tree's tags in both. Matched, gold and predicted
    counts are summed over the corpus before precision, recall and F1 are
    computed, as EVALB does: the result is not a mean of sentence scores.

    A pair whose word counts differ once traces are removed cannot be
    aligned word by word: it is counted in ``length_mismatch`` and skipped,
    as EVALB skips its error sentences. Words themselves are not compared,
    since a predicted tree may carry placeholders for them.

    Args:
        gold_trees: the reference trees, bracketed strings or tuples.
        predicted_trees: the parser's trees, aligned with ``gold_trees``; their
            part-of-speech tags are ignored (``XX`` is fine).

    Returns:
        A `BracketScore`.

    Raises:
        ValueError: when the two corpora differ in length or a tree is malformed.
    """
    gold_trees, predicted_trees = list(gold_trees), list(predicted_trees)
    if len(gold_trees) != len(predicted_trees):
        raise ValueError(
            "Expected one predicted tree per gold tree. Received: "
            f"{len(gold_trees)} gold and {len(predicted_trees)} predicted trees"
        )
    matched = gold_total = predicted_total = exact = mismatched = 0
    for gold_tree, predicted_tree in zip(gold_trees, predicted_trees, strict=True):
        gold_tree, predicted_tree = _prepare(gold_tree), _prepare(predicted_tree)
        gold_words = _words(gold_tree) if gold_tree is not None else []
        predicted_words = _words(predicted_tree) if predicted_tree is not None else []
        if len(gold_words) != len(predicted_words):
            mismatched += 1
            continue
        gold_tags = [tag for tag, _ in gold_words]
        gold_brackets = _brackets(gold_tree, gold_tags)
        predicted_brackets = _brackets(predicted_tree, gold_tags)
        common = sum((gold_brackets & predicted_brackets).values())
        gold_count = sum(gold_brackets.values())
        predicted_count = sum(predicted_brackets.values())
        matched += common
        gold_total += gold_count
        predicted_total += predicted_count
        exact += common == gold_count == predicted_count
    return BracketScore.from_counts(
        matched=matched,
        gold=gold_total,
        predicted=predicted_total,
        sentences=len(gold_trees),
        exact_match=exact,
        length_mismatch=mismatched,
    )
