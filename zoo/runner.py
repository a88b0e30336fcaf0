"""The flow, written once for every task: train, fine-tune, evaluate and export.

    recipe -> seed, run folder -> splits -> tokenizers -> model -> datasets
           -> compile -> fit (callbacks, resume) -> serving module
           -> evaluation by real decoding -> atomic export

`zoo run`, `zoo finetune`, `zoo evaluate` call these; a task
(`zoo.tasks.base.Task`) supplies every step that depends on its problem.
Fine-tuning adds: load the base export, adapt its vocabularies, transfer its
weights, freeze or slow parts, and decode the validation data before and
after training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import keras

from zoo.config import RecipeError, run_folder
from zoo.export import remove_stale_partials
from zoo.run_lock import locked_run
from zoo.tasks import get_task
from zoo.training import check_export_target, discard_stale_backup, fit


def start_run(recipe: dict, log) -> tuple[Path, float]:
    """Seeds, makes the run folder, fails early on an existing export version.

    Hidden `.partial-*` folders of exports that were killed are removed.

    Returns the run folder and the start time (for the total in the log).
    """
    keras.utils.set_random_seed(recipe["train"]["seed"])
    started = time.time()
    run_dir = run_folder(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_export_target(recipe)
    discard_stale_backup(run_dir, recipe, log)
    for path in remove_stale_partials(Path(recipe["export"]["dir"]) / recipe["name"]):
        log(f"export: removed {path}, left by an export that was killed")
    return run_dir, started


def finish_run(recipe: dict, metrics: dict, export, run_dir: Path, started: float, log) -> dict:
    """Exports (`export()` returns the version folder), logs the total, writes metrics.json."""
    export_dir = export()
    metrics["total_seconds"] = round(time.time() - started, 1)
    log(f"export: {export_dir}")
    log(f"total: {metrics['total_seconds']:.0f} s")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    return {"export_dir": str(export_dir), "metrics": metrics, "run_dir": str(run_dir)}


def export(task, serving, recipe: dict, metrics: dict) -> Path:
    """Saves `serving` with the signatures `task` declares (see `zoo.export.export_serving`)."""
    from zoo.export import export_serving

    return export_serving(serving, task.signatures, recipe, metrics)


def _load_splits(task, recipe: dict, log):
    splits = task.load_splits(recipe["data"])
    log(f"data: {splits.report}")
    log(
        f"data: {len(splits.train)} train, {len(splits.validation)} validation, "
        f"{len(splits.test)} test {task.example_noun}"
    )
    return splits


@locked_run
def train(recipe: dict, *, log: Callable = print, callbacks: list | tuple = ()) -> dict:
    """Trains, evaluates and exports what `recipe` describes. Returns paths and metrics.

    Training resumes from `runs/<name>/backup` when an earlier run of the
    same recipe was interrupted, and is skipped when one finished but was not
    exported; `callbacks` are added to `fit`'s. Returns
    `{"export_dir", "metrics", "run_dir"}`.
    """
    from zoo.training import forget_finished_training

    task = get_task(recipe["task"])
    run_dir, started = start_run(recipe, log)
    splits = _load_splits(task, recipe, log)
    tokenizers = task.build_tokenizers(splits.train, recipe, log)
    model = task.build_model(recipe, tokenizers)
    datasets, token_counts = task.datasets(recipe, model, tokenizers, splits, run_dir, log)
    steps = recipe["train"]["steps_per_epoch"] or int(datasets["train"].cardinality())
    task.compile(model, recipe["train"], steps)
    log(f"model: {model.count_params():,} parameters")
    training = _fit(
        task, model, tokenizers, splits, datasets, token_counts, recipe, run_dir, log, callbacks
    )

    serving = task.serving_module(model, tokenizers, recipe)
    metrics = task.evaluate(model, serving, splits.test, recipe, final=True)
    metrics.update(training)
    log(task.format_metrics(metrics))
    result = finish_run(
        recipe, metrics, lambda: export(task, serving, recipe, metrics), run_dir, started, log
    )
    forget_finished_training(run_dir)  # exported: the next run trains a new version
    return result


def _fit(task, model, tokenizers, splits, datasets, token_counts, recipe, run_dir, log, callbacks):
    """`zoo.training.fit`, early stopping on the task's decoded validation score if it has one."""
    return fit(
        model,
        datasets,
        token_counts,
        recipe,
        run_dir,
        log=log,
        callbacks=callbacks,
        validation_score=task.validation_score(model, tokenizers, splits.validation, recipe),
    )


def _timed_evaluation(task, model, serving, examples, recipe, what: str, log) -> dict:
    started = time.time()
    metrics = task.evaluate(model, serving, examples, recipe)
    log(
        f"{what}: {task.headline(metrics)} on {metrics['examples']} examples "
        f"({time.time() - started:.0f} s)"
    )
    return metrics


