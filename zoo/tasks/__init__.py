"""The task registry: a task's name -> the class that knows its problem (imported lazily).

    from zoo.tasks import get_task
    task = get_task("translation")          # a `zoo.tasks.base.Task`

A new task is its own package and one line in `TASKS`; or, from outside the
library, `register_task("name", "my_package.my_module:MyTask")` (or the
class itself) before its recipes are resolved. Importing this module
installs the catalog `zoo.config` reads task schemas from.
"""

from __future__ import annotations

import importlib
from typing import Any

from zoo.config import set_task_catalog

TASKS: dict[str, Any] = {
    "translation": "zoo.tasks.translation.task:TranslationTask",
    "parsing": "zoo.tasks.parsing.task:ParsingTask",
    "captioning": "zoo.tasks.captioning.task:CaptioningTask",
}

_LOADED: dict[str, Any] = {}


def register_task(name: str, task: Any) -> None:
    """Registers (or replaces) a task: a `Task` subclass, an instance, or ``"module:Class"``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"A task name must be a non-empty string. Received: name={name!r}")
    TASKS[name] = task
    _LOADED.pop(name, None)


def task_names() -> list[str]:
    """The names of the registered tasks."""
    return sorted(TASKS)


def get_task(name: str):
    """The `Task` registered as `name` (one instance per name)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    if name not in _LOADED:
        entry = TASKS[name]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
        task = entry() if isinstance(entry, type) else entry
        task.name = name
        _LOADED[name] = task
    return _LOADED[name]


set_task_catalog(
    task_names,
    lambda name: get_task(name).schema,
    lambda name: get_task(name).finetune_policy.keys if name in TASKS else None,
)
