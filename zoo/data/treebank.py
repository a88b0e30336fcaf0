"""Penn Treebank trees for parsing as translation (Vinyals et al. 2015).

"Grammar as a Foreign Language" turns constituency parsing into translation of
a sentence into its linearised tree. This module holds everything about trees
that does not need TensorFlow:

- `Tree`, an immutable constituency tree, and `parse_bracketed`,
  `read_treebank_file`, `read_treebank` for bracketed Penn Treebank ``.mrg``
  files (several trees a file, each usually wrapped in an empty bracket
  ``( (S ...) )``);
- `clean_tree`, the usual preprocessing of the paper and of EVALB: no
  wrapper, no ``-NONE-`` traces, no function tags or indices;
- `linearize` / `delinearize`, the target sequence of the paper,
  ``(S (NP XX XX )NP (VP XX )VP XX )S``, where each part-of-speech tag and
  word becomes one ``XX``;
- `is_well_formed` / `repair_linearized`, the check and the deterministic
  repair of an unconstrained decoder's output;
- `split_by_file`, a train / validation / test split by file (sections).

Example:
    ```python
    trees = read_treebank("treebank/combined/wsj")  # {"wsj_0001.mrg": [...], ...}
    train, valid, test = split_by_file(trees, ["wsj_22*.mrg"], ["wsj_23*.mrg"])
    tree = clean_tree(train[0])
    tokens = linearize(tree)  # ["(S", "(NP", "(NP", "XX", "XX", ")NP", ...]
    fixed, was_repaired = repair_linearized(model_output, len(tree.leaves()))
    parse = delinearize(fixed, tree.leaves())
    ```

References:
    Vinyals, Kaiser, Koo, Petrov, Sutskever, Hinton. "Grammar as a Foreign
    Language". NIPS 2015. https://arxiv.org/abs/1412.7449
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

__all__ = [
    "Tree",
    "TreebankFormatError",
    "clean_tree",
    "delinearize",
    "is_well_formed",
    "linearize",
    "parse_bracketed",
    "read_treebank",
    "read_treebank_file",
    "repair_linearized",
    "split_by_file",
]

# A label or a linearised bracket's label: no white space, no parentheses.
_LABEL = re.compile(r"[^\s()]+")
_OPEN = re.compile(r"\(([^\s()]+)")
_CLOSE = re.compile(r"\)([^\s()]*)")
_BRACKETED_TOKEN = re.compile(r"\(|\)|[^\s()]+")
# Labels of the outer node some treebanks put around each sentence (besides "").
_WRAPPERS = ("", "TOP", "ROOT")
_TRACE = "-NONE-"
_SHOWN = 8


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


class TreebankFormatError(ValueError):
    """Bracketed text that is not a sequence of trees; names the source and line.

    Attributes:
        source: the file (or the ``source`` given to `parse_bracketed`).
        line: the 1-based line the message is about.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}, line {line}: {reason}")
        self.source = source
        self.line = line


# --------------------------------------------------------------------------- reading


