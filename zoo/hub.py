"""`zoo.load`: exported models back in Python, as the task's results with their attention."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from zoo.versions import resolve_export_dir

__all__ = ["LoadedModel", "load", "plot_attention", "resolve_export_dir"]


class LoadedModel:
    """An exported zoo model. Use `zoo.load(path)` to get one.

    Call it (`model(inputs)`) or call a signature its task declares by name
    (`model.translate(...)`, `model.parse(...)`, `model.caption(...)`);
    options (`beam_size`, `max_length`) default to the recipe's.

    Attributes:
        path: the version folder.
        task: the task's name (the recipe's `task`).
        recipe: the resolved recipe it was trained with.
        metrics: the metrics measured at export.
        saved_model: the raw SavedModel object (`tf.saved_model.load`).
    """

    def __init__(self, path: Path, *, trust: bool = False):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops the graph uses)

        from zoo.security import ExportError, check_export

        self.path = path
        # Read as data before anything of the export runs (loading runs some of its functions).
        self.scan = check_export(path, trust=trust)
        self.recipe, self.metrics = read_extras(path)
        self.task = self.recipe["task"]
        self._task = get_task_of(path, self.task)
        missing = [s.name for s in self._task.signatures if s.name not in self.scan.signatures]
        if missing:
            raise ExportError(
                f"{path} is a {self.task} model without the signature {', '.join(missing)}: "
                f"its graph serves {', '.join(self.scan.signatures) or 'nothing'}"
            )
        try:
            self.saved_model = tf.saved_model.load(str(path))
        except Exception as error:  # noqa: BLE001  (whatever TensorFlow raises on a damaged export)
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            raise ExportError(
                f"{path} cannot be loaded: {reason.strip().splitlines()[0]}"
            ) from None

    def __repr__(self) -> str:
        return f"LoadedModel(task={self.task!r}, path='{self.path}')"

    def __call__(self, inputs, *args, **options):
        """The task's first signature on one input (one result) or a list (a list)."""
        return self._invoke(self._task.signature(), inputs, *args, **options)

    def __getattr__(self, name: str):
        if name.startswith("_") or "_task" not in self.__dict__:
            raise AttributeError(name)
        for signature in self._task.signatures:
            if signature.name == name:
                return functools.partial(self._invoke, signature)
        from zoo.tasks import get_task, task_names

        for other in task_names():
            if other != self.task and any(s.name == name for s in get_task(other).signatures):
                raise TypeError(f"{self.path} is a {self.task} model; it has no {name}()")
        raise AttributeError(f"{type(self).__name__} of a {self.task} model has no {name!r}")

    def _option_values(self, signature, given: dict) -> dict | None:
        """The options to send (recipe defaults filled in), or None for the plain signature."""
        unknown = set(given) - {o.name for o in signature.options}
        if unknown:
            raise TypeError(f"{signature.name}() got unexpected options {sorted(unknown)}")
        if all(given.get(o.name) is None for o in signature.options):
            return None
        values = {}
        for option in signature.options:
            value = given.get(option.name)
            values[option.name] = option.default(self.recipe) if value is None else value
        low = [o for o in signature.options if o.minimum is not None and values[o.name] < o.minimum]
        if low:
            names = " and ".join(o.name for o in signature.options)
            shown = ", ".join(str(values[o.name]) for o in signature.options)
            minimum = low[0].minimum
            raise ValueError(f"{names} must be >= {minimum}. Received: {shown}")
        return values

    def stream(self, inputs, *args, signature: str | None = None, batch_size: int = 64, **options):
        """Yields the results of `inputs` (any iterable, read as it goes) in their order.

        The inputs are decoded `batch_size` at a time; inside each window of
        `WINDOW_BATCHES` batches they are grouped by length (less padding),
        and the window's results are yielded in input order before the next
        window is read, so memory stays flat whatever the number of inputs.
        `signature` names one the task declares (default: the first);
        options as for calling the model.
        """
        chosen = self._task.signature(signature)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1. Received: {batch_size!r}")
        return self._stream(chosen, inputs, args, batch_size, options)

    def _stream(self, chosen, inputs, args, batch_size: int, options):
        window: list = []
        done = 0
        for item in inputs:
            window.append(item)
            if len(window) == batch_size * WINDOW_BATCHES:
                yield from self._window(chosen, window, batch_size, args, options, done)
                done += len(window)
                window = []
        if window:
            yield from self._window(chosen, window, batch_size, args, options, done)

    def _window(self, signature, items: list, batch_size: int, args, options, first: int) -> list:
        """The results of `items`, decoded in batches of similar length, in input order.

        `first`: the position of `items[0]` among all the inputs (warnings name inputs by it).
        """
        from zoo.tasks.truncation import input_positions

        lengths = _check_lengths(items, first)
        order = sorted(range(len(items)), key=lengths.__getitem__)
        results: list = [None] * len(items)
        for chosen in _batches(order, lengths, batch_size):
            batch = [items[i] for i in chosen]
            if isinstance(batch[0], dict):  # several inputs: a dict of lists
                batch = {key: [item[key] for item in batch] for key in batch[0]}
            token = input_positions.set([first + i for i in chosen])
            try:
                decoded = self._call(signature, batch, args, options)
            finally:
                input_positions.reset(token)
            for i, result in zip(chosen, decoded, strict=True):
                results[i] = result
        return results

    def _invoke(self, signature, inputs, *args, batch_size: int = 64, **options):
        """The signature on one input or a list, decoded `batch_size` at a time."""
        names = {spec.name for spec in signature.inputs}
        malformed = not hasattr(inputs, "__iter__") or (
            isinstance(inputs, dict)
            and (set(inputs) != names or len({len(list(v)) for v in inputs.values()}) > 1)
        )
        if malformed or self._task.single_input(signature, inputs):
            # One input, or inputs the task's `prepare_inputs` refuses with its own message.
            from zoo.tasks.truncation import input_positions

            if not malformed:
                _check_lengths([inputs], 0)
            token = input_positions.set([0])
            try:
                return self._call(signature, inputs, args, options)
            finally:
                input_positions.reset(token)
        if isinstance(inputs, dict):  # a dict of lists -> a list of dicts
            keys = list(inputs)
            inputs = [
                dict(zip(keys, row, strict=True)) for row in zip(*inputs.values(), strict=True)
            ]
        return list(
            self.stream(inputs, *args, signature=signature.name, batch_size=batch_size, **options)
        )

    def _call(self, signature, inputs, args, options):
        """The signature on `inputs`; options by name, or in their declared order after them."""
        import tensorflow as tf

        options = dict(options)
        if len(args) > len(signature.options):
            raise TypeError(
                f"{signature.name}() takes {len(signature.options)} options after the inputs "
                f"({', '.join(o.name for o in signature.options)}); got {len(args)}"
            )
        for option, value in zip(signature.options, args, strict=False):
            if option.name in options:
                raise TypeError(f"{signature.name}() got {option.name} twice")
            options[option.name] = value
        items, feeds, single = self._task.prepare_inputs(signature, inputs)
        values = self._option_values(signature, options)
        try:
            if values is None:
                out = self.saved_model.signatures[signature.name](**feeds)
            else:
                dtypes = {o.name: tf.as_dtype(o.dtype) for o in signature.options}
                constants = {k: tf.constant(v, dtypes[k]) for k, v in values.items()}
                out = self.saved_model.signatures[f"{signature.name}_options"](**feeds, **constants)
        except tf.errors.OpError as error:
            clearer = self._task.call_error(error, items)
            if clearer is None:
                raise
            raise clearer from None
        results = self._task.results(signature, items, {k: v.numpy() for k, v in out.items()})
        return results[0] if single else results


