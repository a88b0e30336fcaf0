"""Recipes: the task registry, overrides, resolution, fine-tuning merges, YAML out.

A task's schema is merged over the library's (`zoo.config.sections`) when
it is registered. Tasks are found through a catalog that `zoo.tasks`
installs (`set_task_catalog`): this module names no task and imports none.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from zoo.atomic_file import write_atomically
from zoo.config.schema import (
    Field,
    RecipeError,
    Section,
    _as_node,
    _did_you_mean,
    _join,
    _load_yaml,
    _RecipeDumper,
    _resolve_section,
    _show,
    _unknown_key_message,
    _yaml_error_text,
)
from zoo.config.sections import LIBRARY_SCHEMA

# --------------------------------------------------------------------------- registry

_TASK_SCHEMAS: dict[str, Section] = {}


@dataclasses.dataclass(frozen=True)
class FinetuneKeys:
    """Which recipe keys a fine-tuning may change, and which data keys it keeps from the base.

    Attributes:
        free_model_keys: `model` settings that change no weight's shape
            (dropout...): a fine-tuning recipe may set them.
        model_bound_data_keys: `data` settings the model was built for
            (an image size), kept when a fine-tuning brings new data.
        same_kind_data_keys: `data` settings kept when the new data is of the
            base's kind (a TSV's column order).
        new_data_keys: `data` settings that name new data: with one of them,
            a data section replaces the base's.
    """

    free_model_keys: frozenset = frozenset({"dropout"})
    model_bound_data_keys: tuple = ()
    same_kind_data_keys: tuple = ()
    new_data_keys: tuple = ("kind", "path")


@dataclasses.dataclass
class _Catalog:
    names: Callable[[], Iterable[str]] = lambda: ()
    schema: Callable[[str], Any] = lambda name: None
    finetune_keys: Callable[[str], FinetuneKeys | None] = lambda name: None


_CATALOG = _Catalog()


def set_task_catalog(
    names: Callable[[], Iterable[str]],
    schema: Callable[[str], Any],
    finetune_keys: Callable[[str], FinetuneKeys | None],
) -> None:
    """Installs where task schemas come from: `zoo.tasks` calls this when it is imported.

    Args:
        names: the names of the tasks that can be loaded.
        schema: a task's schema (loading its package on first use).
        finetune_keys: a task's `FinetuneKeys` (None: the defaults).
    """
    global _CATALOG
    _CATALOG = _Catalog(names, schema, finetune_keys)


def _finetune_keys(task: str) -> FinetuneKeys:
    return _CATALOG.finetune_keys(task) or FinetuneKeys()


def _lookup(task: Any) -> Section | None:
    """The registered schema of `task`, registering it from the catalog on first use."""
    if not isinstance(task, str):
        return None
    if task not in _TASK_SCHEMAS and task in set(_CATALOG.names()):
        register_task_schema(task, _CATALOG.schema(task))
    return _TASK_SCHEMAS.get(task)


def _merge_schemas(base: Section, update: Section) -> Section:
    """Task fields replace library fields; fields first, then sections.

    A section both define (`finetune`) is merged key by key and stays where
    the library puts it, so recipes read in the same order for every task.
    """
    merged: dict[str, Field | Section] = {}
    for name, node in base.fields.items():
        if isinstance(node, Field):
            merged[name] = update.fields.get(name, node)
    for name, node in update.fields.items():
        previous = base.fields.get(name)
        if name in merged or (isinstance(node, Section) and isinstance(previous, Section)):
            continue
        merged[name] = node
    for name, node in base.fields.items():
        if name in merged:
            continue
        task_node = update.fields.get(name)
        if isinstance(node, Section) and isinstance(task_node, Section):
            merged[name] = _merge_schemas(node, task_node)
        else:
            merged[name] = node
    hooks = [h for h in (base.validate, update.validate) if h is not None]

    def validate(section: dict, path: str) -> None:
        for hook in hooks:
            hook(section, path)

    return Section(merged, validate=validate if hooks else None, doc=update.doc or base.doc)


def _finetune_check(defaults: dict) -> Callable[[dict, str], None]:
    def validate(recipe: dict, path: str) -> None:
        if recipe["init_from"] is None and recipe["finetune"] != defaults:
            changed = [k for k, v in recipe["finetune"].items() if v != defaults[k]]
            raise RecipeError(
                "applies only when fine-tuning: set init_from to the export to start from",
                key=f"finetune.{changed[0]}",
            )

    return validate


def register_task_schema(task: str, schema: Section | Mapping[str, Any]) -> None:
    """Register (or replace) the schema of a task's recipes.

    Args:
        task: the value of the recipe's ``task`` key.
        schema: a `Section` or dict of fields and sections; merged over the
            library schema (``task``, ``name``, ``export``, ``run``), its
            fields replacing the library's where both define one.
    """
    if not isinstance(task, str) or not task:
        raise ValueError(f"A task name must be a non-empty string. Received: task={task!r}")
    merged = _merge_schemas(LIBRARY_SCHEMA, _as_node(schema))
    check = _finetune_check(merged.fields["finetune"].defaults())
    task_hook = merged.validate

    def validate(recipe: dict, path: str) -> None:
        if task_hook is not None:
            task_hook(recipe, path)
        check(recipe, path)

    _TASK_SCHEMAS[task] = Section(merged.fields, validate=validate, doc=merged.doc)


def registered_tasks() -> list[str]:
    """Names of the tasks that have a schema."""
    return sorted(set(_TASK_SCHEMAS) | set(_CATALOG.names()))


def get_schema(task: str) -> Section:
    """The full schema (library + task) of a task's recipes."""
    schema = _lookup(task)
    if schema is None:
        raise RecipeError(_task_problem(task), key="task")
    return schema


