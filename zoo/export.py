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


def existing_versions(base: str | os.PathLike) -> list[int]:
    """The numeric version folders under `base`, ascending (TF Serving's convention)."""
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(base: str | os.PathLike) -> int:
    versions = existing_versions(base)
    return versions[-1] + 1 if versions else 1


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


def export_task(
    module,
    function,
    recipe: dict,
    metrics: dict,
    *,
    method: str,
    input_name: str,
    tokenizers: dict,
) -> Path:
    """Exports a task's in-graph module (translator, parser, caption generator).

    `function(inputs, beam_size=None, max_length=None)`, inputs a string
    vector (sentences, or encoded images), is traced twice and served as
    `serving_default` and `<method>` (inputs only, the recipe's decoding)
    and `<method>_options` (with `beam_size` and `max_length`); it is also
    kept as the module's `<method>` attribute, so the loaded object's
    `<method>(...)` accepts both calls. `assets.extra/` gets the recipe,
    `model.keras`, `metrics.json`, `<key>_vocab.txt` for each of
    `tokenizers` and their configurations in `tokenizers.json`.
    """
    inputs_spec = tf.TensorSpec([None], tf.string, name=input_name)
    beam_spec = tf.TensorSpec([], tf.int32, name="beam_size")
    length_spec = tf.TensorSpec([], tf.int32, name="max_length")
    traced = tf.function(function, autograph=False)
    plain = traced.get_concrete_function(inputs_spec)
    with_options = traced.get_concrete_function(inputs_spec, beam_spec, length_spec)
    setattr(module, method, traced)
    signatures = {
        "serving_default": plain,
        method: plain,
        f"{method}_options": with_options,
    }
    model = module.model
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
        signatures=signatures,
        extras=extras,
        version=recipe["export"]["version"],
    )


def export_seq2seq(module, function, recipe: dict, metrics: dict, *, method: str, input_name: str):
    """`export_task` for a module with `source_tokenizer` and `target_tokenizer`."""
    tokenizers = {"source": module.source_tokenizer, "target": module.target_tokenizer}
    return export_task(
        module,
        function,
        recipe,
        metrics,
        method=method,
        input_name=input_name,
        tokenizers=tokenizers,
    )


def export_translation(translator, recipe: dict, metrics: dict) -> Path:
    """Exports a `zoo.tasks.translation.Translator`: `translate(text)` and `translate_options`."""
    return export_seq2seq(
        translator,
        translator.translate_text,
        recipe,
        metrics,
        method="translate",
        input_name="text",
    )


def export_parsing(parser, recipe: dict, metrics: dict) -> Path:
    """Exports a `zoo.tasks.parsing.Parser`: `parse(sentence)` and `parse_options`."""
    return export_seq2seq(
        parser, parser.parse_text, recipe, metrics, method="parse", input_name="sentence"
    )


def export_captioning(generator, recipe: dict, metrics: dict) -> Path:
    """Exports a `zoo.tasks.captioning.CaptionGenerator`: `caption(image)` and `caption_options`."""
    return export_task(
        generator,
        generator.caption_images,
        recipe,
        metrics,
        method="caption",
        input_name="image",
        tokenizers={"caption": generator.tokenizer},
    )
