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

`Tree` and the linearised form (`linearize`, `delinearize`, `is_well_formed`,
`repair_linearized`) live in `zoo.data.linearized_trees` and are re-exported
here.

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

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from zoo.data.linearized_trees import (
    Tree,
    _walk,
    delinearize,
    is_well_formed,
    linearize,
    repair_linearized,
)

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

# A bracketed text token: a parenthesis, a label or a word.
_BRACKETED_TOKEN = re.compile(r"\(|\)|[^\s()]+")
# Labels of the outer node some treebanks put around each sentence (besides "").
_WRAPPERS = ("", "TOP", "ROOT")
_TRACE = "-NONE-"
_SHOWN = 8


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
