"""The recipe schema engine: fields, sections, checks, YAML, and the messages they give.

The engine is small and declarative: a `Field` per setting, a `Section` (or
a plain dict of fields) per group of settings, with an optional
``validate(section, path)`` hook for rules that span several fields. Every
error names the file (or the override) and the key path::

    RecipeError: recipes/x.yaml: model.encoder.units: expected a positive integer, got 'big'

It knows no task: tasks build their sections from these pieces (and the
shared builders of `zoo.config.sections`).
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml


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
