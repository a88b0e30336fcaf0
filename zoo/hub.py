"""`zoo.load`: exported models back in Python, as plain results with their attention."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class TranslationResult:
    """One translation: the text, its output tokens, the source tokens and the attention.

    `attention` has shape `(len(tokens), len(source_tokens))`: row `t` is the
    distribution over the source tokens when output token `t` was produced.
    `score` is the sum of the output's log-probabilities (end token included)
    for greedy search (`beam_size=1` in the recipe), and that sum divided by
    the GNMT length penalty for beam search. An empty input gives `text == ""`,
    no tokens and score 0.
    """

    source: str
    text: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray
    score: float


def resolve_export_dir(path: str | os.PathLike, version: int | None = None) -> Path:
    """`saved_models/<name>` (newest version, or `version`) or a version folder itself."""
    from zoo.export import existing_versions

    path = Path(path)
    if (path / "saved_model.pb").is_file():
        if version is not None:
            raise ValueError(f"{path} is already a version folder; drop version={version}")
        return path
    if not path.exists():
        raise FileNotFoundError(f"no exported model at {path}")
    versions = existing_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path} holds no numbered version folder with a saved_model.pb")
    if version is None:
        return path / str(versions[-1])
    if version not in versions:
        raise FileNotFoundError(f"{path} has no version {version}; versions present: {versions}")
    return path / str(version)


def _strings(row) -> list[str]:
    return [t.decode("utf-8") for t in row if t]


class LoadedModel:
    """An exported zoo model. Use `zoo.load(path)` to get one.

    Attributes:
        path: the version folder.
        task: `"translation"` (more tasks later).
        recipe: the resolved recipe it was trained with.
        metrics: the metrics measured at export.
        saved_model: the raw SavedModel object (`tf.saved_model.load`).
    """

    def __init__(self, path: Path):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops the graph uses)
        import yaml

        self.path = path
        extra = path / "assets.extra"
        self.recipe = yaml.safe_load((extra / "recipe.yaml").read_text(encoding="utf-8"))
        metrics_path = extra / "metrics.json"
        self.metrics = (
            json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
        )
        self.task = self.recipe["task"]
        self.saved_model = tf.saved_model.load(str(path))

    def __repr__(self) -> str:
        return f"LoadedModel(task={self.task!r}, path='{self.path}')"

    def __call__(self, inputs, **options):
        """Task-generic call: `translate` for translation."""
        if self.task == "translation":
            return self.translate(inputs, **options)
        raise NotImplementedError(f"task {self.task!r} has no Python API yet")

    def translate(
        self, texts: str | list[str], beam_size: int | None = None, max_length: int | None = None
    ):
        """Translates one sentence (returns one result) or a list (returns a list)."""
        import tensorflow as tf

        if self.task != "translation":
            raise TypeError(f"{self.path} is a {self.task} model; it has no translate()")
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not all(isinstance(t, str) for t in batch):
            raise TypeError("translate() takes a string or a list of strings")
        text = tf.constant(batch, dtype=tf.string)
        if beam_size is None and max_length is None:
            out = self.saved_model.signatures["translate"](text=text)
        else:
            beam = int(self.recipe["decode"]["beam_size"]) if beam_size is None else beam_size
            length = int(self.recipe["decode"]["max_length"]) if max_length is None else max_length
            if beam < 1 or length < 1:
                raise ValueError(
                    f"beam_size and max_length must be >= 1. Received: {beam}, {length}"
                )
            out = self.saved_model.signatures["translate_options"](
                text=text,
                beam_size=tf.constant(beam, tf.int32),
                max_length=tf.constant(length, tf.int32),
            )
        out = {k: v.numpy() for k, v in out.items()}
        results = []
        for i, source in enumerate(batch):
            tokens = _strings(out["tokens"][i])
            source_tokens = _strings(out["source_tokens"][i])
            results.append(
                TranslationResult(
                    source=source,
                    text=out["translation"][i].decode("utf-8"),
                    tokens=tokens,
                    source_tokens=source_tokens,
                    attention=out["attention"][i][: len(tokens), : len(source_tokens)],
                    score=float(out["score"][i]),
                )
            )
        return results[0] if single else results


def load(path: str | os.PathLike, version: int | None = None) -> LoadedModel:
    """Loads an exported model: `saved_models/<name>` (newest version) or a version folder."""
    return LoadedModel(resolve_export_dir(path, version))


def plot_attention(result, path: str | os.PathLike | None = None, **kwargs):
    """Draws the picture that fits the result: a heatmap for text-to-text tasks."""
    from zoo.plots import plot_attention as heatmap

    if isinstance(result, TranslationResult):
        return heatmap(result.attention, result.source_tokens, result.tokens, path, **kwargs)
    raise TypeError(f"no attention plot for {type(result).__name__}")
