import keras
import numpy as np
import pytest

from zoo.models.learning_rate_multipliers import LearningRateMultipliers


def _variables():
    """Three variables with equal values, to receive equal gradients."""
    return [keras.Variable(np.zeros((2, 3), "float32"), name=n) for n in ("a", "b", "c")]


def _step(inner, multipliers):
    variables = _variables()
    optimizer = LearningRateMultipliers(inner, multipliers)
    gradient = np.array([[0.3, -2.0, 5.0], [1e-3, 0.7, -0.1]], "float32")
    optimizer.apply([gradient] * 3, variables)
    return [v.numpy() for v in variables]


@pytest.mark.parametrize(
    "make",
    [lambda: keras.optimizers.SGD(0.1), lambda: keras.optimizers.SGD(0.1, momentum=0.9)],
    ids=["sgd", "momentum"],
)
def test_sgd_step_moves_multiplied_variables_exactly_multiplier_times_as_far(make):
    a, b, c = _step(make(), {"a": 0.25, "b": 3.0})
    np.testing.assert_allclose(c, -0.1 * np.array([[0.3, -2.0, 5.0], [1e-3, 0.7, -0.1]]), rtol=1e-6)
    np.testing.assert_allclose(a, 0.25 * c, rtol=1e-6)
    np.testing.assert_allclose(b, 3.0 * c, rtol=1e-6)


def test_adam_step_moves_multiplied_variables_exactly_multiplier_times_as_far():
    a, b, c = _step(keras.optimizers.Adam(0.01), {"a": 0.1})
    # Adam's first step is lr * sign(gradient) (up to epsilon): only the rate can shrink it.
    np.testing.assert_allclose(np.abs(c[0]), 0.01, rtol=1e-3)
    np.testing.assert_allclose(a, 0.1 * c, rtol=1e-6)
    np.testing.assert_array_equal(b, c)


def test_unnamed_variables_move_as_under_the_plain_optimizer():
    gradient = np.array([[0.3, -2.0, 5.0], [1e-3, 0.7, -0.1]], "float32")
    plain = _variables()
    optimizer = keras.optimizers.Adam(0.01)
    for _ in range(3):
        optimizer.apply([gradient] * 3, plain)
    wrapped = _variables()
    optimizer = LearningRateMultipliers(keras.optimizers.Adam(0.01), {"a": 0.0})
    for _ in range(3):
        optimizer.apply([gradient] * 3, wrapped)
    np.testing.assert_array_equal(wrapped[0].numpy(), np.zeros((2, 3)))  # multiplier 0
    for p, w in zip(plain[1:], wrapped[1:], strict=True):
        np.testing.assert_array_equal(p.numpy(), w.numpy())
    assert int(optimizer.iterations) == 3


def _twin_model():
    """y = fast(x) + slow(x): two equal Dense layers, so they get equal gradients."""
    inputs = keras.Input((3,))
    fast = keras.layers.Dense(2, kernel_initializer="ones", name="fast")
    slow = keras.layers.Dense(2, kernel_initializer="ones", name="slow")
    return keras.Model(inputs, keras.layers.Add()([fast(inputs), slow(inputs)]), name="twins")


def _linear_loss(y_true, y_pred):
    # Gradients do not depend on the weights: the move is sum(lr_t) * gradient.
    return keras.ops.mean(y_pred, axis=-1)


def test_fit_with_schedule_scales_every_step():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = _twin_model()
    optimizer = LearningRateMultipliers(keras.optimizers.SGD(schedule), {"slow/.*": 0.1})
    model.compile(optimizer=optimizer, loss=_linear_loss)
    x = np.ones((4, 3), "float32")
    model.fit(x, np.zeros((4, 2)), batch_size=4, epochs=3, verbose=0)
    fast = model.get_layer("fast").kernel.numpy() - 1.0
    slow = model.get_layer("slow").kernel.numpy() - 1.0
    # d loss / d kernel = 1/2 everywhere; three steps at 0.1, 0.05, 0.025.
    np.testing.assert_allclose(fast, -0.175 * 0.5, rtol=1e-5)
    np.testing.assert_allclose(slow, 0.1 * fast, rtol=1e-5)
    assert int(optimizer.iterations) == 3


