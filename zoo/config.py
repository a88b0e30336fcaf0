"""Recipes: the YAML files that say what to train, and the schema that checks them.

A recipe is resolved in one fixed order: library defaults < task defaults <
the YAML file < ``--set a.b=value`` overrides. The result is a plain nested
dict with every default filled in, so the rest of the zoo never looks a key
up with ``.get(key, default)``.

Everything is checked before any work starts: unknown keys (with a
did-you-mean), types, ranges, choices, files that must exist and cross-field
rules. Every error names the file (or the override) and the key path::

    RecipeError: recipes/x.yaml: model.encoder.units: expected a positive integer, got 'big'

The schema engine is small and declarative: a `Field` per setting, a
`Section` (or a plain dict of fields) per group of settings, with an optional
``validate(section, path)`` hook for rules that span several fields. Tasks
register their schema with `register_task_schema`; the translation schema is
registered here.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from zoo.atomic_file import write_atomically

__all__ = [
    "REQUIRED",
    "Check",
    "Field",
    "RecipeError",
    "Section",
    "apply_overrides",
    "at_least",
    "default_recipe",
    "dump_recipe",
    "read_base_recipe",
    "run_folder",
    "get_schema",
    "in_range",
    "increasing",
    "load_recipe",
    "non_negative",
    "parse_override_value",
    "positive",
    "register_task_schema",
    "registered_tasks",
    "resolve_recipe",
    "save_recipe",
]


class RecipeError(ValueError):
    """A recipe that cannot be used, with where the problem is and what was expected.

    Attributes:
        problems: list of ``(source, key, problem)``; more than one when
            validation found several independent mistakes.
    """

    def __init__(self, problem: str, *, key: str | None = None, source: str | None = None):
        self.problems = [(source, key, problem)]
        super().__init__(problem)

    @classmethod
    def _from_problems(cls, problems: list[tuple[str | None, str | None, str]]) -> RecipeError:
        error = cls(problems[0][2], key=problems[0][1], source=problems[0][0])
        error.problems = list(problems)
        return error

    def _with_default_source(self, source: str) -> RecipeError:
        problems = [(s or source, k, p) for s, k, p in self.problems]
        return RecipeError._from_problems(problems)

    @property
    def key(self) -> str | None:
        return self.problems[0][1]

    @property
    def source(self) -> str | None:
        return self.problems[0][0]

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return ": ".join(part for part in self.problems[0] if part)
        sources = {source for source, _, _ in self.problems}
        if len(sources) == 1 and None not in sources and "" not in sources:
            header = f"{sources.pop()}: {len(self.problems)} problems:"
            lines = [": ".join(p for p in (key, text) if p) for _, key, text in self.problems]
        else:
            header = f"{len(self.problems)} problems:"
            lines = [": ".join(p for p in problem if p) for problem in self.problems]
        return header + "\n  " + "\n  ".join(lines)


# --------------------------------------------------------------------------- YAML


# PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent:
# `learning_rate: 1e-3` would load as the string '1e-3'. Recipes are written
# by people, so accept the spellings every other tool accepts.
_FLOAT_PATTERN = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$",
)


class _RecipeLoader(yaml.SafeLoader):
    """Safe YAML loader that reads 1e-3 as a float and refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key] + 1})",
                    mark,
                )
            if isinstance(key, typing.Hashable):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class _RecipeDumper(yaml.SafeDumper):
    """Safe YAML dumper: lists inline, strings that look like 1e-3 quoted."""

    def represent_list(self, data):
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


for _cls in (_RecipeLoader, _RecipeDumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_PATTERN, list("-+0123456789."))
_RecipeDumper.add_representer(list, _RecipeDumper.represent_list)
_RecipeDumper.add_representer(tuple, _RecipeDumper.represent_list)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_RecipeLoader)


