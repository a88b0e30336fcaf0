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

__all__ = [
    "atomic_export",
    "existing_versions",
    "export_serving",
    "next_version",
    "remove_stale_partials",
    "write_json",
]


def atomic_export(
    module: tf.Module,
    base: str | os.PathLike,
    *,
    signatures: dict,
    extras: dict[str, Callable[[Path], None]],
    version: int | None = None,
) -> Path:
    """Saves `module` as `base/<version>` with `assets.extra/`, all or nothing.

    The version is claimed when the finished folder is renamed into place:
    with `version=None`, an export that finds its number taken meanwhile (by
    another process exporting into the same folder) takes the next free one,
    so two exports never share a version and neither is lost. A `version`
    given and taken meanwhile keeps the finished model under a hidden name
    and says where (`FileExistsError`).

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
    remove_stale_partials(base)
    if version is not None and (base / str(version)).exists():
        raise FileExistsError(
            f"{base / str(version)} already exists: versions are never overwritten; "
            "pick another export.version"
        )
    label = "next" if version is None else str(version)
    tmp = Path(tempfile.mkdtemp(prefix=f"{PARTIAL}{label}-p{os.getpid()}-", dir=base))
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        extra_dir = tmp / "assets.extra"
        extra_dir.mkdir()
        for name, write in extras.items():
            write(extra_dir / name)
        # mkdtemp makes the folder 0700: a model server running as another
        # user must be able to read the version.
        os.chmod(tmp, 0o777 & ~current_umask())
        return _claim(tmp, base, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


PARTIAL = ".partial-"
"""The prefix of a version being written (`.partial-<version|next>-p<pid>-<random>`)."""


def _claim(tmp: Path, base: Path, version: int | None) -> Path:
    """Renames the finished `tmp` to its version folder (the next free one for `None`)."""
    while True:
        number = next_version(base) if version is None else version
        final = base / str(number)
        try:
            # rename() fails on an existing non-empty folder (a version always
            # holds files), so a version another process took in between is
            # never replaced.
            if final.exists():
                raise FileExistsError(final)
            os.rename(tmp, final)
            return final
        except OSError as error:
            if not final.exists():
                raise
            if version is None:
                continue
            kept = base / f".kept-{version}-p{os.getpid()}"
            os.rename(tmp, kept)
            raise FileExistsError(
                f"{final} was written by another process while this model was exported; "
                f"this model is kept at {kept}: rename it to a free version number"
            ) from error


def remove_stale_partials(base: str | os.PathLike) -> list[Path]:
    """Removes the `.partial-*` folders of exports whose process has ended; returns them.

    An export killed midway (power cut, `kill -9`) leaves its hidden folder
    behind; servers ignore it, and the next export into `base` removes it.
    A folder whose process still runs (another export) is left alone. The
    process is looked up on this machine: on a folder shared between machines
    (NFS), another machine's running export would look stale.
    """
    base = Path(base)
    removed = []
    if not base.is_dir():
        return removed
    for path in base.iterdir():
        if not path.name.startswith(PARTIAL) or not path.is_dir():
            continue
        parts = path.name[len(PARTIAL) :].split("-")
        pid = int(parts[1][1:]) if len(parts) > 2 and parts[1][1:].isdigit() else None
        if pid is not None and pid != os.getpid() and _process_alive(pid):
            continue
        if pid == os.getpid():
            continue  # this process's own export in progress
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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