@locked_run
def finetune(
    recipe: dict, *, log: Callable = print, callbacks: list | tuple = (), trust: bool = False
) -> dict:
    """Fine-tunes the export `recipe["init_from"]` names and exports the next version.

    Everything that can be refused (parts the model lacks, unreadable data,
    symbols the model cannot write) is refused before training; the base
    version is never written to. Returns what `train` returns, with
    `metrics["finetune"]` holding the validation metrics before and after.
    """
    from zoo import finetune as tuning
    from zoo.training import forget_finished_training

    if recipe["init_from"] is None:
        raise RecipeError("required to fine-tune: the export to start from", key="init_from")
    task = get_task(recipe["task"])
    options = recipe["finetune"]
    # Refused before the run folder is touched (an interrupted run's backup is kept).
    base = tuning.load_base(recipe["init_from"], trust=trust)
    tuning.check_parts(task, task.model_parts(base.model), options)
    run_dir, started = start_run(recipe, log)
    log(f"finetune: from {base.path} ({base.model.count_params():,} parameters)")

    splits = _load_splits(task, recipe, log)
    tokenizers, vocabulary = tuning.adapt_vocabularies(
        base.tokenizers,
        task.vocabulary_texts(splits.train),
        recipe,
        log,
        closed=task.finetune_policy.closed_vocabularies,
    )
    model = task.build_model(recipe, tokenizers, pretrained=False)
    grown = tuning.transfer_weights(base.model, model)
    if grown:
        log(f"finetune: new vocabulary rows in {', '.join(grown)} (the optimizer starts afresh)")
    multipliers = tuning.freeze_and_slow(task, model, options, grown, log)

    datasets, token_counts = task.datasets(recipe, model, tokenizers, splits, run_dir, log)
    steps = recipe["train"]["steps_per_epoch"] or int(datasets["train"].cardinality())
    task.compile(model, recipe["train"], steps, multipliers)
    serving = task.serving_module(model, tokenizers, recipe)

    before = _timed_evaluation(
        task, model, serving, splits.validation, recipe, "validation before", log
    )
    training = _fit(
        task, model, tokenizers, splits, datasets, token_counts, recipe, run_dir, log, callbacks
    )
    after = _timed_evaluation(
        task, model, serving, splits.validation, recipe, "validation after", log
    )
    metrics = task.evaluate(model, serving, splits.test, recipe, final=True)
    metrics.update(training)
    metrics["finetune"] = {
        "base": str(base.path),
        "vocabulary": vocabulary,
        "frozen": list(options["freeze"]),
        "validation_before": before,
        "validation_after": after,
    }
    log(f"finetune: validation {task.headline(before)} -> {task.headline(after)}")
    log(task.format_metrics(metrics))
    result = finish_run(
        recipe, metrics, lambda: export(task, serving, recipe, metrics), run_dir, started, log
    )
    forget_finished_training(run_dir)  # exported: the next run trains a new version
    return result


def run(
    recipe: dict, *, log: Callable = print, callbacks: list | tuple = (), trust: bool = False
) -> dict:
    """`finetune` when the recipe has `init_from` (`trust`: its export, see `zoo.load`), else `train`."""
    if recipe["init_from"] is not None:
        return finetune(recipe, log=log, callbacks=callbacks, trust=trust)
    return train(recipe, log=log, callbacks=callbacks)


def evaluate_export(
    recipe: dict, *, split: str = "test", log: Callable = print, trust: bool = False
) -> dict:
    """Decodes `split` of the recipe's data with the export `recipe["init_from"]`, and scores it.

    `split` is `train`, `validation`, `test` (as `zoo run` splits the data)
    or `all` (every example the data names, unsplit). The examples are
    decoded by the export's SavedModel (scanned first: `trust` as for
    `zoo.load`). Returns the task's metrics, with `export`, `data` and
    `split` added.
    """
    from zoo.finetune import FinetuneError, load_base
    from zoo.hub import LoadedModel

    task = get_task(recipe["task"])
    # What is scored is what the SavedModel decodes, as `zoo predict` would:
    # an export whose graph or variables cannot be loaded is an error here too.
    loaded = LoadedModel(Path(recipe["init_from"]), trust=trust)
    base = load_base(recipe["init_from"], trust=True)  # scanned just above
    if split == "all":
        examples, report = task.read_examples(recipe["data"])
    else:
        splits = task.load_splits(recipe["data"])
        examples, report = getattr(splits, split), splits.report
    log(f"data: {report}")
    log(f"data: {len(examples)} examples ({split})")
    if not examples:
        raise FinetuneError(f"no example to evaluate in the {split} split")
    serving = ExportedServing(
        task.serving_module(base.model, base.tokenizers, recipe), loaded, task, recipe, log
    )
    metrics = task.evaluate(base.model, serving, examples, recipe, final=True)
    log(task.format_metrics(metrics))
    data = recipe["data"]
    return {
        "export": str(base.path),
        "data": data.get("path") or data.get("source_path") or data["kind"],
        "split": split,
        **metrics,
    }


class ExportedServing:
    """A task's serving module whose served methods are answered by the loaded SavedModel.

    `Task.evaluate` decodes through `serving.<method>`: here that is the
    export's own function, called with the options (`beam_size`...) of the
    evaluation's recipe; everything else (tokenizers, teacher-forced
    analyses) comes from the Python module rebuilt from `model.keras`.
    Decoding settings the SavedModel cannot take as options are fixed in its
    graph: a recipe that changes them is told so in the log.
    """

    def __init__(self, module, loaded, task, recipe: dict, log: Callable = print):
        self._module = module
        self._served = {}
        option_keys = set()
        for signature in task.signatures:
            function = getattr(loaded.saved_model, signature.name)
            values = [o.default(recipe) for o in signature.options]
            option_keys |= {o.recipe_key for o in signature.options}
            self._served[signature.method] = _with_options(function, signature.options, values)
        fixed = [
            f"decode.{key}"
            for key, value in recipe.get("decode", {}).items()
            if f"decode.{key}" not in option_keys
            and loaded.recipe.get("decode", {}).get(key, value) != value
        ]
        if fixed:
            log(
                f"evaluate: {', '.join(fixed)} cannot change an exported graph; the export "
                "decodes with its own (only the signatures' options can be changed)"
            )

    def __getattr__(self, name: str):
        served = self.__dict__.get("_served", {})
        if name in served:
            return served[name]
        return getattr(self.__dict__["_module"], name)


def _with_options(function, options, values):
    import tensorflow as tf

    constants = [tf.constant(v, tf.as_dtype(o.dtype)) for o, v in zip(options, values, strict=True)]
    return lambda *inputs: function(*inputs, *constants)
