"""What every task's training shares: the optimizer, `fit` with the zoo's callbacks, batched decoding.

`zoo.runner` runs the flow with these; tasks build their `compile` on
`make_optimizer`.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf


def make_optimizer(train: dict, steps_per_epoch: int | None = None) -> keras.optimizers.Optimizer:
    learning_rate: Any = train["learning_rate"]
    if train["schedule"] == "cosine" and steps_per_epoch:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps_per_epoch * train["epochs"], alpha=0.05
        )
    kwargs: dict[str, Any] = {"learning_rate": learning_rate}
    if train["clipnorm"]:
        kwargs["clipnorm"] = train["clipnorm"]
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[train["optimizer"]](**kwargs)


def compile_for_fit(
    model: keras.Model,
    train: dict,
    steps_per_epoch: int | None = None,
    multipliers: dict | None = None,
) -> None:
    """Compiles a model that writes tokens: masked cross-entropy and accuracy, the recipe's optimizer.

    `multipliers` (variable path or pattern -> factor) scale parts' learning rates.
    """
    from zoo.models import LearningRateMultipliers, MaskedAccuracy, MaskedSparseCrossentropy

    optimizer = make_optimizer(train, steps_per_epoch)
    if multipliers:
        optimizer = LearningRateMultipliers(optimizer, multipliers)
    model.compile(
        optimizer=optimizer,
        loss=MaskedSparseCrossentropy(label_smoothing=train["label_smoothing"]),
        metrics=[MaskedAccuracy()],
        # The decoders' scan cannot be compiled by XLA (KERAS3-NOTES): say so explicitly.
        jit_compile=bool(train["jit_compile"]),
    )


def check_export_target(recipe: dict) -> None:
    """Fails before any training when `export.version` names a version that exists."""
    version = recipe["export"]["version"]
    target = Path(recipe["export"]["dir"]) / recipe["name"] / str(version)
    if version is not None and target.exists():
        raise FileExistsError(
            f"export.version: {target} already exists; versions are never overwritten"
        )


def discard_stale_backup(run_dir: Path, recipe: dict, log) -> None:
    """A backup of an interrupted run is resumed only by the same recipe.

    `BackupAndRestore` would otherwise restore weights of another model (or
    fail on their shapes) after the user changed the recipe.
    """
    from zoo.config import dump_recipe

    digest = hashlib.sha256(dump_recipe(recipe).encode("utf-8")).hexdigest()
    stamp = run_dir / "backup.recipe-sha256"
    backup = run_dir / "backup"
    if backup.exists() and (not stamp.exists() or stamp.read_text().strip() != digest):
        log(f"train: {backup} is from a different recipe; starting afresh")
        shutil.rmtree(backup)
    stamp.write_text(digest + "\n")


def fit(
    model: keras.Model,
    datasets: dict[str, tf.data.Dataset],
    token_counts: dict[str, int],
    recipe: dict,
    run_dir: Path,
    *,
    log,
    callbacks: list | tuple = (),
) -> dict:
    """`model.fit` with the zoo's callbacks: resumable backup, checkpoint, TensorBoard, early stop.

    Returns `{"history", "train_seconds", "epochs", "epochs_this_run",
    "tokens_per_second"}`; a run resumed from `run_dir/backup` trains only
    the epochs that were left.
    """
    train = recipe["train"]
    callbacks = [
        *callbacks,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoint.keras")),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
    ]
    if train["patience"]:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                patience=train["patience"], restore_best_weights=True, verbose=1
            )
        )
    started = time.time()
    history = model.fit(
        datasets["train"],
        validation_data=datasets["validation"],
        epochs=train["epochs"],
        steps_per_epoch=train["steps_per_epoch"],
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself each epoch
        verbose="auto",
    )
    seconds = time.time() - started
    epochs_run = len(history.epoch)  # this call; fewer than asked after a resume
    rate = token_counts["train"] * epochs_run / max(seconds, 1e-9)
    log(
        f"train: {epochs_run} epochs in {seconds:.0f} s, "
        f"{rate:,.0f} target tokens/s (padding excluded)"
    )
    return {
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "train_seconds": round(seconds, 1),
        "epochs": history.epoch[-1] + 1 if history.epoch else 0,
        "epochs_this_run": epochs_run,
        "tokens_per_second": round(rate, 1),
    }


def decode_corpus(
    decode_fn,
    inputs: list[str],
    batch_size: int = 64,
    progress: bool = True,
    unit: str = "sentence",
) -> list[dict]:
    """Runs a strings-in, dict-of-tensors-out function over `inputs` in batches.

    Returns one dict of NumPy values per input, in order.
    """
    results = []
    bar = keras.utils.Progbar(len(inputs), unit_name=unit) if progress else None
    for i in range(0, len(inputs), batch_size):
        batch = decode_fn(tf.constant(inputs[i : i + batch_size]))
        batch = {k: v.numpy() for k, v in batch.items()}
        size = len(next(iter(batch.values())))
        for j in range(size):
            results.append({k: v[j] for k, v in batch.items()})
        if bar:
            bar.add(size)
    return results
