"""SavedModel export in the TensorFlow Serving layout, written atomically.

    saved_models/<name>/<version>/saved_model.pb, variables/, assets/
    saved_models/<name>/<version>/assets.extra/recipe.yaml, model.keras, metrics.json, vocabularies

A version is written into a hidden temporary folder beside its final place
and renamed when complete, so a crash never leaves a half-written version
that a server (or `zoo.load`) would pick up.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from zoo.atomic_file import current_umask
from zoo.config import save_recipe
from zoo.versions import existing_versions, next_version

__all__ = ["atomic_export", "existing_versions", "export_serving", "next_version", "write_json"]


def atomic_export(
    module: tf.Module,
    base: str | os.PathLike,
    *,
    signatures: dict,
    extras: dict[str, Callable[[Path], None]],
    version: int | None = None,
) -> Path:
    """Saves `module` as `base/<version>` with `assets.extra/`, all or nothing.

    Args:
        module: the `tf.Module` to save (its tf.function attributes survive).
        base: the model's folder (`saved_models/<name>`).
        signatures: serving signatures for `tf.saved_model.save`.
        extras: file name -> writer called with the destination path, for
            `assets.extra/`.
        version: the version number; `None` takes the next free one.
    """
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    version = next_version(base) if version is None else int(version)
    final = base / str(version)
    if final.exists():
        raise FileExistsError(
            f"{final} already exists: versions are never overwritten; pick another export.version"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{version}-", dir=base))
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        extra_dir = tmp / "assets.extra"
        extra_dir.mkdir()
        for name, write in extras.items():
            write(extra_dir / name)
        # mkdtemp makes the folder 0700: a model server running as another
        # user must be able to read the version.
        os.chmod(tmp, 0o777 & ~current_umask())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_json(obj) -> Callable[[Path], None]:
    return lambda path: path.write_text(
        json.dumps(obj, indent=2, default=float) + "\n", encoding="utf-8"
    )


def _spec(name: str, dtype: str, shape=()) -> tf.TensorSpec:
    return tf.TensorSpec(list(shape), tf.as_dtype(dtype), name=name)


def serving_signatures(module: tf.Module, signatures) -> dict:
    """The concrete functions of the declared `signatures` (`zoo.tasks.base.Signature`).

    Each signature's method is traced with its inputs (served as `<name>`,
    and the first also as `serving_default`) and, when it has options, with
    its inputs then its options (served as `<name>_options`). The traced
    function is kept as the module's `<name>` attribute, so the loaded
    object's `<name>(...)` accepts both calls.
    """
    served = {}
    for signature in signatures:
        inputs = [_spec(i.name, i.dtype, i.shape) for i in signature.inputs]
        traced = tf.function(getattr(module, signature.method), autograph=False)
        plain = traced.get_concrete_function(*inputs)
        setattr(module, signature.name, traced)
        if not served:
            served["serving_default"] = plain
        served[signature.name] = plain
        if signature.options:
            options = [_spec(o.name, o.dtype) for o in signature.options]
            served[f"{signature.name}_options"] = traced.get_concrete_function(*inputs, *options)
    return served


def export_serving(module: tf.Module, signatures, recipe: dict, metrics: dict) -> Path:
    """Exports a task's serving module with the signatures the task declares.

    `module` holds `model` and `tokenizers` (a dict by key). `assets.extra/`
    gets the recipe, `model.keras`, `metrics.json`, `<key>_vocab.txt` for
    each tokenizer and their configurations in `tokenizers.json`.
    """
    served = serving_signatures(module, signatures)
    model, tokenizers = module.model, module.tokenizers
    extras = {
        "recipe.yaml": lambda path: save_recipe(recipe, path),
        "model.keras": lambda path: model.save(path),
        "metrics.json": write_json(metrics),
    }
    for key, tokenizer in tokenizers.items():
        extras[f"{key}_vocab.txt"] = lambda path, vocab=tokenizer.vocab: path.write_text(
            "\n".join(vocab) + "\n", encoding="utf-8"
        )
    extras["tokenizers.json"] = write_json(
        {key: tokenizer.get_config() for key, tokenizer in tokenizers.items()}
    )
    return atomic_export(
        module,
        Path(recipe["export"]["dir"]) / recipe["name"],
        signatures=served,
        extras=extras,
        version=recipe["export"]["version"],
    )
