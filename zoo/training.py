"""What every task's training shares: the optimizer, `fit` with the zoo's callbacks, batched decoding.

`zoo.runner` runs the flow with these; tasks build their `compile` on
`make_optimizer`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.atomic_file import write_atomically

# What a finished `fit` leaves in the run folder until its export succeeds.
FINISHED_WEIGHTS = "trained.weights.h5"
FINISHED_RESULT = "trained.json"


class TrainingError(RuntimeError):
    """Training produced nothing worth exporting (the loss became NaN before any epoch ended)."""


def make_optimizer(train: dict, steps_per_epoch: int | None = None) -> keras.optimizers.Optimizer:
    learning_rate: Any = train["learning_rate"]
    # With a time budget the `TimeBudget` callback sets the rate from the clock.
    if train["schedule"] == "cosine" and steps_per_epoch and not train.get("max_minutes"):
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


class TimeBudget(keras.callbacks.Callback):
    """Ends training after `minutes`, with the learning rate scheduled over that time.

    The learning rate follows the clock rather than a step count, so a
    schedule fits the budget whatever the machine's speed: with
    `schedule="cosine"` it warms up linearly over the first `warmup` share
    of the budget, then decays along a cosine to `alpha` times its value at
    the end; with `"constant"` it stays put. When the budget is spent the
    current batch is the last one: Keras then validates, `EarlyStopping`
    (if any) restores the best weights, and the run goes on to evaluation
    and export as after its last epoch. So that this last validation pass
    fits in the budget too, training stops once the time left is less than
    the last validation pass and one batch took.

    The time spent is written to `state_path` (JSON) at every epoch end, so a
    run resumed from its backup continues the schedule and the budget where
    it stopped instead of starting them again.

    Args:
        minutes: the budget, in minutes of `fit` (validation passes included).
        learning_rate: the peak learning rate.
        schedule: `"cosine"` or `"constant"`.
        warmup: share of the budget spent warming up (cosine only).
        alpha: the final learning rate, as a share of `learning_rate`.
        state_path: where the time spent is kept between runs, or `None`.
    """

    def __init__(
        self,
        minutes: float,
        learning_rate: float,
        schedule: str = "cosine",
        warmup: float = 0.02,
        alpha: float = 0.05,
        state_path: str | Path | None = None,
    ):
        super().__init__()
        self.seconds = float(minutes) * 60.0
        self.learning_rate = float(learning_rate)
        self.schedule = schedule
        self.warmup = float(warmup)
        self.alpha = float(alpha)
        self.state_path = Path(state_path) if state_path else None
        self.spent_before = 0.0
        self.stopped = False
        self._started = None
        self._reserve = 0.0  # seconds of the last validation pass
        self._batch_started = self._test_started = None
        self._batch_seconds = 0.0

    def elapsed(self) -> float:
        """Seconds of the budget spent, earlier runs of a resumed training included."""
        return self.spent_before + (time.time() - self._started if self._started else 0.0)

    def rate(self, fraction: float) -> float:
        """The learning rate once `fraction` (0..1) of the budget is spent."""
        if self.schedule != "cosine":
            return self.learning_rate
        fraction = min(max(fraction, 0.0), 1.0)
        if self.warmup and fraction < self.warmup:
            return self.learning_rate * max(fraction / self.warmup, 0.01)
        progress = (fraction - self.warmup) / max(1.0 - self.warmup, 1e-9)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.learning_rate * (self.alpha + (1.0 - self.alpha) * cosine)

    def on_train_begin(self, logs=None):
        if self.state_path and self.state_path.exists():
            self.spent_before = float(json.loads(self.state_path.read_text())["seconds"])
        self._started = time.time()
        self.stopped = False

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_started = time.time()
        self.model.optimizer.learning_rate.assign(self.rate(self.elapsed() / self.seconds))

    def on_train_batch_end(self, batch, logs=None):
        if self._batch_started is not None:
            self._batch_seconds = time.time() - self._batch_started
        if self.elapsed() + self._reserve + self._batch_seconds >= self.seconds:
            self.model.stop_training = True
            self.stopped = True

    def on_test_begin(self, logs=None):
        self._test_started = time.time()

    def on_test_end(self, logs=None):
        if self._test_started is not None:
            self._reserve = time.time() - self._test_started

    def on_epoch_end(self, epoch, logs=None):
        if self._test_started is not None:
            # Validation ends here: a `DecodedValidation` before this callback decoded too.
            self._reserve = time.time() - self._test_started
            self._test_started = None
        if logs is not None:
            logs["learning_rate"] = float(self.rate(self.elapsed() / self.seconds))
        if self.state_path:
            self.state_path.write_text(json.dumps({"seconds": round(self.elapsed(), 1)}))


class DecodedValidation(keras.callbacks.Callback):
    """Adds a score of real decoding to each epoch's logs (`val_<name>`), for early stopping.

    Token accuracy under teacher forcing can go on rising while what the model
    decodes stops improving; with this callback placed before
    `EarlyStopping(monitor="val_<name>", mode="max")`, training keeps the
    weights that decode best.

    Args:
        name: the score's name; the log key is `val_<name>`.
        score_fn: `score_fn() -> float`, higher is better (it decodes the
            validation data with the model as it is).
    """

    def __init__(self, name: str, score_fn):
        super().__init__()
        self.key = f"val_{name}"
        self.score_fn = score_fn

    def on_epoch_end(self, epoch, logs=None):
        score = float(self.score_fn())
        if logs is not None:
            logs[self.key] = score


class _BatchCounter(keras.callbacks.Callback):
    """Counts the training batches of one `fit` call (for tokens/s when epochs are not passes)."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def _nan_hint(train: dict) -> str:
    if train.get("clipnorm"):
        return "lower train.learning_rate or train.clipnorm"
    return "lower train.learning_rate or set train.clipnorm"


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, with the last good weights.

    The weights are copied (in memory) when each epoch begins, that is as
    the previous epoch ended with a finite loss; a non-finite loss puts
    them back at once, before validation and every epoch-end callback, so
    no callback sees the broken weights (`EarlyStopping` keeps its best of
    the finite epochs, `GuardedBackup` does not back up the broken epoch).
    When no epoch of this training ended (a NaN in the first epoch) there
    is nothing to keep: `TrainingError` is raised.

    Args:
        hint: what to change in the recipe, for the error message.

    Attributes:
        stopped_at: `(epoch, batch, loss)` where the loss stopped being
            finite (1-based, as Keras prints them), or `None`.
        kept_epoch: the epoch whose weights were put back (1-based).
    """

    def __init__(self, hint: str = "lower train.learning_rate"):
        super().__init__()
        self.hint = hint
        self.stopped_at = None
        self.kept_epoch = None
        self._epoch = 0
        self._weights = None

    def on_train_begin(self, logs=None):
        self.stopped_at = self.kept_epoch = self._weights = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # Epoch 0 of a fresh run begins with random weights, not a trained epoch's.
        self._weights = self.model.get_weights() if epoch > 0 else None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.stopped_at = (self._epoch + 1, batch + 1, str(float(loss)))
        self.model.stop_training = True
        if self._weights is None:
            epoch, batch, value = self.stopped_at
            raise TrainingError(
                f"the loss became {value} at epoch {epoch}, batch {batch}, before any epoch "
                f"ended with a finite loss: nothing to export ({self.hint})"
            )
        self.model.set_weights(self._weights)
        self.kept_epoch = self._epoch


class GuardedBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that does not back up an epoch `guard` stopped (its loss was not finite).

    The backup then stays that of the last good epoch, so it never claims
    the broken epoch as done.
    """

    def __init__(self, backup_dir: str, guard: NonFiniteLossGuard, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.stopped_at is None:
            super().on_epoch_end(epoch, logs)


def check_export_target(recipe: dict) -> None:
    """Fails before any training when `export.version` names a version that exists."""
    version = recipe["export"]["version"]
    target = Path(recipe["export"]["dir"]) / recipe["name"] / str(version)
    if version is not None and target.exists():
        raise FileExistsError(
            f"export.version: {target} already exists; versions are never overwritten"
        )


def recipe_digest(recipe: dict) -> str:
    """SHA-256 of the resolved recipe: what tells a run folder's leftovers from another recipe's."""
    from zoo.config import dump_recipe

    return hashlib.sha256(dump_recipe(recipe).encode("utf-8")).hexdigest()


def save_finished_training(model: keras.Model, recipe: dict, run_dir: Path, result: dict) -> None:
    """Keeps a finished `fit` (weights and result) in `run_dir` until its export succeeds.

    The weights are written first and the result last, each by a rename:
    `trained.json` present means the weights beside it are whole.
    """
    weights = run_dir / FINISHED_WEIGHTS
    partial = run_dir / f".partial-{os.getpid()}-{FINISHED_WEIGHTS}"
    try:
        model.save_weights(str(partial), overwrite=True)
        os.replace(partial, weights)
    finally:
        partial.unlink(missing_ok=True)
    record = {"recipe_sha256": recipe_digest(recipe), "training": result}
    write_atomically(run_dir / FINISHED_RESULT, lambda f: json.dump(record, f, indent=2))


def forget_finished_training(run_dir: Path) -> None:
    """Removes what `save_finished_training` kept (once exported: the next run trains anew)."""
    (run_dir / FINISHED_RESULT).unlink(missing_ok=True)
    (run_dir / FINISHED_WEIGHTS).unlink(missing_ok=True)


def load_finished_training(model: keras.Model, recipe: dict, run_dir: Path, log) -> dict | None:
    """Loads the weights of a finished training of this recipe into `model`; returns its result.

    `None` when `run_dir` holds none; one of another recipe is discarded.
    """
    marker = run_dir / FINISHED_RESULT
    if not marker.exists():
        return None
    record = json.loads(marker.read_text(encoding="utf-8"))
    if record.get("recipe_sha256") != recipe_digest(recipe):
        log(f"train: {run_dir / FINISHED_WEIGHTS} is from a different recipe; training afresh")
        forget_finished_training(run_dir)
        return None
    optimizer = getattr(model, "optimizer", None)  # a model not compiled has none
    if optimizer is not None and not optimizer.built:
        # The file holds the optimizer's variables too (as BackupAndRestore's does).
        optimizer.build(model.trainable_variables)
    model.load_weights(str(run_dir / FINISHED_WEIGHTS))
    return record["training"]


def _resumed_epoch(backup: Path) -> int | None:
    """The epoch (1-based) a `BackupAndRestore` backup resumes training at, or `None`."""
    try:
        metadata = json.loads((backup / "training_metadata.json").read_text())
        return int(metadata["epoch"]) + 1  # Keras stores the count of epochs done
    except (OSError, ValueError, KeyError, TypeError):
        return None


def discard_stale_backup(run_dir: Path, recipe: dict, log) -> None:
    """A backup of an interrupted run is resumed only by the same recipe.

    `BackupAndRestore` would otherwise restore weights of another model (or
    fail on their shapes) after the user changed the recipe.
    """
    digest = recipe_digest(recipe)
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
    validation_score: tuple | None = None,
) -> dict:
    """`model.fit` with the zoo's callbacks: resumable backup, checkpoint, TensorBoard, early stop.

    `validation_score` (`(name, score_fn)`, from `Task.validation_score`)
    is decoded after each epoch and early stopping watches it instead of the
    validation loss.

    Returns `{"history", "train_seconds", "epochs", "epochs_this_run",
    "tokens_per_second"}`; a run resumed from `run_dir/backup` trains only
    the epochs that were left. A loss that becomes NaN or infinite stops
    training with the last good epoch's weights (`NonFiniteLossGuard`;
    `TrainingError` when there is none). The finished training is kept in
    `run_dir` (`save_finished_training`) until the caller has exported it
    and calls `forget_finished_training`: a rerun of the same recipe before
    that loads it and returns its result without training.
    """
    finished = load_finished_training(model, recipe, run_dir, log)
    if finished is not None:
        log(
            f"train: {run_dir} holds a finished training ({finished['epochs']} epochs); "
            "exporting it without training again"
        )
        # A backup left beside it (killed before fit's end removed it) would be resumed later.
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        return finished
    train = recipe["train"]
    budget = None
    if train.get("max_minutes"):
        budget = TimeBudget(
            train["max_minutes"],
            train["learning_rate"],
            schedule=train["schedule"],
            state_path=run_dir / "time_budget.json",
        )
        if not (run_dir / "backup").exists():  # a fresh run spends the budget afresh
            (run_dir / "time_budget.json").unlink(missing_ok=True)
    counter = _BatchCounter()
    monitor, mode = "val_loss", "min"
    if validation_score:
        name, score_fn = validation_score
        callbacks = [DecodedValidation(name, score_fn), *callbacks]
        monitor, mode = f"val_{name}", "max"
    # First, so that every other callback's batch and epoch ends see the good weights back.
    guard = NonFiniteLossGuard(_nan_hint(train))
    callbacks = [
        guard,
        *callbacks,
        counter,
        *([budget] if budget else []),
        # Kept when fit ends; removed below once the finished training is saved.
        GuardedBackup(str(run_dir / "backup"), guard, delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoint.keras")),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
    ]
    if train["patience"]:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                mode=mode,
                patience=train["patience"],
                restore_best_weights=True,
                verbose=1,
            )
        )
    resumed = _resumed_epoch(run_dir / "backup")
    if resumed is not None:
        log(f"train: resuming from epoch {resumed} ({run_dir / 'backup'})")
    started = time.time()
    data = datasets["train"]
    if train["steps_per_epoch"]:
        # "Epochs" of a fixed number of steps run through the data without a
        # break (and without Keras's "ran out of data" at the end of a pass).
        data = data.repeat()
    history = model.fit(
        data,
        validation_data=datasets["validation"],
        epochs=train["epochs"],
        steps_per_epoch=train["steps_per_epoch"],
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself each epoch
        verbose="auto",
    )
    seconds = time.time() - started
    epochs = history.epoch[-1] + 1 if history.epoch else 0
    epochs_run = len(history.epoch)  # this call; fewer than asked after a resume
    records = history.history
    if guard.stopped_at:
        # The broken epoch did not end: it is not counted, nor its NaN kept in the history.
        epochs, epochs_run = guard.stopped_at[0] - 1, epochs_run - 1
        records = {k: v[:epochs_run] for k, v in records.items()}
    passes = counter.batches / max(int(datasets["train"].cardinality()), 1)
    rate = token_counts["train"] * passes / max(seconds, 1e-9)
    log(
        f"train: {epochs_run} epochs ({passes:.2f} passes over the data) in {seconds:.0f} s, "
        f"{rate:,.0f} target tokens/s (padding excluded)"
    )
    if budget and budget.stopped:
        log(f"train: the {train['max_minutes']:g}-minute budget ended training")
    if guard.stopped_at:
        nan_epoch, nan_batch, value = guard.stopped_at
        early = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
        kept = guard.kept_epoch
        if early is not None and early.best_weights is not None:
            # It restored its best epoch when fit ended (the broken one repeats the last).
            kept = min(kept, early.best_epoch + 1)
        log(
            f"train: the loss became {value} at epoch {nan_epoch}, batch {nan_batch}; "
            f"stopped with the weights of epoch {kept} ({guard.hint})"
        )
    result = {
        "history": {k: [float(x) for x in v] for k, v in records.items()},
        "train_seconds": round(seconds, 1),
        "epochs": epochs,
        "epochs_this_run": epochs_run,
        "passes_this_run": round(passes, 3),
        "stopped_by_budget": bool(budget and budget.stopped),
        "stopped_by_nonfinite_loss": bool(guard.stopped_at),
        "tokens_per_second": round(rate, 1),
    }
    save_finished_training(model, recipe, run_dir, result)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return result


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
