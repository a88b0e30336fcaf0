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


@dataclasses.dataclass
class ParseResult:
    """One parse: the tree, the linearised symbols, the words and the attention.

    `tree` is bracketed with the sentence's words in place of the ``XX``
    placeholders, ``"(S (NP John) (VP has (NP a dog)) .)"``; `linearized` is
    what the decoder wrote, ``"(S (NP XX )NP (VP XX (NP XX XX )NP )VP XX )S"``.
    `attention` has shape `(len(tokens), len(source_tokens))`, the source
    tokens being the words and ``[END]``. An empty sentence gives
    ``tree == ""``, no tokens and score 0.
    """

    sentence: str
    tree: str
    linearized: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray
    score: float

    @property
    def text(self) -> str:
        """The tree string (what `zoo predict` prints)."""
        return self.tree

    @property
    def words(self) -> list[str]:
        return self.source_tokens[:-1]

    def to_tree(self):
        """The parse as a `zoo.data.treebank.Tree` (``XX`` preterminals over the words).

        Raises:
            ValueError: the output is not a well-formed tree (possible only
                when the recipe decoded with `decode.constrained: false`);
                `zoo.data.treebank.repair_linearized` fixes it.
        """
        from zoo.data.treebank import delinearize

        return delinearize(self.tokens, self.words)

    def draw(self) -> str:
        """The tree drawn as text (see `zoo.data.treebank.Tree.draw`); "" for an empty sentence."""
        return self.to_tree().draw() if self.tokens else ""


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
        task: `"translation"` or `"parsing"`.
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
        """Task-generic call: `translate` for translation, `parse` for parsing."""
        methods = {"translation": self.translate, "parsing": self.parse}
        if self.task not in methods:
            raise NotImplementedError(f"task {self.task!r} has no Python API yet")
        return methods[self.task](inputs, **options)

    def _run(self, method: str, input_name: str, texts, beam_size, max_length):
        """Calls signature `method` (or `<method>_options`) on a batch of strings."""
        import tensorflow as tf

        batch = [texts] if isinstance(texts, str) else list(texts)
        if not all(isinstance(t, str) for t in batch):
            raise TypeError(f"{method}() takes a string or a list of strings")
        inputs = {input_name: tf.constant(batch, dtype=tf.string)}
        if beam_size is None and max_length is None:
            out = self.saved_model.signatures[method](**inputs)
        else:
            beam = int(self.recipe["decode"]["beam_size"]) if beam_size is None else beam_size
            length = int(self.recipe["decode"]["max_length"]) if max_length is None else max_length
            if beam < 1 or length < 1:
                raise ValueError(
                    f"beam_size and max_length must be >= 1. Received: {beam}, {length}"
                )
            out = self.saved_model.signatures[f"{method}_options"](
                **inputs,
                beam_size=tf.constant(beam, tf.int32),
                max_length=tf.constant(length, tf.int32),
            )
        return batch, {k: v.numpy() for k, v in out.items()}

    def _check_task(self, task: str, method: str) -> None:
        if self.task != task:
            raise TypeError(f"{self.path} is a {self.task} model; it has no {method}()")

    def translate(
        self, texts: str | list[str], beam_size: int | None = None, max_length: int | None = None
    ):
        """Translates one sentence (returns one result) or a list (returns a list)."""
        self._check_task("translation", "translate")
        batch, out = self._run("translate", "text", texts, beam_size, max_length)
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
        return results[0] if isinstance(texts, str) else results

    def parse(
        self,
        sentences: str | list[str],
        beam_size: int | None = None,
        max_length: int | None = None,
    ):
        """Parses one sentence (returns one `ParseResult`) or a list (returns a list).

        A sentence is its words separated by white space (``"John has a dog ."``).
        """
        self._check_task("parsing", "parse")
        batch, out = self._run("parse", "sentence", sentences, beam_size, max_length)
        results = []
        for i, sentence in enumerate(batch):
            tokens = _strings(out["tokens"][i])
            words = _strings(out["source_tokens"][i])
            results.append(
                ParseResult(
                    sentence=sentence,
                    tree=out["tree"][i].decode("utf-8"),
                    linearized=out["linearized"][i].decode("utf-8"),
                    tokens=tokens,
                    source_tokens=words,
                    attention=out["attention"][i][: len(tokens), : len(words)],
                    score=float(out["score"][i]),
                )
            )
        return results[0] if isinstance(sentences, str) else results


def load(path: str | os.PathLike, version: int | None = None) -> LoadedModel:
    """Loads an exported model: `saved_models/<name>` (newest version) or a version folder."""
    return LoadedModel(resolve_export_dir(path, version))


def plot_attention(result, path: str | os.PathLike | None = None, **kwargs):
    """Draws the picture that fits the result: a heatmap for text-to-text tasks."""
    from zoo.plots import plot_attention as heatmap

    if isinstance(result, (TranslationResult, ParseResult)):
        return heatmap(result.attention, result.source_tokens, result.tokens, path, **kwargs)
    raise TypeError(f"no attention plot for {type(result).__name__}")