def _task_problem(task: Any) -> str:
    expected = "one of " + ", ".join(repr(t) for t in registered_tasks())
    hint = _did_you_mean(task, registered_tasks()) if isinstance(task, str) else ""
    return f"expected {expected}, got {_show(task)}{hint}"


# --------------------------------------------------------------------------- overrides


_NULL_WORDS = ("null", "Null", "NULL", "~", "none", "None", "NONE")


def parse_override_value(text: str) -> Any:
    """A ``--set`` value as YAML: "3" -> 3, "1e-3" -> 0.001, "[1,2]" -> list, "none" -> None."""
    stripped = text.strip()
    if stripped in _NULL_WORDS:
        return None
    try:
        return _load_yaml(stripped)
    except yaml.YAMLError as error:
        raise RecipeError(f"cannot read the value {text!r}: {_yaml_error_text(error)}") from None


def _split_override(override: Any) -> tuple[list[str], str]:
    example = "expected KEY.PATH=VALUE, e.g. train.epochs=5"
    if not isinstance(override, str) or "=" not in override:
        raise RecipeError(f"malformed override {override!r}: {example}")
    key, value = override.split("=", 1)
    parts = [part.strip() for part in key.split(".")]
    if not all(parts):
        raise RecipeError(f"malformed override {override!r}: {example}")
    return parts, value


def _override_field(schema: Section, parts: list[str]) -> Field | Section:
    node: Field | Section = schema
    for depth, name in enumerate(parts):
        path = ".".join(parts[:depth])
        if isinstance(node, Field):
            raise RecipeError(f"{path!r} is a setting, not a section: cannot set {name!r} in it")
        if name not in node.fields:
            raise RecipeError(_unknown_key_message(name, node, path, schema))
        node = node.fields[name]
    return node


def _value_for(field: Field | Section | None, text: str) -> Any:
    value = parse_override_value(text)
    if not isinstance(field, Field) or not field.accepts_string():
        return value
    # A string setting takes the text as written: `name=no` is 'no', not False,
    # and `attention.kind=none` is the choice 'none', not null.
    stripped = text.strip()
    if stripped in _NULL_WORDS:
        if field.choices is not None and stripped in field.choices:
            return stripped
        return None if field.nullable else stripped
    return value if isinstance(value, str) else stripped