def parse_bracketed(text: str, *, source: str = "<string>") -> list[Tree]:
    """Reads every tree in bracketed (Penn Treebank) text.

    Trees may span lines and share lines; white space between tokens does not
    matter. ``(`` followed by a label opens a node, ``(`` followed by ``(``
    opens a node with the empty label (the outer bracket of ``.mrg`` files).
    Words that are brackets are written ``-LRB-`` / ``-RRB-`` in the Treebank
    and are read as such.

    Args:
        text: the bracketed text.
        source: the name used in error messages (a file name).

    Returns:
        The trees, in the order they appear (none for text without any).

    Raises:
        TreebankFormatError: unbalanced parentheses (naming the line where the
            unclosed tree began, or where a ``)`` closes nothing), or a word
            outside any bracket.
    """
    trees: list[Tree] = []
    # Each open node: [label, children, line where it opened].
    stack: list[list] = []
    line, scanned = 1, 0
    tree_line = last_tree_line = 0
    tree_start_inside = 0  # first line inside the open tree that starts with "("
    expect_label = False
    for match in _BRACKETED_TOKEN.finditer(text):
        token, start = match.group(), match.start()
        line += text.count("\n", scanned, start)
        scanned = start
        if expect_label:
            expect_label = False
            if token != "(" and token != ")":
                stack[-1][0] = token
                continue
        if token == "(":
            if not stack:
                tree_line, tree_start_inside = line, 0
            elif not tree_start_inside and (start == 0 or text[start - 1] == "\n"):
                tree_start_inside = line
            stack.append(["", [], line])
            expect_label = True
        elif token == ")":
            if not stack:
                before = (
                    f" (the tree before it began at line {last_tree_line})"
                    if last_tree_line
                    else ""
                )
                raise TreebankFormatError(
                    source, line, f"unbalanced parentheses: ')' closes nothing{before}"
                )
            label, children, _ = stack.pop()
            node = Tree(label, tuple(children))
            if stack:
                stack[-1][1].append(node)
            else:
                trees.append(node)
                last_tree_line = tree_line
        elif stack:
            stack[-1][1].append(token)
        else:
            before = (
                f"; the tree before it began at line {last_tree_line} and may have one ')' too many"
                if last_tree_line
                else ""
            )
            raise TreebankFormatError(
                source, line, f"word {token!r} outside any bracketed tree{before}"
            )
    if stack:
        hint = (
            f"; line {tree_start_inside} starts with '(' inside it, as a new tree would"
            if tree_start_inside
            else ""
        )
        raise TreebankFormatError(
            source,
            tree_line,
            f"unbalanced parentheses: the tree that begins here is never closed "
            f"({len(stack)} '(' still open at the end{hint})",
        )
    return trees


