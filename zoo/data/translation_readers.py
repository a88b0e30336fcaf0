"""Readers of real parallel data: tab-separated pairs and line-aligned file pairs.

Two formats users have:

- TSV, as in the Tatoeba exports of manythings.org/anki
  (``english<TAB>other<TAB>attribution``): `read_tsv_pairs`.
- Two line-aligned files, one sentence a line (``train.src`` / ``train.tgt``,
  as Multi30k, WMT and OpenNMT ship them): `read_parallel_files`.

Both read bytes and decode line by line, so one undecodable line costs that
line and not the file. A UTF-8 byte order mark and Windows line ends are
accepted. No line is used silently when it is malformed (too few columns, an
empty side, bad UTF-8): it is skipped and listed, with its 1-based line
number and the reason, in the `ReadReport` returned beside the pairs, or
with ``strict=True`` it stops the read with a `DataFormatError`.

Example:
    ```python
    pairs, report = read_tsv_pairs("deu.txt", columns=(1, 0))  # German -> English
    print(report.summary())
    # deu.txt: 4994 lines, 4994 pairs kept, 0 malformed
    ```
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Iterator, Sequence

__all__ = ["DataFormatError", "ReadReport", "read_parallel_files", "read_tsv_pairs"]

_BOM = b"\xef\xbb\xbf"
_SHOWN_IN_SUMMARY = 5


class DataFormatError(ValueError):
    """A data file that cannot be used as it is; the message names the file (and line)."""


@dataclasses.dataclass
class ReadReport:
    """What a reader did with a file: lines read, pairs kept, lines refused and why.

    Attributes:
        path: the file read (the source file of a parallel pair).
        lines: the number of lines read (up to where `max_pairs` stopped the read).
        kept: the number of sentence pairs returned.
        malformed: ``(line_number, reason)`` for each line left out, 1-based.
        target_path: the target file of a parallel pair, else None.
    """

    path: str
    lines: int
    kept: int
    malformed: list[tuple[int, str]]
    target_path: str | None = None

    def summary(self) -> str:
        """One line, e.g. ``"deu.tsv: 4994 lines, 4990 pairs kept, 4 malformed (line 17: ...)"``."""
        name = os.path.basename(self.path)
        if self.target_path is not None:
            name += " + " + os.path.basename(self.target_path)
        text = (
            f"{name}: {self.lines} lines, {self.kept} pairs kept, {len(self.malformed)} malformed"
        )
        if self.malformed:
            shown = "; ".join(f"line {n}: {why}" for n, why in self.malformed[:_SHOWN_IN_SUMMARY])
            hidden = len(self.malformed) - _SHOWN_IN_SUMMARY
            text += f" ({shown}{f'; and {hidden} more' if hidden > 0 else ''})"
        return text


def _check_max_pairs(max_pairs: int | None) -> None:
    if max_pairs is not None and (
        isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1
    ):
        raise ValueError(
            f"`max_pairs` must be None or an integer >= 1. Received: max_pairs={max_pairs!r}"
        )


def _open(path: str | os.PathLike):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, "No such translation data file", os.fspath(path)
        ) from None


def _lines(path: str | os.PathLike) -> Iterator[bytes]:
    """The file's lines as bytes, without BOM, line end or trailing carriage return."""
    with _open(path) as file:
        for number, line in enumerate(file):
            if number == 0 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            yield line


def _decode(line: bytes) -> tuple[str | None, str]:
    """(text, "") or (None, the reason it is not UTF-8)."""
    try:
        return line.decode("utf-8"), ""
    except UnicodeDecodeError as error:
        return None, f"invalid UTF-8 (byte {line[error.start]:#04x} at position {error.start + 1})"


class _Collector:
    """Keeps pairs and malformed lines; raises on the first malformed line when strict."""

    def __init__(self, report: ReadReport, strict: bool, where: str) -> None:
        self.report, self.strict, self.where = report, strict, where
        self.pairs: list[tuple[str, str]] = []

    def malformed(self, number: int, reason: str) -> None:
        if self.strict:
            raise DataFormatError(f"{self.where}, line {number}: {reason}")
        self.report.malformed.append((number, reason))

    def finish(self) -> tuple[list[tuple[str, str]], ReadReport]:
        self.report.kept = len(self.pairs)
        if not self.pairs:
            raise DataFormatError(
                f"{self.where}: no usable sentence pairs ({self.report.summary()})"
            )
        return self.pairs, self.report


