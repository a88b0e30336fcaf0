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
from zoo.tasks import get_task
from zoo.training import check_export_target, discard_stale_backup, fit


def start_run(recipe: dict, log) -> tuple[Path, float]:
    """Seeds, makes the run folder, and fails early on an existing export version.

    Returns the run folder and the start time (for the total in the log).
    """
    keras.utils.set_random_seed(recipe["train"]["seed"])
    started = time.time()
    run_dir = run_folder(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_export_target(recipe)
    discard_stale_backup(run_dir, recipe, log)
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


def train(recipe: dict, *, log: Callable = print, callbacks: list | tuple = ()) -> dict:
    """Trains, evaluates and exports what `recipe` describes. Returns paths and metrics.

    Training resumes from `runs/<name>/backup` when an earlier run of the
    same recipe was interrupted; `callbacks` are added to `fit`'s. Returns
    `{"export_dir", "metrics", "run_dir"}`.
    """
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
    return finish_run(
        recipe, metrics, lambda: export(task, serving, recipe, metrics), run_dir, started, log
    )


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


def finetune(recipe: dict, *, log: Callable = print, callbacks: list | tuple = ()) -> dict:
    """Fine-tunes the export `recipe["init_from"]` names and exports the next version.

    Everything that can be refused (parts the model lacks, unreadable data,
    symbols the model cannot write) is refused before training; the base
    version is never written to. Returns what `train` returns, with
    `metrics["finetune"]` holding the validation metrics before and after.
    """
    from zoo import finetune as tuning

    if recipe["init_from"] is None:
        raise RecipeError("required to fine-tune: the export to start from", key="init_from")
    task = get_task(recipe["task"])
    options = recipe["finetune"]
    # Refused before the run folder is touched (an interrupted run's backup is kept).
    base = tuning.load_base(recipe["init_from"])
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
    return finish_run(
        recipe, metrics, lambda: export(task, serving, recipe, metrics), run_dir, started, log
    )


def run(recipe: dict, *, log: Callable = print, callbacks: list | tuple = ()) -> dict:
    """`finetune` when the recipe has `init_from`, else `train`."""
    if recipe["init_from"] is not None:
        return finetune(recipe, log=log, callbacks=callbacks)
    return train(recipe, log=log, callbacks=callbacks)


def evaluate_export(recipe: dict, *, split: str = "test", log: Callable = print) -> dict:
    """Decodes `split` of the recipe's data with the export `recipe["init_from"]`, and scores it.

    `split` is `train`, `validation`, `test` (as `zoo run` splits the data)
    or `all` (every example the data names, unsplit). Returns the task's
    metrics, with `export`, `data` and `split` added.
    """
    from zoo.finetune import FinetuneError, load_base

    task = get_task(recipe["task"])
    base = load_base(recipe["init_from"])
    if split == "all":
        examples, report = task.read_examples(recipe["data"])
    else:
        splits = task.load_splits(recipe["data"])
        examples, report = getattr(splits, split), splits.report
    log(f"data: {report}")
    log(f"data: {len(examples)} examples ({split})")
    if not examples:
        raise FinetuneError(f"no example to evaluate in the {split} split")
    serving = task.serving_module(base.model, base.tokenizers, recipe)
    metrics = task.evaluate(base.model, serving, examples, recipe, final=True)
    log(task.format_metrics(metrics))
    data = recipe["data"]
    return {
        "export": str(base.path),
        "data": data.get("path") or data.get("source_path") or data["kind"],
        "split": split,
        **metrics,
    }
