"""Per-variable learning-rate multipliers for any Keras optimizer (e.g. a slower CNN backbone)."""

from __future__ import annotations

import re
import warnings

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class LearningRateMultipliers(keras.optimizers.Optimizer):
    """Wraps an optimizer so that chosen variables train at `learning_rate * multiplier`.

    Keras 3 optimizers have one learning rate. Every optimizer's `update_step(gradient,
    variable, learning_rate)` receives the current rate (a schedule already evaluated at
    the current step), so this wrapper scales that argument for the variables whose path
    matches a pattern: the update is exactly the inner optimizer's, with a smaller (or
    larger) step. Scaling gradients instead would do nothing under Adam or RMSprop, whose
    steps are invariant to the gradient's scale.

    The wrapper owns the inner optimizer like `keras.optimizers.LossScaleOptimizer` does
    (and, like it, exposes it as `inner_optimizer`, which Keras' TensorBoard and
    SwapEMAWeights callbacks understand): `apply` delegates to the inner optimizer, so
    clipping, gradient accumulation, EMA, loss scaling and its `iterations` are the inner
    optimizer's, and `learning_rate` reads and sets the inner rate (LearningRateScheduler
    and ReduceLROnPlateau work). Saved with the model (`.keras`), it reloads with its
    state.

    Limits: Keras' own optimizers all take the rate from that argument, but decoupled
    weight decay (`weight_decay=`, as in `AdamW`) uses the base rate for every variable,
    and Adafactor caps the (scaled) rate at `1 / sqrt(step)`. The torch backend's fused
    optimizers bypass `update_step`, so torch is refused.

    Args:
        inner_optimizer: the optimizer (instance, name or config) that does the updates.
        multipliers: dict `{pattern: multiplier}`. A variable takes the multiplier of the
            pattern equal to its `variable.path`, else of the one regular expression that
            `re.fullmatch`es it (two matches are an error); 1 when none does. Multipliers
            are floats >= 0 (0 freezes a variable without removing it from training).
            Paths start with the scopes of the enclosing models, and those differ between a
            functional and a subclassed model, and between building and reloading
            (`captioner/cnn_encoder/...` may come back as `cnn_encoder/...`): start patterns
            with `(?:.*/)?`. `CNNEncoder.learning_rate_multipliers()` gives one for its
            backbone.
        name: name of the wrapper.

    Example:

    ```python
    optimizer = LearningRateMultipliers(
        keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 1000, 0.9)),
        {"(?:.*/)?cnn_encoder/backbone/.*": 0.1},
    )
    model.compile(optimizer=optimizer, loss=...)
    ```
    """

    def __init__(self, inner_optimizer, multipliers: dict[str, float] | None = None, name=None):
        if keras.backend.backend() == "torch":
            raise NotImplementedError(
                "LearningRateMultipliers needs optimizers that call `update_step`; the torch "
                "backend's fused optimizers do not."
            )
        super().__init__(learning_rate=0.0, name=name)
        inner_optimizer = keras.optimizers.get(inner_optimizer)
        if isinstance(inner_optimizer, LearningRateMultipliers):
            raise ValueError(
                "Merge the multipliers instead of nesting LearningRateMultipliers. "
                f"Received: inner_optimizer={inner_optimizer}"
            )
        multipliers = dict(multipliers or {})
        for pattern, multiplier in multipliers.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"Bad pattern in `multipliers`: {error}. Received: pattern={pattern!r}"
                ) from error
            if not isinstance(multiplier, int | float) or multiplier < 0:
                raise ValueError(
                    "Multipliers must be numbers >= 0. "
                    f"Received: multipliers[{pattern!r}]={multiplier!r}"
                )
        self.inner_optimizer = inner_optimizer
        self.multipliers = {pattern: float(m) for pattern, m in multipliers.items()}
        # Optimizer variable key (`_var_key`, which also sees through the tf.Variable that
        # the TensorFlow backend passes to update_step) -> multiplier; filled by `build`.
        self._multiplier_by_key = {}
        self._wrap_update_step()

    def _wrap_update_step(self) -> None:
        inner = self.inner_optimizer
        update_step = inner.update_step

        def update_step_with_multiplier(gradient, variable, learning_rate):
            multiplier = self._multiplier_by_key.get(inner._var_key(variable), 1.0)
            if multiplier != 1.0:
                learning_rate = ops.multiply(learning_rate, multiplier)
            return update_step(gradient, variable, learning_rate)

        # An instance attribute: every backend's update loop calls `self.update_step`.
        inner.update_step = update_step_with_multiplier

    def multiplier_of(self, path: str) -> float:
        """The multiplier of the variable at `path` (1 when no pattern names it)."""
        if path in self.multipliers:
            return self.multipliers[path]
        matches = [pattern for pattern in self.multipliers if re.fullmatch(pattern, path)]
        if len(matches) > 1:
            raise ValueError(
                f"Variable {path!r} matches several `multipliers` patterns: {matches}. "
                "Make them exclusive."
            )
        return self.multipliers[matches[0]] if matches else 1.0

    def build(self, var_list):
        if self.built:
            return
        used = set()
        for variable in var_list:
            multiplier = self.multiplier_of(variable.path)
            if multiplier != 1.0:
                self._multiplier_by_key[self.inner_optimizer._var_key(variable)] = multiplier
            used.update(p for p in self.multipliers if p == variable.path)
            used.update(p for p in self.multipliers if re.fullmatch(p, variable.path))
        unused = sorted(set(self.multipliers) - used)
        if unused:
            warnings.warn(
                f"LearningRateMultipliers: no trainable variable matches {unused}.",
                stacklevel=2,
            )
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        self.inner_optimizer.apply(grads, trainable_variables)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        # Not super().get_config(): clipping, EMA, etc. belong to the inner optimizer.
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "multipliers": dict(self.multipliers),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner_optimizer = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner_optimizer, **config)