WINDOW_BATCHES = 16
"""Batches read ahead and sorted by length in `LoadedModel.stream`."""

MAX_INPUT_CHARACTERS = 1_000_000
"""The longest input text decoded (about 200,000 words): a longer one is refused, not decoded
into memory the size of its encoder states."""

BATCH_CHARACTERS = 64 * 512
"""At most this many characters in a batch once padded: a very long input is decoded with
fewer others (alone if need be), so one huge line cannot make its batch's padding huge."""


def _check_lengths(items: list, first: int) -> list[int]:
    """The inputs' lengths (`_input_length`); a `ValueError` for one over `MAX_INPUT_CHARACTERS`."""
    lengths = [_input_length(item) for item in items]
    for i, length in enumerate(lengths):
        if length > MAX_INPUT_CHARACTERS:
            raise ValueError(
                f"input {first + i + 1} is {length:,} characters long, more than the "
                f"{MAX_INPUT_CHARACTERS:,} zoo.load decodes at once; split it"
            )
    return lengths


def _batches(order: list[int], lengths: list[int], batch_size: int):
    """Consecutive runs of `order` (sorted by length) of at most `batch_size` inputs and
    `BATCH_CHARACTERS` padded characters."""
    batch: list[int] = []
    for i in order:
        longest = lengths[i]  # `order` is sorted: the newcomer is the longest
        if batch and (len(batch) == batch_size or longest * (len(batch) + 1) > BATCH_CHARACTERS):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _input_length(item) -> int:
    """What inputs are sorted by inside a window: their characters (images: not sorted)."""
    if isinstance(item, str) and not item.lower().endswith(IMAGE_SUFFIXES):
        return len(item)
    if isinstance(item, dict):
        return sum(len(v) for v in item.values() if isinstance(v, str))
    return 0


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def read_extras(path: Path) -> tuple[dict, dict]:
    """An export's `assets.extra/recipe.yaml` and `metrics.json` (empty when absent)."""
    import yaml

    from zoo.security import ExportError

    extra = path / "assets.extra"
    try:
        recipe = yaml.safe_load((extra / "recipe.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(
            f"{path} has no assets.extra/recipe.yaml: not a zoo export (plain TensorFlow "
            "loads it with tf.saved_model.load)"
        ) from None
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise ExportError(f"{extra / 'recipe.yaml'} is unreadable: {error}") from None
    if not isinstance(recipe, dict) or "task" not in recipe:
        raise ExportError(f"{extra / 'recipe.yaml'} names no task: not a zoo export's recipe")
    metrics_path = extra / "metrics.json"
    try:
        metrics = (
            json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
        )
    except (UnicodeDecodeError, ValueError):
        metrics = {}  # informative only: a damaged file does not stop the model
    return recipe, metrics


def get_task_of(path: Path, name: str):
    """The registered task an export's recipe names, or a clear error."""
    from zoo.security import ExportError
    from zoo.tasks import get_task, task_names

    if name not in task_names():
        raise ExportError(
            f"{path} is a model of task {name!r}, which this zoo does not have "
            f"(tasks: {', '.join(task_names())})"
        )
    return get_task(name)


def load(
    path: str | os.PathLike, version: int | None = None, *, trust: bool = False
) -> LoadedModel:
    """Loads an exported model: `saved_models/<name>` (newest version) or a version folder.

    The export's graph is scanned first (`zoo.security`): one that holds ops
    touching files, processes or the network is refused
    (`zoo.security.UntrustedExportError`) unless `trust=True`. Inputs given as a
    list are decoded in batches (`batch_size=` on any call, default 64);
    `model.stream(iterable)` yields results as it reads.
    """
    return LoadedModel(resolve_export_dir(path, version), trust=trust)


def plot_attention(result, path: str | os.PathLike | None = None, **kwargs):
    """Draws the picture that fits the result (`result.plot`).

    Text-to-text results (translation, parsing) get the attention heatmap
    (`zoo.plots.plot_attention`); a caption gets the image with the
    upsampled, smoothed attention of each word (`zoo.plots.plot_caption_attention`).
    """
    from zoo.tasks.base import Result

    if not isinstance(result, Result):
        raise TypeError(f"no attention plot for {type(result).__name__}")
    return result.plot(path, **kwargs)
