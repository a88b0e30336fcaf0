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
- `read_clean_treebank`, a treebank read and cleaned, with a `TreebankReport`
  naming each tree cleaning left empty and each file without a tree;
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

import dataclasses
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
    "TreebankReport",
    "clean_tree",
    "delinearize",
    "is_well_formed",
    "linearize",
    "parse_bracketed",
    "read_clean_treebank",
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
    return [tree for tree, _ in _parse_with_lines(text, source)]


def _parse_with_lines(text: str, source: str) -> list[tuple[Tree, int]]:
    """`parse_bracketed`, each tree with the line where it begins."""
    trees: list[tuple[Tree, int]] = []
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
                trees.append((node, tree_line))
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
    return [tree for tree, _ in _read_with_lines(path)]


def _read_with_lines(path: str | os.PathLike) -> list[tuple[Tree, int]]:
    """`read_treebank_file`, each tree with the line where it begins."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TreebankFormatError(
            os.fspath(path),
            data.count(b"\n", 0, error.start) + 1,
            f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})",
        ) from None
    return _parse_with_lines(text, os.fspath(path))


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
    by_name = _paths_by_name(folder_or_files, pattern)
    return {name: read_treebank_file(by_name[name]) for name in sorted(by_name)}


def _paths_by_name(
    folder_or_files: str | os.PathLike | Iterable[str | os.PathLike], pattern: str
) -> dict[str, Path]:
    """The files `read_treebank` reads, by file name (see there for the errors)."""
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
    return by_name


@dataclasses.dataclass
class TreebankReport:
    """What `read_clean_treebank` kept and dropped; `summary()` is the log's `data:` line.

    Attributes:
        path: the folder or file read, as given.
        files: the number of files read (empty ones included).
        trees: the number of trees kept (non-empty once cleaned).
        dropped: `(file name, line)` of each tree left empty once cleaned (only
            `-NONE-` traces), the line where it begins.
        empty_files: the names of the files that hold no tree at all.
    """

    path: str
    files: int
    trees: int
    dropped: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    empty_files: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        text = f"treebank {self.path}: {self.files} files, {self.trees} trees"
        if self.dropped:
            where = ", ".join(f"{name} line {line}" for name, line in self.dropped)
            text += (
                f"; {_count(len(self.dropped), 'tree')} of -NONE- traces only (empty once "
                f"cleaned) dropped: {where}"
            )
        if self.empty_files:
            text += (
                f"; {_count(len(self.empty_files), 'file')} without any tree: "
                f"{', '.join(self.empty_files)}"
            )
        return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def read_clean_treebank(
    folder_or_files: str | os.PathLike | Iterable[str | os.PathLike], *, pattern: str = "*.mrg"
) -> tuple[dict[str, list[Tree]], TreebankReport]:
    """`read_treebank` with every tree through `clean_tree`, and a report of what was dropped.

    A tree of traces only (nothing left once cleaned) is dropped, and a file
    may hold no tree at all; the report names each (file and line), so the
    counts it gives are the trees a model sees.

    Returns:
        ``({file name: cleaned trees}, report)``, keys in sorted order (an
        empty file keeps its key, with no trees).
    """
    by_name = _paths_by_name(folder_or_files, pattern)
    cleaned: dict[str, list[Tree]] = {}
    report = TreebankReport(
        os.fspath(folder_or_files)
        if isinstance(folder_or_files, (str, os.PathLike))
        else ", ".join(sorted(by_name)),
        len(by_name),
        0,
    )
    for name in sorted(by_name):
        trees = _read_with_lines(by_name[name])
        if not trees:
            report.empty_files.append(name)
        cleaned[name] = []
        for tree, line in trees:
            kept = clean_tree(tree)
            if kept is None:
                report.dropped.append((name, line))
            else:
                cleaned[name].append(kept)
        report.trees += len(cleaned[name])
    return cleaned, report


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
