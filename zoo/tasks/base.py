"""The Task interface: what a task knows about its problem, and nothing about the flow.

`zoo.runner` takes any task through the same flow (splits -> tokenizers ->
model -> datasets -> fit -> serving module -> evaluation -> export, and
fine-tuning); `zoo.export` saves the signatures a task declares; `zoo.load`
and `zoo predict` turn their outputs into the task's results. A task is a
subclass of `Task` registered in `zoo.tasks` (see "Add a task" in the README).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

from zoo.config import FinetuneKeys


@dataclasses.dataclass
class Splits:
    """A data section's examples, split; `report` says where they came from."""

    train: list
    validation: list
    test: list
    report: str = ""


@dataclasses.dataclass(frozen=True)
class Option:
    """A scalar option of a signature (`beam_size`), its default read from the recipe.

    Attributes:
        name: the argument's name in the signature and in Python calls.
        recipe_key: the dotted recipe key its default comes from.
        dtype: the TensorFlow dtype's name.
        minimum: the smallest value a caller may pass.
    """

    name: str
    recipe_key: str
    dtype: str = "int32"
    minimum: int | float | None = 1

    def default(self, recipe: dict):
        """The option's value in `recipe` (the dotted `recipe_key` looked up)."""
        value = recipe
        for key in self.recipe_key.split("."):
            value = value[key]
        return value


@dataclasses.dataclass(frozen=True)
class Input:
    """An input of a signature: a batch `(None,)` of `dtype` (strings: text, encoded images)."""

    name: str
    dtype: str = "string"
    shape: tuple = (None,)


@dataclasses.dataclass(frozen=True)
class Signature:
    """A function the export serves, as the task declares it.

    Attributes:
        name: its name in the SavedModel and in Python (`model.translate(...)`).
        method: the serving module's method it traces, called with the inputs
            (then the options) positionally; it returns a dict of tensors.
        inputs: what the caller sends, batched along the first axis.
        options: scalar options; with any, the export also serves
            `<name>_options`, which takes them.
    """

    name: str
    method: str
    inputs: tuple[Input, ...]
    options: tuple[Option, ...] = ()


@dataclasses.dataclass(frozen=True)
class FinetunePolicy:
    """What a fine-tuning of the task may touch.

    Attributes:
        parts: the model's parts `finetune.freeze` and
            `finetune.learning_rate_multipliers` name, in the order messages list them.
        narrowest_first: the parts from the narrowest: a variable in several
            parts takes the factor of the narrowest part given one.
        closed_vocabularies: tokenizer keys that cannot fall back on [UNK]
            (tree symbols): a new token missing from one is an error.
        keys: the recipe keys a fine-tuning may change (see `FinetuneKeys`).
    """

    parts: tuple[str, ...] = ("encoder", "decoder")
    narrowest_first: tuple[str, ...] = ("encoder", "decoder")
    closed_vocabularies: tuple[str, ...] = ()
    keys: FinetuneKeys = FinetuneKeys()


class TruncationWarning(UserWarning):
    """An input or output was cut: a result does not cover all of its input.

    Raised by a task's `results` (what `zoo.load(...)(...)` and `zoo predict`
    return) when decoding stopped at `max_length` without its end token, or
    when a parse could not cover every word; the message names the input.
    """


class Result:
    """One output of an exported model, as `zoo.load(...)(...)` and `zoo predict` give it.

    Subclasses are dataclasses with at least `text` and `tokens`; `attention`
    when there is something to plot.
    """

    text: str
    tokens: list[str]

    def to_json(self) -> dict:
        """What `zoo predict --json` prints after the input (`source`)."""
        return {"text": self.text, "tokens": list(self.tokens), "score": self.score}

    def display(self) -> str:
        """What `zoo predict` prints."""
        return self.text

    def plot_title(self, source: str) -> str:
        """The title of the attention figure of the input `source`."""
        return source

    def plot(self, path: str | os.PathLike | None = None, **kwargs):
        """Draws the attention; returns the figure (written to `path` when given)."""
        raise TypeError(f"no attention plot for {type(self).__name__}")


