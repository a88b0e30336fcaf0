"""The library's own recipe sections, and the shared builders tasks make their schemas from.

The library schema holds what every recipe has whatever its task (`task`,
`name`, `init_from`, `export`, `run`, `finetune`); a task's schema is merged
over it (`zoo.config.recipes.register_task_schema`). The builders here give
the settings several tasks share (training, recurrent layers, the name, the
fine-tuning parts), so that a default is written once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from zoo.config.schema import (
    REQUIRED,
    Check,
    Field,
    RecipeError,
    Section,
    _join,
    in_range,
    non_negative,
    positive,
)

COUNT = positive()
"""A positive integer: sizes, counts, epochs."""

_FOLDER_NAME = Check(
    lambda v: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) is not None,
    "a folder name (letters, digits, '.', '_', '-')",
)

LIBRARY_SCHEMA = Section(
    {
        "task": Field(str, REQUIRED, doc="which task's schema applies"),
        "name": Field(
            str, "model", check=_FOLDER_NAME, doc="export name (saved_models/<name>) and run folder"
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
        # The parts a model has are the task's: `finetune_section` adds them.
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
            "freeze": Field(list[str], [], doc="parts left as they are"),
            "learning_rate_multipliers": {},
        },
    },
)
"""What every recipe has, whatever its task."""


def name_field(default: str) -> Field:
    """A task's `name`: the library's rule, the task's default."""
    return Field(
        str,
        default,
        check=_FOLDER_NAME,
        doc="export name (saved_models/<name>) and run folder name",
    )


def finetune_section(parts: Sequence[str]) -> Section:
    """The `finetune` settings that name a task's model parts (`freeze`, learning-rate factors).

    Which parts a model really has (attention `none` has no attention) is
    checked when the base model is loaded (`zoo.finetune.check_parts`).

    Args:
        parts: the parts a recipe may freeze or slow down.
    """
    parts = tuple(parts)
    return Section(
        {
            "freeze": Field(list[str], [], doc="parts left as they are: " + ", ".join(parts)),
            "learning_rate_multipliers": {
                part: Field(float, None, check=non_negative(), doc=f"the {part}'s rate factor")
                for part in parts
            },
        },
    )


def rnn_section(
    style: Field | None = None, bidirectional: Field | None = None, **extras: Field
) -> dict:
    """A recurrent stack's settings (cell, units, layers, dropout), with optional extras."""
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
    section.update(extras)
    return section


def training_fields() -> dict[str, Field]:
    """The `train` settings every task shares (optimizer, schedule, seed, early stopping)."""
    return {
        "batch_size": Field(int, 64, check=COUNT),
        "epochs": Field(int, 10, check=COUNT),
        "max_minutes": Field(
            float,
            None,
            check=positive(),
            doc="end training after this many minutes, the learning rate scheduled over "
            "them (epochs is then an upper bound)",
        ),
        "steps_per_epoch": Field(int, None, check=COUNT),
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
        "patience": Field(int, None, check=COUNT, doc="early stopping, in epochs"),
    }


def validate_no_jit(train: dict, path: str) -> None:
    """`train.jit_compile` must stay off for models whose decoder runs under `keras.ops.scan`."""
    if train["jit_compile"]:
        raise RecipeError(
            "expected false: the decoder runs its steps with keras.ops.scan, which XLA cannot "
            "compile (it needs a fixed tensor list size)",
            key=_join(path, "jit_compile"),
        )
