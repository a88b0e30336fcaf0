"""`train.max_minutes`: training ends at the budget, the learning rate follows the clock."""

import json
import math

import keras
import numpy as np
import pytest

from zoo.training import TimeBudget


def test_cosine_rate_warms_up_then_decays_to_alpha():
    budget = TimeBudget(10, 0.01, schedule="cosine", warmup=0.1, alpha=0.05)
    assert budget.rate(0.05) == pytest.approx(0.005)
    assert budget.rate(0.1) == pytest.approx(0.01)
    assert budget.rate(0.55) == pytest.approx(0.01 * (0.05 + 0.95 * 0.5))
    assert budget.rate(1.0) == pytest.approx(0.0005)
    assert budget.rate(3.0) == pytest.approx(0.0005)  # past the budget: the floor
    rates = [budget.rate(f) for f in np.linspace(0.1, 1.0, 20)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert TimeBudget(10, 0.01, schedule="constant").rate(0.7) == 0.01
    assert math.isclose(TimeBudget(10, 0.01, warmup=0.0).rate(0.0), 0.01)


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def test_training_stops_once_the_budget_is_spent_and_the_state_is_kept(tmp_path, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("zoo.training.time.time", clock)

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            clock.now += 6.0  # every batch "takes" 6 s: the 1-minute budget is 10 batches

    state = tmp_path / "time_budget.json"
    budget = TimeBudget(1.0, 0.01, state_path=state)
    rates = []

    class Rate(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            rates.append(float(self.model.optimizer.learning_rate.numpy()))

    x, y = np.ones((64, 3)), np.ones((64, 1))
    model = _model()
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[Tick(), budget, Rate()])
    assert budget.stopped
    # 16 batches an epoch; after 9 (54 s) there is no time left for a 10th.
    assert len(rates) == 9 and len(history.epoch) == 1
    assert rates[0] < rates[1] > rates[-1] and rates[-1] < 0.002  # warm-up, then decay
    assert json.loads(state.read_text())["seconds"] == pytest.approx(54.0)
    # A resumed run reads the time already spent: nothing is left to train.
    again = TimeBudget(1.0, 0.01, state_path=state)
    rates.clear()
    model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[Tick(), again, Rate()])
    assert again.stopped and len(rates) == 1


def test_the_last_validation_pass_fits_in_the_budget(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("zoo.training.time.time", clock)

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            clock.now += 1.0

        def on_test_batch_end(self, batch, logs=None):
            clock.now += 5.0

    budget = TimeBudget(1.0, 0.01)
    x, y = np.ones((40, 3)), np.ones((40, 1))
    started = clock.now
    history = _model().fit(
        x,
        y,
        batch_size=4,
        epochs=50,
        validation_data=(x[:8], y[:8]),
        verbose=0,
        callbacks=[Tick(), budget],
    )
    # Each epoch: 10 batches (10 s) and a validation pass of 2 batches (10 s).
    assert budget.stopped
    assert clock.now - started <= 60.0
    assert len(history.epoch) == 3  # 3 x 20 s; a 4th epoch would not fit


def test_a_decoded_validation_counts_in_the_reserve(monkeypatch):
    from zoo.training import DecodedValidation

    clock = _Clock()
    monkeypatch.setattr("zoo.training.time.time", clock)

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            clock.now += 1.0

    scores = iter([10.0, 30.0, 20.0, 15.0, 12.0, 11.0, 9.0])

    def decode():
        clock.now += 10.0  # decoding the validation data takes 10 s
        return next(scores)

    budget = TimeBudget(1.0, 0.01)
    x, y = np.ones((40, 3)), np.ones((40, 1))
    started = clock.now
    history = _model().fit(
        x,
        y,
        batch_size=4,
        epochs=50,
        validation_data=(x[:8], y[:8]),
        verbose=0,
        # as zoo.training.fit orders them: the score first, so the others see it
        callbacks=[DecodedValidation("f1", decode), Tick(), budget],
    )
    assert history.history["val_f1"][:2] == [10.0, 30.0]
    # Each epoch: 10 batches and 10 s of decoding; the reserve holds the decoding,
    # so the run ends within the minute after 3 epochs.
    assert budget.stopped and clock.now - started <= 60.0
    assert len(history.epoch) == 3


def test_fit_stops_on_the_decoded_score_and_keeps_its_best_weights(tmp_path):
    """`zoo.training.fit` with a task's validation score: early stopping watches `val_<name>`."""
    import tensorflow as tf

    from zoo.training import fit

    model = _model()
    scores = iter([10.0, 30.0, 20.0, 15.0, 40.0, 50.0])
    kernels = []

    def decode():
        kernels.append(model.layers[0].kernel.numpy().copy())  # the weights this score saw
        return next(scores)

    x, y = np.ones((16, 3), "float32"), np.full((16, 1), 5.0, "float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    recipe = {
        "train": {
            "max_minutes": None,
            "patience": 2,
            "steps_per_epoch": None,
            "epochs": 6,
            "learning_rate": 0.01,
            "schedule": "constant",
        }
    }
    out = fit(
        model,
        {"train": data, "validation": data},
        {"train": 16},
        recipe,
        tmp_path,
        log=lambda line: None,
        validation_score=("f1", decode),
    )
    # 30 at the 2nd epoch, then two epochs without better: stopped after the 4th,
    # with the 2nd epoch's weights back (not the last ones, not the best loss).
    assert out["history"]["val_f1"] == [10.0, 30.0, 20.0, 15.0]
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernels[1])
    assert not np.array_equal(kernels[1], kernels[3])
