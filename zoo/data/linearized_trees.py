"""Constituency trees and their linearised form (Vinyals et al. 2015), without TensorFlow.

- `Tree`, an immutable constituency tree (read from Penn Treebank files by
  `zoo.data.treebank`);
- `linearize` / `delinearize`, the target sequence of "Grammar as a Foreign
  Language", ``(S (NP XX XX )NP (VP XX )VP XX )S``, where each part-of-speech
  tag and word becomes one ``XX``;
- `is_well_formed` / `repair_linearized`, the check and the deterministic
  repair of an unconstrained decoder's output.

`zoo.data.treebank` re-exports every public name here; this module does not
import it.

References:
    Vinyals, Kaiser, Koo, Petrov, Sutskever, Hinton. "Grammar as a Foreign
    Language". NIPS 2015. https://arxiv.org/abs/1412.7449
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

__all__ = [
    "Tree",
    "delinearize",
    "is_well_formed",
    "linearize",
    "repair_linearized",
]


# A label or a linearised bracket's label: no white space, no parentheses.
_LABEL = re.compile(r"[^\s()]+")
_OPEN = re.compile(r"\(([^\s()]+)")
_CLOSE = re.compile(r"\)([^\s()]*)")


@dataclasses.dataclass(frozen=True)
class Tree:
    """An immutable constituency tree.

    A word is a plain `str`; a part of speech is a preterminal, a tree with
    the tag as label and the word as its only child:
    ``Tree("S", (Tree("NP", (Tree("DT", ("the",)), Tree("NN", ("dog",)))),))``.
    The outer bracket of a ``.mrg`` tree is a tree with the empty label.

    Args:
        label: the node's label, without white space or parentheses; may be
            empty (the outer bracket of ``( (S ...) )``).
        children: a tuple of `Tree` and non-empty `str` (a list is turned into
            a tuple).

    Example:
        ```python
        tree = parse_bracketed("(S (NP (DT the) (NN dog)) (VP (VBZ barks)))")[0]
        tree.leaves()     # ["the", "dog", "barks"]
        tree.pos_tags()   # ["DT", "NN", "VBZ"]
        tree.to_bracketed()  # "(S (NP (DT the) (NN dog)) (VP (VBZ barks)))"
        ```
    """

    label: str
    children: tuple = ()

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or (self.label and not _LABEL.fullmatch(self.label)):
            raise ValueError(
                "A tree label must be a string without white space or parentheses. "
                f"Received: label={self.label!r}"
            )
        if not isinstance(self.children, tuple):
            object.__setattr__(self, "children", tuple(self.children))
        for child in self.children:
            if not isinstance(child, Tree) and not (isinstance(child, str) and child):
                raise TypeError(
                    "Tree children must be Trees or non-empty strings (words). "
                    f"Received: child={child!r} under label={self.label!r}"
                )

    @property
    def is_preterminal(self) -> bool:
        """True for a part-of-speech node: one child, and that child a word."""
        return len(self.children) == 1 and isinstance(self.children[0], str)

    def leaves(self) -> list[str]:
        """The words, left to right."""
        return [event[1] for event in _walk(self) if event[0] == "word"]

    def pos_tags(self) -> list[str]:
        """The label right above each word (its part of speech), one per word."""
        return [event[2].label for event in _walk(self) if event[0] == "word"]

    def to_bracketed(self) -> str:
        """One line, e.g. ``"(S (NP (DT the) (NN dog)) (VP (VBZ barks)) (. .))"``.

        Words are written as they are: a word containing white space or a
        parenthesis (write those as ``-LRB-`` / ``-RRB-``) does not read back.
        """
        parts = []
        for event in _walk(self):
            if event[0] == "open":
                parts.append(("(" if not parts else " (") + event[1].label)
            elif event[0] == "word":
                parts.append(" " + event[1])
            else:
                parts.append(")")
        return "".join(parts)

    def draw(self, *, hide_tags: Sequence[str] = ("XX",)) -> str:
        """The tree drawn as text, one node a line, for terminals and logs.

        A part of speech and its word share a line (``NN dog``); tags in
        `hide_tags` (the parser's ``XX`` placeholder) are left out, so a
        parse shows its words only::

            S
            ├── NP
            │   └── John
            └── VP
                ├── has
                └── NP
                    ├── a
                    └── dog
        """
        hidden = set(hide_tags)

        def text(node) -> str:
            if isinstance(node, str):
                return node
            if node.is_preterminal:
                word = node.children[0]
                return word if node.label in hidden else f"{node.label} {word}"
            return node.label or "()"

        lines = []
        # Pre-order with an explicit stack (like `_walk`, no recursion):
        # (node, the prefix of its line, the prefix of its children's lines).
        stack = [(self, "", "")]
        while stack:
            node, line_prefix, child_prefix = stack.pop()
            lines.append(line_prefix + text(node))
            if isinstance(node, str) or node.is_preterminal:
                continue
            last = len(node.children) - 1
            for index in range(last, -1, -1):
                branch, indent = ("└── ", "    ") if index == last else ("├── ", "│   ")
                stack.append((node.children[index], child_prefix + branch, child_prefix + indent))
        return "\n".join(lines)


def _walk(tree: Tree) -> Iterator[tuple]:
    """Depth-first events: ("open", node), ("word", word, parent), ("close", node).

    Iterative, so that deep trees (a long, badly decoded sequence) cannot
    exhaust Python's recursion limit.
    """
    yield ("open", tree)
    stack = [(tree, iter(tree.children))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            yield ("close", node)
        elif isinstance(child, str):
            yield ("word", child, node)
        else:
            yield ("open", child)
            stack.append((child, iter(child.children)))


# --------------------------------------------------------------------------- linearising


def linearize(tree: Tree, *, pos_placeholder: str = "XX") -> list[str]:
    """The paper's target sequence: the tree depth first, each word as `pos_placeholder`.

    A constituent ``X`` becomes ``"(X"``, its children, ``")X"``; a part of
    speech with its word (or a word directly under a constituent) becomes one
    ``pos_placeholder``. ``(S (NP (DT the) (NN dog)) (VP (VBZ barks)) (. .))``
    becomes ``(S (NP XX XX )NP (VP XX )VP XX )S``.

    The result is always well-formed for ``len(tree.leaves())`` words, so
    ``delinearize(linearize(tree), tree.leaves())`` gives `tree` back with
    every part of speech relabelled `pos_placeholder`.

    Raises:
        ValueError: a tree that has no such sequence: a bare part of speech,
            a constituent without any word, or an empty label (`clean_tree`
            removes all three).
    """
    if tree.is_preterminal:
        raise ValueError(
            "A bare part of speech has no bracket to linearise; `clean_tree` puts it under "
            f"TOP. Received: tree={tree.to_bracketed()!r}"
        )
    tokens: list[str] = []
    for event in _walk(tree):
        kind, node = event[0], event[-1]
        if kind == "word":
            if not node.is_preterminal:
                tokens.append(pos_placeholder)
        elif node.is_preterminal:
            if kind == "open":
                tokens.append(pos_placeholder)
        elif not node.children or not node.label:
            raise ValueError(
                "Only trees whose constituents all have a label and cover a word can be "
                "linearised (`clean_tree` makes them so). "
                f"Received: constituent {node.to_bracketed()!r} in {tree.to_bracketed()!r}"
            )
        else:
            tokens.append(("(" if kind == "open" else ")") + node.label)
    return tokens


def _build(
    tokens: Sequence[str], words: Sequence[str], pos_placeholder: str
) -> tuple[Tree | None, str]:
    """(tree, "") for a well-formed sequence, else (None, what is wrong)."""
    if not words:
        return None, "a sentence needs at least one word"
    stack: list[tuple[str, list, int]] = []  # (label, children, position of the "(")
    n_placeholders = 0
    root = None
    for position, token in enumerate(tokens):
        if root is not None:
            return None, f"{token!r} at position {position} comes after the root has closed"
        if not isinstance(token, str):
            return None, f"{token!r} at position {position} is not a string"
        if token == pos_placeholder:
            if not stack:
                return None, f"{token!r} at position {position} is outside any bracket"
            if n_placeholders < len(words):
                stack[-1][1].append(Tree(pos_placeholder, (words[n_placeholders],)))
            n_placeholders += 1
        elif _OPEN.fullmatch(token):
            stack.append((token[1:], [], position))
        elif _CLOSE.fullmatch(token):
            if not stack:
                return None, f"{token!r} at position {position} closes nothing"
            label, children, opened = stack.pop()
            if token[1:] != label:
                return None, (
                    f"{token!r} at position {position} closes '({label}' "
                    f"(opened at position {opened})"
                )
            if not children:
                return None, f"'({label}' at position {opened} covers no word"
            node = Tree(label, tuple(children))
            if stack:
                stack[-1][1].append(node)
            else:
                root = node
        else:
            return None, (
                f"{token!r} at position {position} is neither a bracket nor {pos_placeholder!r}"
            )
    if stack:
        return None, f"'({stack[-1][0]}' opened at position {stack[-1][2]} is never closed"
    if root is None:
        return None, "there is no bracket"
    if n_placeholders != len(words):
        return None, f"{n_placeholders} {pos_placeholder!r} for {len(words)} words"
    return root, ""


def delinearize(
    tokens: Sequence[str], words: Sequence[str], *, pos_placeholder: str = "XX"
) -> Tree:
    """The tree of a linearised sequence: the i-th `pos_placeholder` becomes ``Tree("XX", (words[i],))``.

    Args:
        tokens: a well-formed sequence (see `is_well_formed`), e.g. from
            `linearize` or `repair_linearized`.
        words: the sentence, one word per `pos_placeholder`.
        pos_placeholder: the token standing for a part of speech and its word.

    Raises:
        ValueError: a malformed sequence, saying what is wrong: unbalanced
            brackets, a closing label that does not match, a constituent
            covering no word, more than one root, an unknown token, or a
            number of placeholders other than ``len(words)``.
    """
    tree, problem = _build(tokens, words, pos_placeholder)
    if tree is None:
        raise ValueError(
            f"Not a well-formed linearised tree: {problem}. "
            f"Received: tokens={_short(tokens)}, {len(words)} words"
        )
    return tree


def _short(tokens: Sequence[str], limit: int = 60) -> str:
    text = " ".join(str(token) for token in tokens[:limit])
    return repr(text + (f" ... ({len(tokens)} tokens)" if len(tokens) > limit else ""))


def is_well_formed(tokens: Sequence[str], n_words: int, *, pos_placeholder: str = "XX") -> bool:
    """Whether `delinearize` accepts `tokens` for a sentence of `n_words` words.

    Well-formed means: one root bracket spanning the whole sequence; every
    ``")X"`` closes the innermost open ``"(X"`` with the same label; every
    constituent covers at least one `pos_placeholder`; no other tokens; and
    exactly `n_words` placeholders (at least one).
    """
    if isinstance(n_words, bool) or not isinstance(n_words, int) or n_words < 1:
        return False
    return _build(tokens, ["w"] * n_words, pos_placeholder)[0] is not None


def repair_linearized(
    tokens: Sequence[str],
    n_words: int,
    *,
    pos_placeholder: str = "XX",
    root_label: str = "S",
) -> tuple[list[str], bool]:
    """Makes a decoder's unconstrained output a well-formed tree over `n_words` words.

    Vinyals et al. (2015, section 3.1) fix the rare malformed output by adding
    brackets at the ends. These rules make that precise; applied in this
    order, they are deterministic:

    1. Unknown tokens are dropped: anything other than `pos_placeholder`, an
       opening bracket ``"(X"`` or a closing bracket ``")X"`` / ``")"`` (a
       label has no white space and no parentheses; ``"("`` alone is unknown).
    2. Too many placeholders: the extra ones are dropped from the end (the
       last ``k`` placeholders go, the first `n_words` stay).
    3. The root: closing brackets before the first opening bracket are
       dropped. If anything else comes before the first opening bracket (a
       placeholder), or nothing is left, ``"(S"`` (`root_label`) is put in
       front, so an output without any bracket becomes ``(S XX ... XX )S``.
    4. One tree: a closing bracket that would close the root is dropped; the
       root is closed at the very end (rule 7). Closing brackets after it are
       unmatched and dropped with it.
    5. A closing bracket whose label is not that of the innermost open
       constituent is relabelled to match it (``")"`` gets the label too).
    6. Too few placeholders: the missing ones are appended at the end of the
       innermost constituent still open when the tokens run out (the root
       when every other bracket was closed), before any bracket is added.
    7. Every constituent still open is closed, innermost first.
    8. A constituent covering no placeholder (``(NP )NP``) is removed, both
       its brackets, as it closes; a constituent holding only such
       constituents is therefore removed too.

    The result always satisfies `is_well_formed` and `delinearize` accepts
    it; a well-formed input comes back unchanged.

    Args:
        tokens: the decoded tokens (strings), in the order of the tree.
        n_words: the number of words of the sentence, at least 1.
        pos_placeholder: the token standing for a part of speech and its word.
        root_label: the label of a root that rule 3 adds.

    Returns:
        ``(repaired, was_repaired)``: the tokens of a well-formed tree, and
        whether they differ from `tokens`.

    Raises:
        ValueError: `n_words` < 1, or a `root_label` that cannot be a label.
    """
    if isinstance(n_words, bool) or not isinstance(n_words, int) or n_words < 1:
        raise ValueError(
            f"`n_words` must be an integer >= 1 (a sentence has a word). Received: n_words={n_words!r}"
        )
    if not isinstance(root_label, str) or not _LABEL.fullmatch(root_label):
        raise ValueError(
            "`root_label` must be a label without white space or parentheses. "
            f"Received: root_label={root_label!r}"
        )
    # Rules 1 and 2.
    kept = []
    placeholders = 0
    for token in tokens:
        if not isinstance(token, str):
            continue
        if token == pos_placeholder:
            if placeholders < n_words:
                kept.append(token)
            placeholders += 1
        elif _OPEN.fullmatch(token) or _CLOSE.fullmatch(token):
            kept.append(token)
    # Rule 3.
    while kept and kept[0].startswith(")"):
        kept.pop(0)
    if not kept or kept[0] == pos_placeholder:
        kept.insert(0, "(" + root_label)
    # Whether any placeholder or opening bracket comes at or after each position (rule 4).
    content_after = [False] * (len(kept) + 1)
    for position in range(len(kept) - 1, -1, -1):
        content_after[position] = content_after[position + 1] or not kept[position].startswith(")")

    repaired: list[str] = []
    stack: list[list] = []  # [label, covers a placeholder]
    missing = n_words - min(placeholders, n_words)

    def close() -> None:  # rules 5, 7 and 8
        label, covered = stack.pop()
        if covered:
            repaired.append(")" + label)
            if stack:
                stack[-1][1] = True
        else:
            # Only emptied constituents came after its "(", and each was removed.
            repaired.pop()

    for position, token in enumerate(kept):
        if token == pos_placeholder:
            repaired.append(token)
            stack[-1][1] = True
        elif token.startswith("("):
            repaired.append(token)
            stack.append([token[1:], False])
        elif len(stack) > 1:
            close()
        elif stack and not content_after[position + 1]:
            break  # the root's own closing bracket: the root is closed below (rule 4)
    # Rule 6, then 7.
    repaired.extend([pos_placeholder] * missing)
    if missing:
        stack[-1][1] = True
    while stack:
        close()
    return repaired, repaired != list(tokens)