# The last few traced functions, so that evaluating again (before and after
# fine-tuning) does not trace again; bounded, so old modules can be freed.
_TRACED: collections.OrderedDict = collections.OrderedDict()
_TRACED_KEPT = 8


def traced(module, method: str):
    """`tf.function(module.<method>)`, made once per module however often it evaluates."""
    import tensorflow as tf

    key = (id(module), method)
    if key not in _TRACED or _TRACED[key][0] is not module:
        function = tf.function(getattr(module, method), autograph=False, reduce_retracing=True)
        _TRACED[key] = (module, function)
        while len(_TRACED) > _TRACED_KEPT:
            _TRACED.popitem(last=False)
    _TRACED.move_to_end(key)
    return _TRACED[key][1]


def strings(row) -> list[str]:
    """A row of "" padded byte strings -> the non-empty strings."""
    return [t.decode("utf-8") for t in row if t]


class Task:
    """A problem the zoo can learn: its data, model, serving signatures, metrics and results.

    Subclasses set the class attributes and implement the methods that raise
    `NotImplementedError`; `zoo.runner` calls them in order. `recipe` is
    always the resolved recipe (every key present).
    """

    name: str = ""
    """Set by the registry to the name the task is registered under."""
    schema: ClassVar[Any] = None
    """The task's recipe sections (a `zoo.config.Section` or dict), merged over the library's."""
    data_formats: ClassVar[tuple[str, ...]] = ()
    """The `data.kind`s that read files (`zoo finetune --format`)."""
    example_noun: ClassVar[str] = "examples"
    """What the log calls the examples ("pairs", "trees", "images")."""
    signatures: ClassVar[tuple[Signature, ...]] = ()
    """What the export serves; the first is also `serving_default`."""
    finetune_policy: ClassVar[FinetunePolicy] = FinetunePolicy()
    user_errors: ClassVar[tuple[type[Exception], ...]] = ()
    """Exceptions of the task's own readers that describe bad user data (`zoo` prints them
    without a traceback, as it does `zoo.data.translation_readers.DataFormatError`)."""

    # --- data ---------------------------------------------------------------------------
    def load_splits(self, data: dict) -> Splits:
        """The train / validation / test examples a data section names."""
        raise NotImplementedError

    def read_files(self, data: dict) -> tuple[list, str]:
        """Every example of a data section that names files, unsplit, and a report."""
        raise NotImplementedError

    def read_examples(self, data: dict) -> tuple[list, str]:
        """Every example a data section names, unsplit (`zoo evaluate --split all`).

        Generated data has no files: its three splits together.
        """
        if data["kind"] == "synthetic":
            splits = self.load_splits(data)
            return splits.train + splits.validation + splits.test, splits.report
        return self.read_files(data)

    def data_section(self, paths: list[str], kind: str | None, command: str) -> dict:
        """The `data` section of `zoo finetune / evaluate --data PATH [--format KIND]`."""
        kind = kind or self.guess_format(paths)  # a kind the task lacks: the schema says so
        if len(paths) != 1:
            raise ValueError(f"--format {kind} takes one --data path; got {len(paths)}")
        return {"kind": kind, "path": paths[0]}

    def guess_format(self, paths: list[str]) -> str:
        """The data kind of `paths` when `--format` is not given."""
        if not self.data_formats:
            raise ValueError(f"a {self.name} model reads no data files: drop --data")
        return self.data_formats[0]

    # --- tokenizers and model -----------------------------------------------------------
    def build_tokenizers(self, train: list, recipe: dict, log) -> dict[str, Any]:
        """Tokenizers by key (`source`, `target`...) built on the training examples."""
        raise NotImplementedError

    def vocabulary_texts(self, train: list) -> dict[str, list[str]]:
        """The training texts each tokenizer reads, by the same keys (vocabulary extension)."""
        raise NotImplementedError

    def build_model(self, recipe: dict, tokenizers: dict, *, pretrained: bool = True):
        """The recipe's Keras model, built. `pretrained=False`: weights will come from an export."""
        raise NotImplementedError

    def model_parts(self, model) -> dict[str, list]:
        """The layers each part of `finetune_policy.parts` names (empty: the model lacks it)."""
        raise NotImplementedError

    def datasets(
        self, recipe: dict, model, tokenizers: dict, splits: Splits, run_dir: Path, log
    ) -> tuple[dict, dict[str, int]]:
        """`{"train", "validation"}` datasets for `fit`, and each one's count of target tokens."""
        raise NotImplementedError

    def compile(self, model, train: dict, steps_per_epoch: int, multipliers: dict | None = None):
        """Compiles for `fit`; `multipliers` (variable path -> factor) scale learning rates."""
        raise NotImplementedError

    # --- serving and evaluation ---------------------------------------------------------
    def serving_module(self, model, tokenizers: dict, recipe: dict):
        """The `tf.Module` whose `signatures` methods the export serves.

        It must hold `model` (saved as `model.keras`) and `tokenizers` (a dict
        by key, whose vocabularies are written beside the export).
        """
        raise NotImplementedError

    def evaluate(self, model, serving, examples: list, recipe: dict, *, final: bool = False):
        """Metrics of `examples` decoded by `serving` (what the export serves).

        `final`: the test-set evaluation of a run (extra analyses may run).
        """
        raise NotImplementedError

    def validation_score(self, model, tokenizers: dict, examples: list, recipe: dict):
        """What training watches instead of the validation loss, or None (the loss).

        Returns `(name, score_fn)`: `score_fn()` decodes `examples` with the
        model as it is and returns a number, higher is better; the log shows
        it as `val_<name>` after each epoch, and early stopping
        (`train.patience`) keeps the weights that scored best.
        """
        return None

    def headline(self, metrics: dict) -> str:
        """The one-line summary of `metrics` ("BLEU 30.1, chrF 54.2")."""
        raise NotImplementedError

    def format_metrics(self, metrics: dict) -> str:
        """The metrics as the log prints them."""
        return self.headline(metrics)

    # --- results ------------------------------------------------------------------------
    def signature(self, name: str | None = None) -> Signature:
        """The declared signature `name` (default: the first)."""
        for signature in self.signatures:
            if name is None or signature.name == name:
                return signature
        raise KeyError(name)

    def single_input(self, signature: Signature, inputs) -> bool:
        """Whether `inputs` is one input (one result) rather than several (a list of results).

        The default: a string, or a dict of strings for a signature with
        several inputs; anything else is a sequence of inputs.
        """
        if isinstance(inputs, dict):
            return all(isinstance(v, str) for v in inputs.values())
        return isinstance(inputs, str)

    def prepare_inputs(self, signature: Signature, inputs) -> tuple[list, dict, bool]:
        """Python inputs -> (items, feeds by input name, whether one item was given).

        The default takes one string or a list of strings for a signature
        with one string input, and a dict of them (by input name) for several.
        """
        import tensorflow as tf

        names = [spec.name for spec in signature.inputs]
        if len(names) == 1:
            inputs = {names[0]: inputs}
        if not isinstance(inputs, dict) or set(inputs) != set(names):
            raise TypeError(f"{signature.name}() takes its inputs by name: {', '.join(names)}")
        single = all(isinstance(v, str) for v in inputs.values())
        columns = {k: [v] if isinstance(v, str) else list(v) for k, v in inputs.items()}
        for values in columns.values():
            if not all(isinstance(t, str) for t in values):
                raise TypeError(f"{signature.name}() takes a string or a list of strings")
        sizes = {len(v) for v in columns.values()}
        if len(sizes) > 1:
            raise ValueError(f"{signature.name}(): the inputs have different lengths {sizes}")
        size = sizes.pop()
        feeds = {k: tf.constant(v, dtype=tf.string, shape=[size]) for k, v in columns.items()}
        if len(names) == 1:
            items = columns[names[0]]
        else:
            rows = zip(*columns.values(), strict=True)
            items = [dict(zip(columns, row, strict=True)) for row in rows]
        return items, feeds, single

    def results(self, signature: Signature, items: list, outputs: dict) -> list[Result]:
        """One `Result` per item from the signature's NumPy outputs."""
        raise NotImplementedError

    def call_error(self, error: Exception, items: list) -> Exception | None:
        """A clearer exception for an error the graph raised on `items` (None: keep it)."""
        return None
