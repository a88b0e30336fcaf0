"""One module per task; `get_task(name)` returns the module that runs a recipe's task."""

from __future__ import annotations

import importlib

TASKS = {
    "translation": "zoo.tasks.translation",
    "parsing": "zoo.tasks.parsing",
    "captioning": "zoo.tasks.captioning",
}


def get_task(name: str):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return importlib.import_module(TASKS[name])
