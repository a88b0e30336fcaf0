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


@dataclasses.dataclass
class CaptionResult:
    """One caption: the text, its words, where the model looked for each, and the score.

    `attention` has shape `(len(tokens), grid, grid)`: map `t` is the
    attention over the image's grid of cells when word `t` was produced
    (row-major, cell `(0, 0)` at the top left). `score` is the caption's
    log-probability (end token included), divided by the GNMT length penalty
    for beam search. `image` names the input (its path, or `"<bytes>"`,
    `"<array>"`, `"<PIL image>"`); `image_data` holds the encoded image that
    was captioned, for `pixels()` and the overlay figure.
    """

    image: str
    text: str
    tokens: list[str]
    attention: np.ndarray
    score: float
    image_data: bytes = dataclasses.field(repr=False, default=b"")

    @property
    def words(self) -> list[str]:
        return self.tokens

    def pixels(self) -> np.ndarray:
        """The captioned image as an RGB uint8 array `(H, W, 3)`, at its own resolution."""
        import io

        from PIL import Image

        with Image.open(io.BytesIO(self.image_data)) as image:
            return np.asarray(image.convert("RGB"))


def _encoded_image(item) -> tuple[str, bytes]:
    """(name, encoded bytes) of a path, bytes, an `(H, W[, C])` uint8 array or a PIL image."""
    import io

    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        return str(path), path.read_bytes()
    if isinstance(item, (bytes, bytearray)):
        return "<bytes>", bytes(item)
    from PIL import Image

    if isinstance(item, Image.Image):
        name, image = "<PIL image>", item
    elif isinstance(item, np.ndarray):
        if item.dtype != np.uint8 or item.ndim not in (2, 3):
            raise TypeError(
                "an image array must be uint8 (H, W) or (H, W, 3|4). "
                f"Received: dtype={item.dtype}, shape={item.shape}"
            )
        name, image = "<array>", Image.fromarray(item)
    else:
        raise TypeError(
            "caption() takes image paths, encoded bytes, uint8 arrays or PIL images. "
            f"Received: {type(item).__name__}"
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return name, buffer.getvalue()


def resolve_export_dir(path: str | os.PathLike, version: int | None = None) -> Path:
    """`saved_models/<name>` (newest version, or `version`) or a version folder itself."""
    from zoo.export import existing_versions

    path = Path(path)
    if (path / "saved_model.pb").is_file():
        if version is not None:
            raise ValueError(f"{path} is already a version folder; drop version={version}")
        return path
    if not path.exists():
        present = existing_versions(path.parent) if path.name.isdigit() else []
        if present:
            raise FileNotFoundError(
                f"{path.parent} has no version {path.name}; versions present: {present}"
            )
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
        task: `"translation"`, `"parsing"` or `"captioning"`.
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
        """Task-generic call: `translate`, `parse` or `caption`, as the task asks."""
        methods = {"translation": self.translate, "parsing": self.parse, "captioning": self.caption}
        if self.task not in methods:
            raise NotImplementedError(f"task {self.task!r} has no Python API yet")
        return methods[self.task](inputs, **options)

    def _run(self, method: str, input_name: str, texts, beam_size, max_length):
        """Calls signature `method` (or `<method>_options`) on a batch of strings."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not all(isinstance(t, str) for t in batch):
            raise TypeError(f"{method}() takes a string or a list of strings")
        return batch, self._call(method, input_name, batch, beam_size, max_length)

    def _call(self, method: str, input_name: str, batch: list, beam_size, max_length) -> dict:
        """Signature `method` (or `<method>_options`) on a batch of strings (or bytes) -> NumPy."""
        import tensorflow as tf

        inputs = {input_name: tf.constant(batch, dtype=tf.string, shape=[len(batch)])}
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
        return {k: v.numpy() for k, v in out.items()}

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

    def caption(self, images, beam_size: int | None = None, max_length: int | None = None):
        """Captions one image (returns one `CaptionResult`) or a list (returns a list).

        An image is a file path, the bytes of a JPEG / PNG / GIF / BMP file, a
        uint8 array `(H, W)` or `(H, W, 3|4)`, or a PIL image; any size (the
        model resizes it).

        Raises:
            FileNotFoundError: a path that is not a file.
            ValueError: an image the model cannot decode; the message names it.
        """
        import tensorflow as tf

        self._check_task("captioning", "caption")
        single = not isinstance(images, (list, tuple))
        named = [_encoded_image(item) for item in ([images] if single else images)]
        try:
            out = self._call("caption", "image", [d for _, d in named], beam_size, max_length)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(_name_bad_image(error.message, [n for n, _ in named])) from None
        results = []
        for i, (name, data) in enumerate(named):
            tokens = _strings(out["tokens"][i])
            results.append(
                CaptionResult(
                    image=name,
                    text=out["caption"][i].decode("utf-8"),
                    tokens=tokens,
                    attention=out["attention"][i][: len(tokens)],
                    score=float(out["score"][i]),
                    image_data=data,
                )
            )
        return results[0] if single else results


def _name_bad_image(message: str, names: list[str]) -> str:
    """The graph's "image 2 of the batch ..." error, with the image's name put in."""
    import re

    match = re.search(r"image (\d+) of the batch(.*)", message, flags=re.DOTALL)
    if not match or int(match.group(1)) >= len(names):
        return message
    index = int(match.group(1))
    # tf.debugging.Assert prints its data as a list: drop the closing bracket.
    detail = match.group(2).split("\n")[0].strip().removesuffix("]").strip()
    return f"image {names[index]} (input {index + 1} of {len(names)}) {detail}"


def load(path: str | os.PathLike, version: int | None = None) -> LoadedModel:
    """Loads an exported model: `saved_models/<name>` (newest version) or a version folder."""
    return LoadedModel(resolve_export_dir(path, version))


def plot_attention(result, path: str | os.PathLike | None = None, **kwargs):
    """Draws the picture that fits the result.

    Text-to-text results (translation, parsing) get the attention heatmap
    (`zoo.plots.plot_attention`); a `CaptionResult` gets the image with the
    upsampled, smoothed attention of each word (`zoo.plots.plot_caption_attention`).
    """
    from zoo.plots import plot_attention as heatmap
    from zoo.plots import plot_caption_attention

    if isinstance(result, CaptionResult):
        return plot_caption_attention(
            result.pixels(), result.tokens, result.attention, path, **kwargs
        )
    if isinstance(result, (TranslationResult, ParseResult)):
        return heatmap(result.attention, result.source_tokens, result.tokens, path, **kwargs)
    raise TypeError(f"no attention plot for {type(result).__name__}")
