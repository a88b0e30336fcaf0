"""Image captioning (Show, Attend and Tell, Xu et al. 2015): see `zoo.tasks.captioning.task`."""

from zoo.tasks.captioning.data import (
    CaptionExample,
    build_tokenizer,
    cache_features,
    caption_ids,
    decode_all,
    load_splits,
    make_dataset,
    make_datasets,
    read_files,
)
from zoo.tasks.captioning.results import CaptionResult
from zoo.tasks.captioning.task import (
    CaptionGenerator,
    CaptioningTask,
    build_model,
    compile_model,
    evaluate,
    format_metrics,
)

__all__ = [
    "CaptionExample",
    "CaptionGenerator",
    "CaptionResult",
    "CaptioningTask",
    "build_model",
    "build_tokenizer",
    "cache_features",
    "caption_ids",
    "compile_model",
    "decode_all",
    "evaluate",
    "format_metrics",
    "load_splits",
    "make_dataset",
    "make_datasets",
    "read_files",
]
