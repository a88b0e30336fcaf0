"""Recipes: the schema engine, the library's own sections, and resolution.

    from zoo.config import load_recipe
    recipe = load_recipe("recipes/translation.yaml", ["train.epochs=3"])

`zoo.config.schema` is the engine (fields, sections, checks, messages),
`zoo.config.sections` the library's sections and the builders tasks make
their schemas from, `zoo.config.recipes` the registry and resolution. This
package knows no task: `zoo.tasks` installs the catalog it reads schemas
from.
"""

from zoo.config.recipes import (
    FinetuneKeys,
    apply_overrides,
    default_recipe,
    dump_recipe,
    get_schema,
    load_recipe,
    parse_override_value,
    read_base_recipe,
    register_task_schema,
    registered_tasks,
    resolve_recipe,
    run_folder,
    save_recipe,
    set_task_catalog,
)
from zoo.config.schema import (
    REQUIRED,
    Check,
    Field,
    RecipeError,
    Section,
    at_least,
    in_range,
    increasing,
    non_negative,
    positive,
)
from zoo.config.sections import (
    COUNT,
    LIBRARY_SCHEMA,
    finetune_section,
    name_field,
    rnn_section,
    training_fields,
    validate_no_jit,
)

__all__ = [
    "COUNT",
    "LIBRARY_SCHEMA",
    "REQUIRED",
    "Check",
    "Field",
    "FinetuneKeys",
    "RecipeError",
    "Section",
    "apply_overrides",
    "at_least",
    "default_recipe",
    "dump_recipe",
    "finetune_section",
    "get_schema",
    "in_range",
    "increasing",
    "load_recipe",
    "name_field",
    "non_negative",
    "parse_override_value",
    "positive",
    "read_base_recipe",
    "register_task_schema",
    "registered_tasks",
    "resolve_recipe",
    "rnn_section",
    "run_folder",
    "save_recipe",
    "set_task_catalog",
    "training_fields",
    "validate_no_jit",
]
