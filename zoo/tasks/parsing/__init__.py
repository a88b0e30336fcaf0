"""Constituency parsing (Vinyals et al. 2015): see `zoo.tasks.parsing.task`."""

from zoo.tasks.parsing.results import ParseResult
from zoo.tasks.parsing.task import (
    PLACEHOLDER,
    Parser,
    ParsingTask,
    bracketed_trees,
    build_tokenizers,
    evaluate,
    format_metrics,
    load_splits,
    read_files,
    score_parses,
)

__all__ = [
    "PLACEHOLDER",
    "ParseResult",
    "Parser",
    "ParsingTask",
    "bracketed_trees",
    "build_tokenizers",
    "evaluate",
    "format_metrics",
    "load_splits",
    "read_files",
    "score_parses",
]
