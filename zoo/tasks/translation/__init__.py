"""Translation (Bahdanau et al. 2015, Luong et al. 2015): see `zoo.tasks.translation.task`."""

from zoo.tasks.seq2seq.training import build_model, compile_model, tokenize_all
from zoo.tasks.translation.results import TranslationResult
from zoo.tasks.translation.task import (
    Pair,
    TranslationTask,
    Translator,
    build_tokenizer,
    evaluate,
    format_metrics,
    load_splits,
    read_files,
    teacher_forced_attention,
    translate_corpus,
)

__all__ = [
    "Pair",
    "TranslationResult",
    "TranslationTask",
    "Translator",
    "build_model",
    "build_tokenizer",
    "compile_model",
    "evaluate",
    "format_metrics",
    "load_splits",
    "read_files",
    "teacher_forced_attention",
    "tokenize_all",
    "translate_corpus",
]