def read_treebank_file(path: str | os.PathLike) -> list[Tree]:
    """Reads the trees of one bracketed Penn Treebank file (``.mrg``, UTF-8 or ASCII).

    The trees are returned as written, outer bracket and traces included;
    `clean_tree` prepares them for parsing.

    Raises:
        FileNotFoundError: `path` does not exist.
        TreebankFormatError: text that is not UTF-8 or not balanced trees,
            naming the file and line.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TreebankFormatError(
            os.fspath(path),
            data.count(b"\n", 0, error.start) + 1,
            f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})",
        ) from None
    return parse_bracketed(text, source=os.fspath(path))


def read_treebank(
    folder_or_files: str | os.PathLike | Iterable[str | os.PathLike], *, pattern: str = "*.mrg"
) -> dict[str, list[Tree]]:
    """Reads a treebank: a folder (searched recursively), one file, or a list of files.

    The Penn Treebank keeps sections in subfolders (``combined/wsj/00`` ..
    ``24``) and its file names are unique across them, so the result is keyed
    by file name alone.

    Args:
        folder_or_files: a folder, a file, or an iterable of files.
        pattern: the file names to read in a folder (`fnmatch` style).

    Returns:
        ``{file name: trees}``, keys in sorted order.

    Raises:
        FileNotFoundError: a missing path, or a folder without any file
            matching `pattern`.
        ValueError: two files with the same name.
        TreebankFormatError: a malformed file.
    """
    if isinstance(folder_or_files, (str, os.PathLike)):
        root = Path(folder_or_files)
        if root.is_dir():
            paths = [p for p in root.rglob(pattern) if p.is_file()]
            if not paths:
                raise FileNotFoundError(
                    f"No treebank file matching {pattern!r} in {os.fspath(root)!r}"
                )
        else:
            paths = [root]
    else:
        paths = [Path(p) for p in folder_or_files]
    by_name: dict[str, Path] = {}
    for path in paths:
        if path.name in by_name:
            raise ValueError(
                "Two treebank files have the same name, and files are keyed by name. "
                f"Received: {os.fspath(by_name[path.name])!r} and {os.fspath(path)!r}"
            )
        by_name[path.name] = path
    return {name: read_treebank_file(by_name[name]) for name in sorted(by_name)}


def split_by_file(
    trees_by_file: Mapping[str, Sequence[Tree]],
    validation_files: str | Iterable[str],
    test_files: str | Iterable[str],
) -> tuple[list[Tree], list[Tree], list[Tree]]:
    """Splits a treebank by file, e.g. the WSJ standard split: sections 22 and 23 held out.

    Args:
        trees_by_file: ``{file name: trees}`` as `read_treebank` returns.
        validation_files: file names or `fnmatch` patterns (``"wsj_22*.mrg"``).
        test_files: file names or patterns, as above.

    Returns:
        ``(train, validation, test)``, each the trees of its files in sorted
        file-name order; train holds every file named in neither list.

    Raises:
        ValueError: a name or pattern matching no file, or a file that would be
            both validation and test.
    """
    names = sorted(trees_by_file)

    def matching(entries: str | Iterable[str], argument: str) -> list[str]:
        entries = [entries] if isinstance(entries, str) else list(entries)
        chosen: set[str] = set()
        for entry in entries:
            found = [name for name in names if fnmatch.fnmatchcase(name, entry)]
            if not found:
                raise ValueError(
                    f"`{argument}` names a file that is not in the treebank. "
                    f"Received: {entry!r}; files: {_preview(names)}"
                )
            chosen.update(found)
        return sorted(chosen)

    validation = matching(validation_files, "validation_files")
    test = matching(test_files, "test_files")
    both = sorted(set(validation) & set(test))
    if both:
        raise ValueError(
            f"Files cannot be both validation and test. Received both for: {_preview(both)}"
        )
    held_out = set(validation) | set(test)

    def trees_of(files: Iterable[str]) -> list[Tree]:
        return [tree for name in files for tree in trees_by_file[name]]

    return (
        trees_of(name for name in names if name not in held_out),
        trees_of(validation),
        trees_of(test),
    )


def _preview(items: Sequence[str]) -> str:
    shown = ", ".join(repr(item) for item in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# --------------------------------------------------------------------------- cleaning


def _strip_label(label: str) -> str:
    """``NP-SBJ-1`` -> ``NP``, ``PP=2`` -> ``PP``, ``PRT|ADVP`` -> ``PRT``; ``-LRB-`` stays."""
    if label.startswith("-"):
        return label
    stripped = re.split(r"[-=|]", label, maxsplit=1)[0]
    return stripped or label


def clean_tree(tree: Tree) -> Tree | None:
    """Prepares a Treebank tree for parsing, as Vinyals et al. and EVALB do.

    - ``-NONE-`` nodes (traces, null elements) are removed, then every
      constituent left without children, up the tree.
    - Function tags and indices are cut from labels: ``NP-SBJ-1`` -> ``NP``,
      ``PP=2`` -> ``PP``, ``PRT|ADVP`` -> ``PRT`` (the first of alternatives).
      Labels starting with ``-`` (``-LRB-``, ``-RRB-``, ``-LCB-``) stay as
      they are.
    - The wrapper is dropped: the outer empty bracket ``( (S ...) )`` or a
      ``TOP`` / ``ROOT`` node, when it holds exactly one constituent. A wrapper
      holding several children (or a lone part of speech) is kept, with the
      empty label written ``TOP``, because a linearised tree needs one
      labelled root bracket.

    Returns:
        The cleaned tree, or None when nothing is left (a tree of traces only).
    """
    built: list[list] = [[]]  # children collected for each open node; [0] gets the root
    for event in _walk(tree):
        if event[0] == "open":
            built.append([])
        elif event[0] == "word":
            built[-1].append(event[1])
        else:
            node, children = event[1], built.pop()
            if node.label != _TRACE and children:
                built[-1].append(Tree(_strip_label(node.label), tuple(children)))
    if not built[0]:
        return None
    root = built[0][0]
    while (
        root.label.upper() in _WRAPPERS
        and len(root.children) == 1
        and isinstance(root.children[0], Tree)
        and not root.children[0].is_preterminal
    ):
        root = root.children[0]
    if root.label == "":
        root = Tree("TOP", root.children)
    elif root.is_preterminal:
        root = Tree("TOP", (root,))
    return root


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