def read_tsv_pairs(
    path: str | os.PathLike,
    *,
    columns: Sequence[int] = (0, 1),
    reverse: bool = False,
    max_pairs: int | None = None,
    strict: bool = False,
) -> tuple[list[tuple[str, str]], ReadReport]:
    """Reads sentence pairs from a tab-separated file (Tatoeba / manythings.org Anki format).

    Args:
        path: a UTF-8 text file, one pair a line: ``english<TAB>other[<TAB>...]``.
        columns: ``(source_column, target_column)``, 0-based; ``(1, 0)`` reads
            other -> English from an Anki file. Other columns are ignored.
        reverse: swap source and target after picking the columns.
        max_pairs: stop once this many pairs are kept.
        strict: raise on the first malformed line instead of reporting it.

    Returns:
        ``(pairs, report)``: ``(source, target)`` strings stripped of
        surrounding white space, and the `ReadReport` of the read.

    Raises:
        FileNotFoundError: `path` does not exist.
        DataFormatError: a malformed line with ``strict=True``, or no usable pair.
        ValueError: bad `columns` or `max_pairs`.
    """
    columns = tuple(columns)
    if (
        len(columns) != 2
        or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in columns)
        or columns[0] == columns[1]
    ):
        raise ValueError(
            "`columns` must be two distinct non-negative column indices "
            f"(source_column, target_column). Received: columns={columns!r}"
        )
    _check_max_pairs(max_pairs)
    path_text = os.fspath(path)
    report = ReadReport(path_text, 0, 0, [])
    collector = _Collector(report, strict, path_text)
    needed = max(columns) + 1
    source_column, target_column = reversed(columns) if reverse else columns
    for number, line in enumerate(_lines(path), start=1):
        report.lines = number
        text, reason = _decode(line)
        if text is None:
            collector.malformed(number, reason)
            continue
        if not text.strip():
            collector.malformed(number, "empty line")
            continue
        fields = text.split("\t")
        if len(fields) < needed:
            collector.malformed(
                number, f"expected at least {needed} tab-separated columns, found {len(fields)}"
            )
            continue
        source, target = fields[source_column].strip(), fields[target_column].strip()
        if not source:
            collector.malformed(number, f"empty source (column {source_column})")
        elif not target:
            collector.malformed(number, f"empty target (column {target_column})")
        else:
            collector.pairs.append((source, target))
            if len(collector.pairs) == max_pairs:
                break
    return collector.finish()


def read_parallel_files(
    source_path: str | os.PathLike,
    target_path: str | os.PathLike,
    *,
    max_pairs: int | None = None,
    strict: bool = False,
) -> tuple[list[tuple[str, str]], ReadReport]:
    """Reads sentence pairs from two line-aligned files (``train.src`` / ``train.tgt``).

    Line i of one file translates line i of the other. A line that is empty
    (after stripping white space) or not UTF-8 on either side makes its pair
    malformed.

    Args:
        source_path: the source sentences, one a line, UTF-8.
        target_path: the target sentences, line for line.
        max_pairs: stop once this many pairs are kept.
        strict: raise on the first malformed pair instead of reporting it.

    Returns:
        ``(pairs, report)`` as `read_tsv_pairs` returns them; the report's
        `path` is the source file and its `target_path` the target file.

    Raises:
        FileNotFoundError: a file does not exist.
        DataFormatError: the files have different numbers of lines, a
            malformed pair with ``strict=True``, or no usable pair.
    """
    _check_max_pairs(max_pairs)
    source_text, target_text = os.fspath(source_path), os.fspath(target_path)
    # Count first: a pair of files that are not line-aligned is useless, even in part.
    counts = []
    for path in (source_path, target_path):
        with _open(path) as file:
            counts.append(sum(1 for _ in file))
    if counts[0] != counts[1]:
        raise DataFormatError(
            f"Parallel files must have the same number of lines: {source_text} has "
            f"{counts[0]}, {target_text} has {counts[1]}."
        )
    report = ReadReport(source_text, 0, 0, [], target_path=target_text)
    collector = _Collector(report, strict, f"{source_text} + {target_text}")
    for number, (source_line, target_line) in enumerate(
        zip(_lines(source_path), _lines(target_path), strict=True), start=1
    ):
        report.lines = number
        source, source_error = _decode(source_line)
        target, target_error = _decode(target_line)
        if source is None:
            collector.malformed(number, f"source: {source_error}")
        elif target is None:
            collector.malformed(number, f"target: {target_error}")
        elif not source.strip():
            collector.malformed(number, "empty source" + ("" if target.strip() else " and target"))
        elif not target.strip():
            collector.malformed(number, "empty target")
        else:
            collector.pairs.append((source.strip(), target.strip()))
            if len(collector.pairs) == max_pairs:
                break
    return collector.finish()