def apply_overrides(recipe: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """A copy of ``recipe`` with ``"a.b.c=value"`` overrides applied.

    Values are read as YAML (see `parse_override_value`). When the recipe's
    task is registered, keys are checked against its schema (unknown keys are
    reported with a did-you-mean) and string settings keep their text as
    written. Missing sections are created.

    Raises:
        RecipeError: a malformed override ("a.b", "=3"), an unknown key, or a
            key below a setting; the error's source is ``--set <override>``.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    result = copy.deepcopy(dict(recipe))
    parsed = []
    for override in overrides:
        try:
            parsed.append((override, *_split_override(override)))
        except RecipeError as error:
            raise error._with_default_source(f"--set {override}") from None
    task = result.get("task")
    for _, parts, text in parsed:
        if parts == ["task"]:
            task = text.strip()
    schema = _lookup(task)

    for override, parts, text in parsed:
        source = f"--set {override}"
        try:
            field = _override_field(schema, parts) if schema is not None else None
            value = _value_for(field, text)
            target = result
            for depth, name in enumerate(parts[:-1]):
                child = target.get(name)
                if child is None:
                    child = target[name] = {}
                elif not isinstance(child, dict):
                    path = ".".join(parts[: depth + 1])
                    raise RecipeError(
                        f"cannot set {'.'.join(parts)!r}: {path!r} is {_show(child)}, not a section"
                    )
                target = child
            last = parts[-1]
            if isinstance(value, Mapping) and isinstance(target.get(last), dict):
                target[last] = _deep_merge(target[last], value)
            else:
                target[last] = value
        except RecipeError as error:
            raise error._with_default_source(source) from None
    return result


def _deep_merge(base: Mapping, update: Mapping) -> dict:
    result = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# --------------------------------------------------------------------------- public API


def resolve_recipe(
    recipe: Mapping[str, Any], overrides: Sequence[str] = (), *, source: str = "<recipe>"
) -> dict:
    """Validate a recipe given as a dict; return it with every default filled in.

    Args:
        recipe: the user's settings (what the YAML file holds).
        overrides: ``"a.b.c=value"`` strings, applied after ``recipe``.
        source: how messages name the recipe (its file name).

    Raises:
        RecipeError: naming ``source`` (or the override) and the key path.
    """
    if not isinstance(recipe, Mapping):
        raise RecipeError(
            f"expected a mapping of settings at the top level (like 'task: translation'), "
            f"got {_show(recipe)}",
            source=source,
        )
    override_keys = {}
    for override in [overrides] if isinstance(overrides, str) else overrides:
        if isinstance(override, str) and "=" in override:
            override_keys[override.split("=", 1)[0].strip()] = f"--set {override}"
    merged = apply_overrides(recipe, overrides)
    base = None
    if merged.get("init_from") is not None:
        init_source = override_keys.get("init_from", source)
        base = read_base_recipe(merged["init_from"], source=init_source)
        if "task" not in merged:  # `zoo finetune` and short fine-tuning recipes name no task
            merged = apply_overrides({"task": base["recipe"]["task"], **recipe}, overrides)
        merged = _merge_with_base(merged, base, init_source)
    recipe = merged

    if "task" not in recipe:
        tasks = ", ".join(repr(t) for t in registered_tasks())
        raise RecipeError(f"missing required key 'task' (one of {tasks})", source=source)
    task = recipe["task"]
    schema = _lookup(task)
    if schema is None:
        raise RecipeError(_task_problem(task), key="task", source=override_keys.get("task", source))

    problems: list[tuple[str | None, str | None, str]] = []
    resolved = _resolve_section(schema, recipe, "", problems, schema)
    if problems:
        raise RecipeError._from_problems(
            [(_origin(key, override_keys) or source, key, text) for _, key, text in problems]
        )
    if base is not None:
        _check_same_shape(resolved, base, source, override_keys)
    return resolved


# --------------------------------------------------------------------------- fine-tuning


def run_folder(recipe: Mapping[str, Any]) -> Path:
    """`run.dir/<name>`; a fine-tuning's is `run.dir/<name>-finetune`.

    A fine-tuning exports beside its base under the base's name, but keeps
    its checkpoints, logs and backup apart from the run that trained the base.
    """
    suffix = "-finetune" if recipe.get("init_from") else ""
    return Path(recipe["run"]["dir"]) / f"{recipe['name']}{suffix}"


def read_base_recipe(init_from: str, *, source: str = "<recipe>") -> dict:
    """The export `init_from` names: `{"path": version folder, "recipe": its recipe}`.

    Raises:
        RecipeError: (key ``init_from``) no such export or version, or a
            folder that is not a zoo export.
    """
    from zoo.versions import resolve_export_dir

    try:
        version_dir = resolve_export_dir(os.path.expanduser(str(init_from)))
    except (FileNotFoundError, ValueError) as error:
        raise RecipeError(str(error), key="init_from", source=source) from None
    version_dir = version_dir.resolve()
    extra = version_dir / "assets.extra"
    missing = [n for n in ("recipe.yaml", "model.keras") if not (extra / n).is_file()]
    if missing:
        raise RecipeError(
            f"{version_dir} is not a zoo export: {', '.join(missing)} missing from assets.extra/",
            key="init_from",
            source=source,
        )
    try:
        recipe = _load_yaml((extra / "recipe.yaml").read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(
            f"{extra / 'recipe.yaml'} is not UTF-8 text", key="init_from", source=source
        ) from None
    except yaml.YAMLError as error:
        raise RecipeError(
            f"{extra / 'recipe.yaml'}: {_yaml_error_text(error)}", key="init_from", source=source
        ) from None
    if not isinstance(recipe, Mapping) or _lookup(recipe.get("task")) is None:
        raise RecipeError(
            f"{extra / 'recipe.yaml'} names no known task", key="init_from", source=source
        )
    recipe = dict(recipe)
    recipe.pop("init_from", None)  # the base's own history is not this run's
    recipe.pop("finetune", None)
    return {"path": version_dir, "recipe": recipe}


def _merge_with_base(recipe: dict, base: dict, source: str) -> dict:
    """The base export's recipe, with what the fine-tuning recipe sets over it.

    A `data` section that names data (a kind or a path) replaces the base's,
    but for the settings the model was built for (`image_size`) and, for data
    of the same kind, a TSV's direction (`columns`, `reverse`); a `data`
    section that only adjusts (`validation_size`) and the other sections
    are merged key by key. The
    name and export folder default to the base's, so the result is exported
    as the base's next version.
    """
    base_recipe, version_dir = base["recipe"], base["path"]
    if recipe["task"] != base_recipe["task"]:
        raise RecipeError(
            f"the model at {version_dir} is a {base_recipe['task']} model; "
            f"it cannot be fine-tuned as {recipe['task']!r}",
            key="task",
            source=source,
        )
    merged = copy.deepcopy(base_recipe)
    merged["name"] = version_dir.parent.name
    merged["export"] = {**merged.get("export", {}), "dir": str(version_dir.parent.parent)}
    merged["export"]["version"] = None
    merged.pop("run", None)  # the base's run folder may be anywhere: this run's default
    keys = _finetune_keys(recipe["task"])
    for key, value in recipe.items():
        if key == "data" and isinstance(value, Mapping) and set(value) & set(keys.new_data_keys):
            base_data = base_recipe["data"]
            kept = tuple(keys.model_bound_data_keys)
            if value.get("kind", base_data.get("kind")) == base_data.get("kind"):
                kept += tuple(keys.same_kind_data_keys)
            merged["data"] = {k: v for k, v in base_data.items() if k in kept}
            merged["data"].update(copy.deepcopy(dict(value)))
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    merged["init_from"] = str(version_dir)
    return merged


def _differences(new: Any, old: Any, path: str) -> Iterable[tuple[str, Any, Any]]:
    if isinstance(new, Mapping) and isinstance(old, Mapping):
        for name in new:
            yield from _differences(new[name], old.get(name), _join(path, name))
    elif new != old:
        yield path, new, old


def _check_same_shape(recipe: dict, base: dict, source: str, override_keys) -> None:
    """A fine-tuning recipe keeps the base model's shape and tokenizers."""
    # Only the model and tokenizer sections are compared: leave out the base's
    # data, whose files need not exist any more.
    probe = {k: v for k, v in base["recipe"].items() if k != "data"}
    base_recipe = resolve_recipe(probe, source=str(base["path"] / "assets.extra/recipe.yaml"))
    problems = []
    free = _finetune_keys(recipe["task"]).free_model_keys
    for section in ("model", "tokenizer"):
        for key, new, old in _differences(
            recipe.get(section, {}), base_recipe.get(section, {}), section
        ):
            if section == "model" and key.rsplit(".", 1)[-1] in free:
                continue
            keeps = (
                "the model's shape: drop this setting, or train a new model without init_from"
                if section == "model"
                else "the base model's tokenizers (finetune.vocab: extend adds tokens to them)"
            )
            problems.append(
                (
                    _origin(key, override_keys) or source,
                    key,
                    f"the base model {base['path']} has {_show(old)}, this recipe {_show(new)}: "
                    f"fine-tuning keeps {keeps}",
                )
            )
    if problems:
        raise RecipeError._from_problems(problems)


def _origin(key: str | None, override_keys: Mapping[str, str]) -> str | None:
    """The override that set ``key`` (or a section above it), if any."""
    while key:
        if key in override_keys:
            return override_keys[key]
        key = key.rpartition(".")[0]
    return None


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML recipe, merge it over the task's defaults, apply overrides, validate.

    Args:
        path: the YAML file.
        overrides: ``"a.b.c=value"`` strings (the CLI's ``--set``).

    Returns:
        A plain nested dict, fully resolved: every default filled in, floats
        as floats, existing paths absolute.

    Raises:
        RecipeError: naming the file (or the override) and the key path.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        where = os.path.abspath(source)
        missing = "folder, not a recipe file" if os.path.isdir(source) else "not found"
        raise RecipeError(f"recipe file {missing} (resolved to {where})", source=source)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = Path(source).read_bytes()[: error.start].count(b"\n") + 1
        raise RecipeError(
            f"not a YAML recipe: byte {error.object[error.start]:#04x} on line {line} is not "
            "UTF-8 text",
            source=source,
        ) from None
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as error:
        raise RecipeError(_yaml_error_text(error), source=source) from None
    if data is None:
        tasks = " | ".join(registered_tasks())
        raise RecipeError(
            f"the recipe is empty; it needs at least 'task: <{tasks}>'", source=source
        )
    return resolve_recipe(data, overrides, source=source)


def default_recipe(task: str) -> dict:
    """The resolved recipe of a task with nothing set but ``task``."""
    return resolve_recipe({"task": task}, source=f"<defaults of {task!r}>")


def _ordered(value: Any, node: Field | Section | None) -> Any:
    if not isinstance(value, Mapping):
        return value
    fields = node.fields if isinstance(node, Section) else {}
    names = [n for n in fields if n in value] + [n for n in value if n not in fields]
    return {n: _ordered(value[n], fields.get(n)) for n in names}


def dump_recipe(recipe: Mapping[str, Any]) -> str:
    """A recipe as YAML: keys in schema order, lists inline, a blank line between sections."""
    schema = _lookup(recipe.get("task")) if isinstance(recipe, Mapping) else None
    ordered = _ordered(dict(recipe), schema)
    chunks = []
    for key, value in ordered.items():
        text = yaml.dump(
            {key: value},
            Dumper=_RecipeDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=100,
        )
        if isinstance(value, Mapping) and chunks:
            text = "\n" + text
        chunks.append(text)
    return "".join(chunks)


def save_recipe(recipe: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a recipe as YAML (see `dump_recipe`), atomically, creating folders."""
    text = dump_recipe(recipe)
    write_atomically(path, lambda file: file.write(text))