def _yaml_error_text(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is not None:
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"invalid YAML: {problem}"


# --------------------------------------------------------------------------- schema


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of a `Field` that the recipe must set."""


class Check:
    """A constraint on a value beyond its type, with the words that describe it.

    Args:
        predicate: ``value -> bool``; called only on values of the right type.
        expected: what a valid value is, as it reads after "expected";
            ``{noun}`` / ``{a_noun}`` are replaced by the field type's name
            ("integer" / "an integer", "number" / "a number"); ``{items}``
            by the plural of a list's item type ("integers").
    """

    def __init__(self, predicate: Callable[[Any], bool], expected: str):
        self.predicate = predicate
        self.expected = expected

    def __call__(self, value: Any) -> bool:
        return bool(self.predicate(value))

    def describe(self, type_: Any) -> str:
        noun = _type_noun(type_)
        (item,) = typing.get_args(type_)[:1] or (Any,)
        items = "numbers" if item is Any else _type_noun(item, plural=True)
        return self.expected.format(noun=noun, a_noun=_with_article(noun), items=items)

    def __repr__(self) -> str:
        return f"Check({self.expected!r})"


def positive() -> Check:
    """Greater than zero: "a positive integer" / "a positive number"."""
    return Check(lambda v: v > 0, "a positive {noun}")


def non_negative() -> Check:
    """Zero or more."""
    return Check(lambda v: v >= 0, "a non-negative {noun}")


def at_least(minimum: float) -> Check:
    """``value >= minimum``."""
    return Check(lambda v: v >= minimum, f"{{a_noun}} >= {minimum}")


def in_range(low: float, high: float) -> Check:
    """``low <= value < high`` (half open, like dropout and label smoothing)."""
    return Check(lambda v: low <= v < high, f"{{a_noun}} in [{low}, {high})")


def increasing() -> Check:
    """A non-empty list of strictly increasing positive numbers (bucket boundaries)."""
    return Check(
        lambda v: len(v) > 0 and v[0] > 0 and all(a < b for a, b in zip(v, v[1:], strict=False)),
        "a non-empty list of increasing positive {items}",
    )


_PATH_KINDS = ("file", "dir", "any")


class Field:
    """One setting of a recipe.

    Args:
        type: ``int`` (bools rejected), ``float`` (ints accepted and
            converted), ``str``, ``bool``, ``list[X]`` or a union such as
            ``int | list[int]``.
        default: the value when the recipe does not set it, or `REQUIRED`.
        choices: allowed values (for strings: the "choice among" type).
        check: a `Check` (bounds, ordering) applied after the type check.
        doc: one line for humans (shown by ``zoo`` help, kept in the schema).
        path_must_exist: the value, when not null, names a path that must
            exist: ``True`` or ``"file"`` for a file, ``"dir"`` for a folder,
            ``"any"`` for either. Relative paths are resolved against the
            current working directory and returned absolute.
        nullable: whether ``null`` is allowed; by default, exactly when the
            default is ``None``.
    """

    def __init__(
        self,
        type: Any,
        default: Any = REQUIRED,
        *,
        choices: Iterable[Any] | None = None,
        check: Check | None = None,
        doc: str = "",
        path_must_exist: bool | str = False,
        nullable: bool | None = None,
    ):
        if path_must_exist is True:
            path_must_exist = "file"
        if path_must_exist and path_must_exist not in _PATH_KINDS:
            raise ValueError(
                f"path_must_exist must be a bool or one of {_PATH_KINDS}. "
                f"Received: path_must_exist={path_must_exist!r}"
            )
        self.type = type
        self.default = default
        self.choices = tuple(choices) if choices is not None else None
        self.check = check
        self.doc = doc
        self.path_must_exist = path_must_exist or None
        self.nullable = (default is None) if nullable is None else nullable

    def expected(self) -> str:
        """What a valid value is, as it reads after "expected"."""
        if self.choices is not None:
            text = "one of " + ", ".join(_show(c) for c in self.choices)
        elif self.check is not None:
            text = self.check.describe(self.type)
        elif self.path_must_exist:
            text = "a path to an existing " + {"file": "file", "dir": "folder"}.get(
                self.path_must_exist, "file or folder"
            )
        else:
            text = _with_article(_type_noun(self.type))
        return f"{text} or null" if self.nullable else text

    def accepts_string(self) -> bool:
        return _accepts_string(self.type)

    def validate(self, value: Any, key: str) -> Any:
        """The value converted to its type (float, absolute path), or `RecipeError`."""
        if value is None:
            if self.nullable:
                return None
            raise RecipeError(f"expected {self.expected()}, got null", key=key)
        ok, converted = _match_type(self.type, value)
        if not ok:
            raise RecipeError(f"expected {self.expected()}, got {_show(value)}", key=key)
        if self.choices is not None and converted not in self.choices:
            hint = _did_you_mean(converted, self.choices) if isinstance(converted, str) else ""
            raise RecipeError(f"expected {self.expected()}, got {_show(value)}{hint}", key=key)
        if self.check is not None and not self.check(converted):
            raise RecipeError(f"expected {self.expected()}, got {_show(value)}", key=key)
        if self.path_must_exist:
            converted = _existing_path(converted, self.path_must_exist, key)
        return converted

    def __repr__(self) -> str:
        return f"Field({_type_noun(self.type)}, default={self.default!r})"


class Section:
    """A group of settings: a mapping of names to `Field` or nested sections.

    Args:
        fields: name -> `Field`, `Section` or a plain dict (a section).
        validate: optional ``validate(section, path)`` hook for rules that span
            fields; it gets the section with every default filled in and the
            section's dotted path ("" at the top), and raises `RecipeError`
            with ``key=`` the full path of the offending setting.
        doc: one line for humans.
    """

    def __init__(
        self,
        fields: Mapping[str, Any],
        *,
        validate: Callable[[dict, str], None] | None = None,
        doc: str = "",
    ):
        self.fields = {name: _as_node(node) for name, node in fields.items()}
        self.validate = validate
        self.doc = doc

    def defaults(self) -> dict:
        """Every default of this section (required fields left out)."""
        result = {}
        for name, node in self.fields.items():
            if isinstance(node, Section):
                result[name] = node.defaults()
            elif node.default is not REQUIRED:
                result[name] = copy.deepcopy(node.default)
        return result

    def __repr__(self) -> str:
        return f"Section({list(self.fields)})"


def _as_node(node: Any) -> Field | Section:
    if isinstance(node, (Field, Section)):
        return node
    if isinstance(node, Mapping):
        return Section(node)
    raise TypeError(f"A schema entry must be a Field, a Section or a dict. Received: {node!r}")


# --- types


def _is_union(type_: Any) -> bool:
    return typing.get_origin(type_) in (typing.Union, types.UnionType)


def _type_noun(type_: Any, plural: bool = False) -> str:
    if _is_union(type_):
        members = [m for m in typing.get_args(type_) if m is not type(None)]
        if plural:
            return " or ".join(_type_noun(m, plural=True) for m in members)
        # "integer or a list of integers": the caller adds the first article.
        first, *rest = members
        return " or ".join([_type_noun(first), *(_with_article(_type_noun(m)) for m in rest)])
    if typing.get_origin(type_) is list:
        (item,) = typing.get_args(type_) or (Any,)
        inner = "values" if item is Any else _type_noun(item, plural=True)
        return f"lists of {inner}" if plural else f"list of {inner}"
    names = {int: "integer", float: "number", str: "string", bool: "boolean", dict: "mapping"}
    noun = names.get(type_, getattr(type_, "__name__", str(type_)))
    return noun + "s" if plural else noun


def _with_article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _match_type(type_: Any, value: Any) -> tuple[bool, Any]:
    if type_ is Any:
        return True, copy.deepcopy(value)
    if _is_union(type_):
        for member in typing.get_args(type_):
            if member is type(None):
                continue
            ok, converted = _match_type(member, value)
            if ok:
                return True, converted
        return False, None
    if typing.get_origin(type_) is list or type_ is list:
        if not isinstance(value, (list, tuple)):
            return False, None
        (item,) = typing.get_args(type_) or (Any,)
        converted = []
        for element in value:
            ok, element = _match_type(item, element)
            if not ok:
                return False, None
            converted.append(element)
        return True, converted
    if type_ is bool:
        return isinstance(value, bool), value
    if type_ is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if type_ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, None
    if type_ is str:
        return isinstance(value, str), value
    return isinstance(value, type_), value


def _accepts_string(type_: Any) -> bool:
    if _is_union(type_):
        return any(_accepts_string(m) for m in typing.get_args(type_))
    return type_ is str


def _existing_path(value: str, kind: str, key: str) -> str:
    given = os.path.expanduser(value)
    resolved = os.path.abspath(given)
    where = resolved if os.path.isabs(given) else f"{value!r} (resolved to {resolved})"
    if not os.path.exists(resolved):
        noun = {"file": "file", "dir": "folder"}.get(kind, "path")
        raise RecipeError(f"{noun} not found: {where}", key=key)
    if kind == "file" and not os.path.isfile(resolved):
        raise RecipeError(f"expected a file, got a folder: {where}", key=key)
    if kind == "dir" and not os.path.isdir(resolved):
        raise RecipeError(f"expected a folder, got a file: {where}", key=key)
    return resolved


# --- messages


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping {" + ", ".join(str(k) for k in value) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _did_you_mean(word: str, candidates: Iterable[Any], prefix: str = "") -> str:
    strings = [str(c) for c in candidates]
    matches = difflib.get_close_matches(str(word), strings, n=1, cutoff=0.6)
    if matches:
        return f" (did you mean {_join(prefix, matches[0])!r}?)"
    return ""


def _join(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


# --- resolution


def _leaf_paths(section: Section, path: str = "") -> Iterable[str]:
    for name, node in section.fields.items():
        key = _join(path, name)
        yield key
        if isinstance(node, Section):
            yield from _leaf_paths(node, key)


def _unknown_key_message(name: Any, section: Section, path: str, root: Section | None) -> str:
    key = _join(path, name)
    hint = ""
    if root is not None:
        # A key put in the wrong section (`train.beam_size` -> `decode.beam_size`)
        # is a better guess than a near spelling in this one.
        elsewhere = [p for p in _leaf_paths(root) if p.rsplit(".", 1)[-1] == str(name)]
        if elsewhere:
            hint = f" (did you mean {elsewhere[0]!r}?)"
    if not hint:
        hint = _did_you_mean(name, section.fields, prefix=path)
    if not hint:
        hint = f" (expected one of: {', '.join(section.fields)})"
    return f"unknown key {key!r}{hint}"


def _resolve_section(
    section: Section,
    value: Any,
    path: str,
    problems: list[tuple[str | None, str | None, str]],
    root: Section,
) -> dict | None:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        expected = "a mapping of settings (" + ", ".join(section.fields) + ")"
        problems.append((None, path or None, f"expected {expected}, got {_show(value)}"))
        return None
    count = len(problems)
    for name in value:
        if name not in section.fields:
            problems.append((None, None, _unknown_key_message(name, section, path, root)))
    result = {}
    for name, node in section.fields.items():
        key = _join(path, name)
        if isinstance(node, Section):
            result[name] = _resolve_section(node, value.get(name), key, problems, root)
        elif name in value:
            try:
                result[name] = node.validate(value[name], key)
            except RecipeError as error:
                problems.extend(error.problems)
        elif node.default is REQUIRED:
            problems.append((None, key, f"missing required setting ({node.expected()})"))
        else:
            result[name] = copy.deepcopy(node.default)
    if len(problems) > count:
        return None
    if section.validate is not None:
        try:
            section.validate(result, path)
        except RecipeError as error:
            problems.extend(error.problems)
            return None
    return result


# --------------------------------------------------------------------------- registry

FINETUNE_PARTS = ("encoder", "decoder", "attention", "embeddings", "cnn")
"""The parts of a model that `finetune.freeze` and `finetune.learning_rate_multipliers` name."""


def _validate_finetune(recipe: dict) -> None:
    if recipe["init_from"] is None and recipe["finetune"] != _FINETUNE_DEFAULTS:
        changed = [k for k, v in recipe["finetune"].items() if v != _FINETUNE_DEFAULTS[k]]
        raise RecipeError(
            "applies only when fine-tuning: set init_from to the export to start from",
            key=f"finetune.{changed[0]}",
        )


_LIBRARY_SCHEMA = Section(
    {
        "task": Field(str, REQUIRED, doc="which task's schema applies"),
        "name": Field(
            str,
            "model",
            check=Check(
                lambda v: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) is not None,
                "a folder name (letters, digits, '.', '_', '-')",
            ),
            doc="export name (saved_models/<name>) and run folder name",
        ),
        "export": {
            "dir": Field(str, "saved_models", doc="where versioned exports land"),
            "version": Field(int, None, check=positive(), doc="export version; null = next free"),
        },
        "run": {
            "dir": Field(str, "runs", doc="checkpoints, TensorBoard logs, resolved recipe"),
        },
        "init_from": Field(
            str,
            None,
            doc="fine-tune this export (saved_models/<name>: its newest version, or a version "
            "folder); the next version is written beside it",
        ),
        "finetune": {
            "vocab": Field(
                str,
                "keep",
                choices=("keep", "extend"),
                doc="keep the base model's vocabularies, or extend them with the new data's "
                "frequent tokens (new embedding and output rows)",
            ),
            "new_tokens": Field(
                int, 1000, check=positive(), doc="extend: most tokens added to each vocabulary"
            ),
            "min_count": Field(
                int, 2, check=positive(), doc="extend: a new token occurs this often in training"
            ),
            "freeze": Field(
                list[str],
                [],
                check=Check(
                    lambda v: set(v) <= set(FINETUNE_PARTS),
                    "a list of parts among " + ", ".join(FINETUNE_PARTS),
                ),
                doc="parts left as they are: " + ", ".join(FINETUNE_PARTS),
            ),
            "learning_rate_multipliers": {
                part: Field(float, None, check=non_negative(), doc=f"the {part}'s rate factor")
                for part in FINETUNE_PARTS
            },
        },
    },
    validate=lambda recipe, path: _validate_finetune(recipe),
)


_TASK_SCHEMAS: dict[str, Section] = {}
_FINETUNE_DEFAULTS = _LIBRARY_SCHEMA.fields["finetune"].defaults()


def _merge_schemas(base: Section, update: Section) -> Section:
    """Task fields replace library fields; fields first, then sections."""
    merged: dict[str, Field | Section] = {}
    for name, node in base.fields.items():
        if isinstance(node, Field):
            merged[name] = update.fields.get(name, node)
    for name, node in update.fields.items():
        if name in merged:
            continue
        previous = base.fields.get(name)
        if isinstance(node, Section) and isinstance(previous, Section):
            merged[name] = _merge_schemas(previous, node)
        else:
            merged[name] = node
    for name, node in base.fields.items():
        merged.setdefault(name, node)
    hooks = [h for h in (base.validate, update.validate) if h is not None]

    def validate(section: dict, path: str) -> None:
        for hook in hooks:
            hook(section, path)

    return Section(merged, validate=validate if hooks else None, doc=update.doc or base.doc)


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
    _TASK_SCHEMAS[task] = _merge_schemas(_LIBRARY_SCHEMA, _as_node(schema))


def registered_tasks() -> list[str]:
    """Names of the tasks that have a schema."""
    return sorted(_TASK_SCHEMAS)


def get_schema(task: str) -> Section:
    """The full schema (library + task) of a task's recipes."""
    if task not in _TASK_SCHEMAS:
        raise RecipeError(_task_problem(task), key="task")
    return _TASK_SCHEMAS[task]


def _task_problem(task: Any) -> str:
    expected = "one of " + ", ".join(repr(t) for t in registered_tasks())
    hint = _did_you_mean(task, _TASK_SCHEMAS) if isinstance(task, str) else ""
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
    schema = _TASK_SCHEMAS.get(task) if isinstance(task, str) else None

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
    if not isinstance(task, str) or task not in _TASK_SCHEMAS:
        raise RecipeError(_task_problem(task), key="task", source=override_keys.get("task", source))
    schema = _TASK_SCHEMAS[task]

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

# Settings that change no weight's shape: a fine-tuning recipe may set them.
_FREE_MODEL_KEYS = {"dropout", "doubly_stochastic", "fine_tune_from", "learning_rate_multiplier"}
_FREE_MODEL_KEYS |= {"weights"}  # the base export's weights replace them anyway
# Data settings the model was built for, kept when a fine-tuning recipe brings new data.
_MODEL_BOUND_DATA_KEYS = ("image_size",)
# ... and those kept when the new data is of the same kind (a TSV's direction).
_SAME_KIND_DATA_KEYS = ("columns", "reverse")
# Settings that name new data: with one of them, a data section replaces the base's.
_NEW_DATA_KEYS = ("kind", "path", "source_path", "target_path", "images")


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
    from zoo.hub import resolve_export_dir

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
    except yaml.YAMLError as error:
        raise RecipeError(
            f"{extra / 'recipe.yaml'}: {_yaml_error_text(error)}", key="init_from", source=source
        ) from None
    if not isinstance(recipe, Mapping) or recipe.get("task") not in _TASK_SCHEMAS:
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
    for key, value in recipe.items():
        if key == "data" and isinstance(value, Mapping) and set(value) & set(_NEW_DATA_KEYS):
            base_data = base_recipe["data"]
            kept = _MODEL_BOUND_DATA_KEYS
            if value.get("kind", base_data.get("kind")) == base_data.get("kind"):
                kept += _SAME_KIND_DATA_KEYS
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
    for section in ("model", "tokenizer"):
        for key, new, old in _differences(recipe[section], base_recipe[section], section):
            if section == "model" and key.rsplit(".", 1)[-1] in _FREE_MODEL_KEYS:
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
    text = Path(source).read_text(encoding="utf-8")
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
    schema = _TASK_SCHEMAS.get(recipe.get("task")) if isinstance(recipe, Mapping) else None
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


# --------------------------------------------------------------------------- translation


def _validate_translation_data(data: dict, path: str) -> None:
    if data["kind"] == "tsv" and data["path"] is None:
        raise RecipeError(
            "required when data.kind is 'tsv' (a file of source<TAB>target lines)",
            key=_join(path, "path"),
        )
    if data["kind"] == "parallel":
        for name in ("source_path", "target_path"):
            if data[name] is None:
                raise RecipeError(
                    "required when data.kind is 'parallel' (data.source_path and "
                    "data.target_path: one sentence a line, line i of each a pair)",
                    key=_join(path, name),
                )
    if data["min_words"] > data["max_words"]:
        raise RecipeError(
            f"must be <= {_join(path, 'max_words')} ({data['max_words']}), got {data['min_words']}",
            key=_join(path, "min_words"),
        )


def _validate_translation_model(model: dict, path: str) -> None:
    encoder, decoder = model["encoder"], model["decoder"]
    if model["attention"]["kind"] == "dot":
        factor = 2 if encoder["bidirectional"] else 1
        size = encoder["units"] * factor
        if size != decoder["units"]:
            how = (
                f"encoder.units {encoder['units']} x 2 directions = {size}"
                if factor == 2
                else f"encoder.units {encoder['units']}"
            )
            raise RecipeError(
                "'dot' attention scores the decoder state against the encoder outputs "
                "directly, so the encoder output size must equal decoder.units; "
                f"got {how} but decoder.units {decoder['units']}. Set "
                f"{_join(path, 'decoder.units')}={size}, change encoder.units, or use "
                "'general' or 'additive' attention",
                key=_join(path, "attention.kind"),
            )


def _validate_translation_train(train: dict, path: str) -> None:
    if train["jit_compile"]:
        raise RecipeError(
            "expected false: the decoder runs its steps with keras.ops.scan, which XLA cannot "
            "compile (it needs a fixed tensor list size)",
            key=_join(path, "jit_compile"),
        )


def _rnn_section(style: Field | None = None, bidirectional: Field | None = None) -> dict:
    section = {
        "cell": Field(str, "gru", choices=("gru", "lstm"), doc="recurrent cell"),
        "units": Field(int, 256, check=positive(), doc="hidden units per direction"),
        "layers": Field(int, 1, check=positive(), doc="stacked recurrent layers"),
        "dropout": Field(float, 0.0, check=in_range(0, 1), doc="dropout between layers"),
    }
    if bidirectional is not None:
        section["bidirectional"] = bidirectional
    if style is not None:
        section["style"] = style
    return section


_COUNT = positive()


def seq2seq_model_section(*, reverse_source: bool = False) -> Section:
    """The `model` section of the sequence-to-sequence tasks (translation, parsing)."""
    return Section(
        {
            "embedding_dim": Field(int, 128, check=_COUNT),
            "reverse_source": Field(bool, reverse_source, doc="feed the source reversed"),
            "encoder": _rnn_section(
                bidirectional=Field(bool, True, doc="BiRNN (Bahdanau et al. 2015)")
            ),
            "attention": {
                "kind": Field(
                    str,
                    "additive",
                    choices=("additive", "dot", "general", "concat", "none"),
                ),
                "units": Field(int, 256, check=_COUNT, doc="additive/concat: hidden size"),
                "normalize": Field(bool, False, doc="additive: weight-normalised v"),
                "scale": Field(bool, False, doc="dot/general: learned scale"),
            },
            "decoder": _rnn_section(
                style=Field(
                    str,
                    "luong",
                    choices=("luong", "bahdanau"),
                    doc="luong: input feeding; bahdanau: attend before the RNN",
                )
            ),
        },
        validate=_validate_translation_model,
    )


def _name_field(default: str) -> Field:
    """A task's `name`: the library's rule, the task's default."""
    return Field(
        str,
        default,
        check=_LIBRARY_SCHEMA.fields["name"].check,
        doc="export name (saved_models/<name>) and run folder name",
    )


def _training_fields() -> dict[str, Field]:
    """The `train` settings every task shares (optimizer, schedule, seed, early stopping)."""
    return {
        "batch_size": Field(int, 64, check=_COUNT),
        "epochs": Field(int, 10, check=_COUNT),
        "steps_per_epoch": Field(int, None, check=_COUNT),
        "optimizer": Field(str, "adam", choices=("adam", "adamw", "sgd", "rmsprop")),
        "learning_rate": Field(float, 0.001, check=positive()),
        "schedule": Field(
            str,
            "cosine",
            choices=("constant", "cosine"),
            doc="cosine: decay the learning rate to 5% of its value over the run",
        ),
        "clipnorm": Field(float, 5.0, nullable=True, check=positive()),
        "label_smoothing": Field(float, 0.0, check=in_range(0, 1)),
        "mixed_precision": Field(bool, False),
        "jit_compile": Field(bool, False),
        "seed": Field(int, 0, check=non_negative()),
        "patience": Field(int, None, check=_COUNT, doc="early stopping, in epochs"),
    }


def seq2seq_train_section() -> Section:
    """The `train` section of the sequence-to-sequence tasks (translation, parsing)."""
    fields = _training_fields()
    fields["batch_tokens"] = Field(
        int,
        None,
        check=_COUNT,
        doc="if set, a bucket's batch holds about this many tokens "
        "(more sentences when they are short), never fewer than batch_size sentences",
    )
    fields["bucket_boundaries"] = Field(
        list[int], [8, 12, 16, 20, 25, 30, 40, 50, 60], check=increasing()
    )
    order = ("batch_size", "batch_tokens", "epochs", "steps_per_epoch", "optimizer")
    order += ("learning_rate", "schedule", "clipnorm", "label_smoothing", "bucket_boundaries")
    order += ("mixed_precision", "jit_compile", "seed", "patience")
    return Section({name: fields[name] for name in order}, validate=_validate_translation_train)


TRANSLATION_SCHEMA = Section(
    {
        "name": _name_field("translation"),
        "data": Section(
            {
                "kind": Field(str, "synthetic", choices=("synthetic", "tsv", "parallel")),
                "size": Field(int, 20000, check=_COUNT, doc="synthetic: number of examples"),
                "seed": Field(int, 0, check=non_negative(), doc="synthetic: sentence seed"),
                "vocabulary_seed": Field(
                    int, 0, check=non_negative(), doc="synthetic: the language's seed"
                ),
                "min_words": Field(int, 3, check=_COUNT, doc="synthetic: shortest sentence"),
                "max_words": Field(int, 60, check=_COUNT, doc="synthetic: longest sentence"),
                "path": Field(str, None, path_must_exist=True, doc="tsv: the file"),
                "columns": Field(
                    list[int],
                    [0, 1],
                    check=Check(
                        lambda v: len(v) == 2 and v[0] != v[1] and min(v) >= 0,
                        "a list of two distinct non-negative integers "
                        "[source_column, target_column]",
                    ),
                    doc="tsv: [source_column, target_column]",
                ),
                "reverse": Field(bool, False, doc="tsv: translate the other way"),
                "source_path": Field(str, None, path_must_exist=True, doc="parallel: sources"),
                "target_path": Field(str, None, path_must_exist=True, doc="parallel: targets"),
                "max_pairs": Field(int, None, check=_COUNT, doc="read at most this many pairs"),
                "validation_size": Field(int, 500, check=at_least(1)),
                "test_size": Field(int, 1000, check=at_least(1)),
                "max_source_tokens": Field(
                    int, 100, check=_COUNT, doc="drop longer training pairs"
                ),
            },
            validate=_validate_translation_data,
        ),
        "tokenizer": {
            "kind": Field(str, "wordpiece", choices=("wordpiece", "word")),
            "vocab_size": Field(int, 2000, check=_COUNT, doc="largest vocabulary"),
            "lower_thresh": Field(int, 2, check=at_least(1), doc="rarest piece kept"),
            "lowercase": Field(bool, True),
        },
        "model": seq2seq_model_section(),
        "train": seq2seq_train_section(),
        "decode": {
            "beam_size": Field(int, 4, check=at_least(1), doc="1 = greedy"),
            "length_penalty": Field(float, 0.6, check=non_negative()),
            "max_length": Field(int, 80, check=at_least(1)),
        },
        "evaluate": {
            "length_buckets": Field(list[int], [10, 20, 30, 40, 50], check=increasing()),
            "max_examples": Field(int, None, check=_COUNT),
            "alignment": Field(bool, True, doc="score attention against gold alignments"),
        },
    },
    doc="sequence-to-sequence translation with attention (Bahdanau 2015, Luong 2015)",
)

register_task_schema("translation", TRANSLATION_SCHEMA)


# --------------------------------------------------------------------------- parsing


def _validate_parsing_data(data: dict, path: str) -> None:
    if data["kind"] == "treebank":
        if data["path"] is None:
            raise RecipeError(
                "required when data.kind is 'treebank' (a folder of .mrg files, or one file)",
                key=_join(path, "path"),
            )
        if not data["test_files"]:
            raise RecipeError(
                "required when data.kind is 'treebank': the file names or patterns held out "
                "for testing, e.g. ['wsj_23*.mrg']",
                key=_join(path, "test_files"),
            )
    if data["min_words"] > data["max_words"]:
        raise RecipeError(
            f"must be <= {_join(path, 'max_words')} ({data['max_words']}), got {data['min_words']}",
            key=_join(path, "min_words"),
        )


PARSING_SCHEMA = Section(
    {
        "name": _name_field("parsing"),
        "data": Section(
            {
                "kind": Field(str, "synthetic", choices=("synthetic", "treebank")),
                "size": Field(int, 20000, check=_COUNT, doc="synthetic: number of sentences"),
                "seed": Field(int, 0, check=non_negative(), doc="sentences; treebank: shuffle"),
                "min_words": Field(int, 3, check=_COUNT, doc="synthetic: shortest sentence"),
                "max_words": Field(int, 60, check=_COUNT, doc="synthetic: longest sentence"),
                "validation_size": Field(int, 500, check=at_least(1), doc="synthetic"),
                "test_size": Field(int, 1000, check=at_least(1), doc="synthetic"),
                "path": Field(
                    str, None, path_must_exist="any", doc="treebank: a folder or a .mrg file"
                ),
                "pattern": Field(str, "*.mrg", doc="treebank: the files to read in the folder"),
                "validation_files": Field(
                    list[str],
                    [],
                    doc="treebank: file names or patterns held out for validation "
                    "(empty: 5% of the training trees)",
                ),
                "test_files": Field(
                    list[str], [], doc="treebank: file names or patterns held out for testing"
                ),
                "max_train_words": Field(
                    int, 100, check=_COUNT, doc="drop longer training sentences"
                ),
            },
            validate=_validate_parsing_data,
        ),
        "tokenizer": {
            "vocab_size": Field(
                int, 20000, check=at_least(5), doc="most frequent words kept; others are [UNK]"
            ),
            "min_count": Field(
                int, 1, check=_COUNT, doc="words seen fewer times in training are [UNK]"
            ),
        },
        "model": seq2seq_model_section(reverse_source=True),
        "train": seq2seq_train_section(),
        "decode": {
            "beam_size": Field(int, 4, check=at_least(1), doc="1 = greedy"),
            "length_penalty": Field(float, 0.0, check=non_negative()),
            "max_length": Field(
                int, 500, check=at_least(4), doc="most output symbols for any sentence"
            ),
            "length_per_word": Field(
                float,
                4.0,
                check=at_least(1.0),
                doc="a sentence of n words gets at most length_per_word * n + 8 symbols",
            ),
            "constrained": Field(
                bool, True, doc="only well-formed trees over the input words (else repaired)"
            ),
        },
        "evaluate": {
            "max_examples": Field(int, None, check=_COUNT),
            "unconstrained": Field(
                bool,
                True,
                doc="also decode without the constraint and report how often repair was needed",
            ),
        },
    },
    doc="constituency parsing as translation into linearised trees (Vinyals et al. 2015)",
)

register_task_schema("parsing", PARSING_SCHEMA)


def _validate_captioning_data(data: dict, path: str) -> None:
    if data["kind"] == "synthetic" and data["image_size"] < 48:
        raise RecipeError(
            f"expected at least 48 for synthetic scenes (their shapes need it), "
            f"got {data['image_size']}",
            key=_join(path, "image_size"),
        )
    if data["kind"] != "synthetic" and data["path"] is None:
        files = {
            "flickr8k": "the caption token file, e.g. Flickr8k.token.txt",
            "coco": "a COCO captions JSON, e.g. captions_train2014.json",
            "karpathy": "Karpathy's split JSON, e.g. dataset_flickr8k.json",
        }
        raise RecipeError(
            f"required when data.kind is {data['kind']!r}: {files[data['kind']]}",
            key=_join(path, "path"),
        )
    if data["kind"] == "karpathy" and data["images"] is None:
        raise RecipeError(
            "required when data.kind is 'karpathy': the folder its file names are relative to",
            key=_join(path, "images"),
        )
    if data["validation_path"] is not None and data["kind"] != "coco":
        raise RecipeError(
            "only for data.kind 'coco' (the other formats carry their own splits)",
            key=_join(path, "validation_path"),
        )
    if data["min_objects"] > data["max_objects"]:
        raise RecipeError(
            f"must be <= {_join(path, 'max_objects')} ({data['max_objects']}), "
            f"got {data['min_objects']}",
            key=_join(path, "min_objects"),
        )


def _validate_captioning_model(model: dict, path: str) -> None:
    encoder = model["encoder"]
    if encoder["backbone"] == "small" and encoder["weights"] == "imagenet":
        raise RecipeError(
            "the 'small' backbone has no ImageNet weights: use null (train from scratch) or the "
            "path of a weights file",
            key=_join(path, "encoder.weights"),
        )


# Objects in a synthetic scene: one to three (one to a cell of a 3 x 3 grid, in a row or column).
_OBJECTS = Check(lambda v: 1 <= v <= 3, "an integer from 1 to 3")

CAPTIONING_SCHEMA = Section(
    {
        "name": _name_field("captioning"),
        "data": Section(
            {
                "kind": Field(
                    str, "synthetic", choices=("synthetic", "flickr8k", "coco", "karpathy")
                ),
                "size": Field(int, 6000, check=_COUNT, doc="synthetic: training scenes"),
                "seed": Field(int, 0, check=non_negative(), doc="scenes; real data: split shuffle"),
                "min_objects": Field(int, 1, check=_OBJECTS, doc="synthetic"),
                "max_objects": Field(int, 3, check=_OBJECTS, doc="synthetic"),
                "validation_size": Field(
                    int, 300, check=at_least(1), doc="images held out when the data has no split"
                ),
                "test_size": Field(
                    int, 500, check=at_least(1), doc="images held out when the data has no split"
                ),
                "image_size": Field(
                    int,
                    96,
                    check=at_least(16),
                    doc="images are resized to image_size x image_size (synthetic: drawn so)",
                ),
                "path": Field(
                    str,
                    None,
                    path_must_exist="file",
                    doc="flickr8k: the token file; coco: the (training) captions JSON; "
                    "karpathy: the split JSON",
                ),
                "images": Field(
                    str,
                    None,
                    path_must_exist="dir",
                    doc="the image folder (flickr8k, coco: found beside `path` by default)",
                ),
                "validation_path": Field(
                    str,
                    None,
                    path_must_exist="file",
                    doc="coco: a second captions JSON (e.g. captions_val2014.json) split into "
                    "validation and test images",
                ),
                "validation_images": Field(
                    str, None, path_must_exist="dir", doc="coco: the images of validation_path"
                ),
                "max_images": Field(
                    int, None, check=_COUNT, doc="use at most this many training images"
                ),
                "max_caption_words": Field(
                    int, 30, check=_COUNT, doc="longer training captions are cut to this length"
                ),
                "verify_images": Field(
                    bool, True, doc="decode every image once and leave out unreadable files"
                ),
            },
            validate=_validate_captioning_data,
        ),
        "tokenizer": {
            "vocab_size": Field(
                int, 5000, check=at_least(5), doc="most frequent words kept; others are [UNK]"
            ),
            "min_count": Field(
                int, 1, check=_COUNT, doc="words seen fewer times in training are [UNK]"
            ),
            "lowercase": Field(bool, True),
        },
        "model": Section(
            {
                "encoder": {
                    "backbone": Field(
                        str,
                        "small",
                        choices=(
                            "small",
                            "mobilenet_v3_small",
                            "mobilenet_v3_large",
                            "resnet50",
                            "inception_v3",
                            "efficientnet_b0",
                        ),
                        doc="small: a 4-block CNN trained from scratch",
                    ),
                    "grid_size": Field(
                        int, 7, check=_COUNT, doc="attention over grid_size x grid_size cells"
                    ),
                    "weights": Field(
                        str,
                        None,
                        doc="null (random), imagenet (downloaded once by Keras) or the path of a "
                        "local weights file of the backbone without top",
                    ),
                    "fine_tune_from": Field(
                        str,
                        "auto",
                        nullable=True,
                        doc="auto: all layers when trained from scratch, none when pretrained; "
                        "all; or the first backbone layer to train",
                    ),
                    "learning_rate_multiplier": Field(
                        float, 1.0, check=non_negative(), doc="for the fine-tuned backbone layers"
                    ),
                    "projection_dim": Field(
                        int, None, check=_COUNT, doc="a linear projection of each cell's vector"
                    ),
                    "dropout": Field(float, 0.0, check=in_range(0, 1)),
                    "coordinates": Field(
                        bool, False, doc="append each cell's (row, column) to its vector"
                    ),
                },
                "embedding_dim": Field(int, 128, check=_COUNT),
                "units": Field(int, 256, check=_COUNT, doc="LSTM units"),
                "attention_units": Field(int, 256, check=_COUNT),
                "dropout": Field(float, 0.0, check=in_range(0, 1), doc="before the output layer"),
                "gate": Field(bool, True, doc="the beta gate on the context (section 4.2.1)"),
                "output_previous_word": Field(bool, True, doc="E y_{t-1} in the deep output"),
                "output_context": Field(bool, True, doc="L_z z_t in the deep output"),
                "output_activation": Field(
                    str, None, choices=("tanh",), doc="null: Eq. 7 as printed; tanh"
                ),
                "doubly_stochastic": Field(
                    float,
                    1.0,
                    check=non_negative(),
                    doc="lambda of the attention penalty sum_i (1 - sum_t alpha_ti)^2",
                ),
            },
            validate=_validate_captioning_model,
        ),
        "train": Section(
            {
                **_training_fields(),
                "cache_features": Field(
                    bool,
                    True,
                    doc="with a frozen encoder, compute each image's features once and train "
                    "on them",
                ),
            },
            validate=_validate_translation_train,
        ),
        "decode": {
            "beam_size": Field(int, 3, check=at_least(1), doc="1 = greedy"),
            "length_penalty": Field(float, 0.0, check=non_negative()),
            "max_length": Field(int, 20, check=_COUNT, doc="most words of a caption"),
        },
        "evaluate": {
            "max_examples": Field(int, None, check=_COUNT, doc="test images decoded"),
            "meteor": Field(bool, False, doc="also METEOR (needs Java)"),
        },
    },
    doc="image captioning with soft attention (Show, Attend and Tell, Xu et al. 2015)",
)

register_task_schema("captioning", CAPTIONING_SCHEMA)
