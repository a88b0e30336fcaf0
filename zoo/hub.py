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

    def __init__(self, path: Path):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops the graph uses)
        import yaml

        from zoo.tasks import get_task

        self.path = path
        extra = path / "assets.extra"
        self.recipe = yaml.safe_load((extra / "recipe.yaml").read_text(encoding="utf-8"))
        metrics_path = extra / "metrics.json"
        self.metrics = (
            json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
        )
        self.task = self.recipe["task"]
        self._task = get_task(self.task)
        self.saved_model = tf.saved_model.load(str(path))

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
            if value is None:
                value = self.recipe
                for key in option.recipe_key.split("."):
                    value = value[key]
            values[option.name] = value
        low = [o for o in signature.options if o.minimum is not None and values[o.name] < o.minimum]
        if low:
            names = " and ".join(o.name for o in signature.options)
            shown = ", ".join(str(values[o.name]) for o in signature.options)
            minimum = low[0].minimum
            raise ValueError(f"{names} must be >= {minimum}. Received: {shown}")
        return values

    def _invoke(self, signature, inputs, *args, **options):
        """The signature on `inputs`; options by name, or in their declared order after them."""
        import tensorflow as tf

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


def load(path: str | os.PathLike, version: int | None = None) -> LoadedModel:
    """Loads an exported model: `saved_models/<name>` (newest version) or a version folder."""
    return LoadedModel(resolve_export_dir(path, version))


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
