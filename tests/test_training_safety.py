"""Training that survives hostile events: an interruption, a failed export, a loss gone NaN."""

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.tasks.test_translation import TINY
from zoo import runner
from zoo.config import resolve_recipe


def _recipe(tmp_path, *overrides):
    return resolve_recipe(
        TINY,
        [
            "data.size=120",
            "data.validation_size=5",
            "data.test_size=5",
            "decode.beam_size=1",
            "decode.max_length=8",
            *overrides,
            f"export.dir={tmp_path / 'saved_models'}",
            f"run.dir={tmp_path / 'runs'}",
        ],
    )


class _Batches(keras.callbacks.Callback):
    """Counts training batches and keeps the weights `fit` ended with."""

    def __init__(self):
        super().__init__()
        self.batches = 0
        self.weights = None

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_train_end(self, logs=None):
        self.weights = self.model.get_weights()


class _Poison(keras.callbacks.Callback):
    """Makes the loss NaN from one batch on (a diverging training), keeping the epochs before."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.epoch, self.batch = epoch, batch
        self.epoch_weights = {}
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self._epoch, batch) == (self.epoch, self.batch):
            variable = self.model.trainable_variables[0]
            variable.assign(np.full(variable.shape, np.nan, variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_weights[epoch + 1] = self.model.get_weights()


def _exported_weights(export_dir) -> list:
    from zoo.finetune import load_base

    return load_base(export_dir).model.get_weights()


def test_a_finished_training_is_exported_by_the_rerun(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path, "train.epochs=1")
    exported = runner.export

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(runner, "export", full_disk)
    first = _Batches()
    with pytest.raises(OSError, match="No space"):
        runner.train(recipe, log=lambda _: None, callbacks=[first])
    assert first.batches > 0

    monkeypatch.setattr(runner, "export", exported)
    again, logs = _Batches(), []
    result = runner.train(recipe, log=logs.append, callbacks=[again])
    run_dir = tmp_path / "runs" / "tiny"
    assert again.batches == 0, "the rerun trained again"
    assert (
        f"train: {run_dir} holds a finished training (1 epochs); "
        "exporting it without training again"
    ) in logs
    assert result["export_dir"].endswith("/tiny/1")
    for kept, trained in zip(_exported_weights(result["export_dir"]), first.weights, strict=True):
        np.testing.assert_array_equal(kept, trained)

    # Exported: nothing is kept, so the next run trains a new version, as always.
    assert not (run_dir / "trained.json").exists()
    assert not (run_dir / "trained.weights.h5").exists()


@pytest.mark.slow  # a base training, then a fine-tuning run twice: about a minute
def test_a_finished_finetuning_is_exported_by_the_rerun(tmp_path, monkeypatch):
    base = runner.train(_recipe(tmp_path, "train.epochs=1"), log=lambda _: None)
    recipe = resolve_recipe(
        {"init_from": str(Path(base["export_dir"]).parent)},
        [f"run.dir={tmp_path / 'runs'}", "train.epochs=1"],
    )
    exported = runner.export

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(runner, "export", full_disk)
    first = _Batches()
    with pytest.raises(OSError, match="No space"):
        runner.finetune(recipe, log=lambda _: None, callbacks=[first])
    monkeypatch.setattr(runner, "export", exported)
    again, logs = _Batches(), []
    result = runner.finetune(recipe, log=logs.append, callbacks=[again])
    assert again.batches == 0 and any("holds a finished training" in line for line in logs)
    assert result["export_dir"].endswith("/tiny/2")
    for kept, trained in zip(_exported_weights(result["export_dir"]), first.weights, strict=True):
        np.testing.assert_array_equal(kept, trained)


def test_a_finished_training_of_another_recipe_is_discarded(tmp_path):
    from zoo.tasks import get_task
    from zoo.training import load_finished_training, save_finished_training

    recipe = _recipe(tmp_path)
    task = get_task("translation")
    splits = task.load_splits(recipe["data"])
    model = task.build_model(recipe, task.build_tokenizers(splits.train, recipe, lambda _: None))
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    save_finished_training(model, recipe, run_dir, {"epochs": 1})
    logs = []
    assert load_finished_training(model, recipe, run_dir, logs.append) == {"epochs": 1}
    other = resolve_recipe(recipe, ["train.seed=7"])
    assert load_finished_training(model, other, run_dir, logs.append) is None
    assert "different recipe" in logs[-1]
    assert load_finished_training(model, recipe, run_dir, logs.append) is None  # gone


def test_a_nan_loss_stops_with_the_last_finite_epoch(tmp_path):
    recipe = _recipe(tmp_path, "train.epochs=3", "train.patience=2")
    poison, logs = _Poison(epoch=1, batch=1), []
    result = runner.train(recipe, log=logs.append, callbacks=[poison])
    assert any(
        line.startswith(
            "train: the loss became nan at epoch 2, batch 2; stopped with the weights of epoch 1"
        )
        and "train.learning_rate" in line
        for line in logs
    ), logs
    weights = _exported_weights(result["export_dir"])
    assert all(np.isfinite(w).all() for w in weights)
    for kept, epoch_1 in zip(weights, poison.epoch_weights[1], strict=True):
        np.testing.assert_array_equal(kept, epoch_1)
    assert result["metrics"]["epochs"] == 1
    assert all(math.isfinite(x) for v in result["metrics"]["history"].values() for x in v)
    assert not (tmp_path / "runs" / "tiny" / "backup").exists()


def test_a_nan_loss_in_the_first_epoch_refuses_to_export(tmp_path):
    from zoo.training import TrainingError

    recipe = _recipe(tmp_path, "train.epochs=2")
    with pytest.raises(TrainingError, match="train.learning_rate") as raised:
        runner.train(recipe, log=lambda _: None, callbacks=[_Poison(epoch=0, batch=1)])
    assert "\n" not in str(raised.value) and "epoch 1, batch 2" in str(raised.value)
    assert not (tmp_path / "saved_models" / "tiny").exists() or not any(
        (tmp_path / "saved_models" / "tiny").iterdir()
    )


def test_the_nan_guard_sees_an_infinite_loss_too():
    from zoo.training import NonFiniteLossGuard

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    guard = NonFiniteLossGuard()
    guard.set_model(model)
    guard.on_epoch_begin(1)
    good = model.get_weights()
    model.set_weights([np.full_like(w, np.inf) for w in good])
    guard.on_train_batch_end(0, {"loss": math.inf})
    assert model.stop_training and guard.stopped_at == (2, 1, "inf")
    for now, before in zip(model.get_weights(), good, strict=True):
        np.testing.assert_array_equal(now, before)