def test_learning_rate_scheduler_callback_sets_the_inner_rate():
    model = _twin_model()
    optimizer = LearningRateMultipliers(keras.optimizers.SGD(1.0), {"slow/.*": 0.1})
    model.compile(optimizer=optimizer, loss=_linear_loss)
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    x = np.ones((4, 3), "float32")
    model.fit(x, np.zeros((4, 2)), batch_size=4, epochs=2, callbacks=[scheduler], verbose=0)
    fast = model.get_layer("fast").kernel.numpy() - 1.0
    slow = model.get_layer("slow").kernel.numpy() - 1.0
    np.testing.assert_allclose(fast, -(0.1 + 0.05) * 0.5, rtol=1e-5)
    np.testing.assert_allclose(slow, 0.1 * fast, rtol=1e-5)


def test_fit_with_adam():
    model = _twin_model()
    optimizer = LearningRateMultipliers(keras.optimizers.Adam(0.01), {"slow/kernel": 0.5})
    model.compile(optimizer=optimizer, loss=_linear_loss)
    model.fit(np.ones((4, 3), "float32"), np.zeros((4, 2)), epochs=1, verbose=0)
    fast = model.get_layer("fast").kernel.numpy() - 1.0
    slow = model.get_layer("slow").kernel.numpy() - 1.0
    np.testing.assert_allclose(fast, -0.01, rtol=1e-4)
    np.testing.assert_allclose(slow, 0.5 * fast, rtol=1e-6)
    np.testing.assert_array_equal(
        model.get_layer("fast").bias.numpy(), model.get_layer("slow").bias.numpy()
    )


def test_keras_file_round_trip_keeps_multipliers_and_state(tmp_path):
    model = _twin_model()
    schedule = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=10)
    optimizer = LearningRateMultipliers(keras.optimizers.Adam(schedule), {"slow/.*": 0.2})
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 2)).astype("float32")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.optimizer, LearningRateMultipliers)
    assert reloaded.optimizer.get_config() == optimizer.get_config()
    assert int(reloaded.optimizer.iterations) == 4
    for a, b in zip(optimizer.variables, reloaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The same next step on both: moments, step count and multipliers all came back.
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    reloaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    slow = reloaded.get_layer("slow").kernel
    assert reloaded.optimizer.multiplier_of(slow.path) == 0.2


def test_learning_rate_reads_and_sets_the_inner_rate():
    inner = keras.optimizers.Adam(0.01)
    optimizer = LearningRateMultipliers(inner, {"a": 0.5})
    optimizer.learning_rate = 0.002
    assert float(inner.learning_rate) == pytest.approx(0.002)
    assert float(optimizer.learning_rate) == pytest.approx(0.002)
    clone = LearningRateMultipliers.from_config(optimizer.get_config())
    assert float(clone.learning_rate) == pytest.approx(0.002)
    assert clone.multipliers == {"a": 0.5}


def test_patterns_match_whole_paths_and_ambiguity_is_an_error():
    optimizer = LearningRateMultipliers("sgd", {"enc/.*": 0.1, "enc/backbone/x": 0.5})
    assert optimizer.multiplier_of("enc/backbone/x") == 0.5  # exact path first
    assert optimizer.multiplier_of("enc/y") == 0.1
    assert optimizer.multiplier_of("other/enc/y") == 1.0
    ambiguous = LearningRateMultipliers("sgd", {"enc/.*": 0.1, ".*/y": 0.5})
    with pytest.raises(ValueError, match="several"):
        ambiguous.multiplier_of("enc/y")


def test_bad_arguments_and_unused_patterns_are_reported():
    with pytest.raises(ValueError, match="Bad pattern"):
        LearningRateMultipliers("sgd", {"(": 0.1})
    with pytest.raises(ValueError, match=">= 0"):
        LearningRateMultipliers("sgd", {"a": -1.0})
    with pytest.raises(ValueError, match="nesting"):
        LearningRateMultipliers(LearningRateMultipliers("sgd"))
    optimizer = LearningRateMultipliers("sgd", {"a": 0.1, "typo": 0.1})
    with pytest.warns(UserWarning, match="typo"):
        optimizer.build(_variables())
