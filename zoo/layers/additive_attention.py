"""Additive (Bahdanau) attention."""

from __future__ import annotations

import keras
from keras import ops

from zoo.layers.attention import Attention


@keras.saving.register_keras_serializable(package="zoo")
class AdditiveAttention(Attention):
    """Additive attention of Bahdanau et al. (2015): `v^T tanh(W q + U k + b)`.

    Unlike `keras.layers.AdditiveAttention`, this layer has the learned
    projections `W` (query), `U` (keys) and the vector `v` of the paper. `U k`
    is computed once per memory in `prepare`, so a decoder pays only `W q` per
    step.

    Args:
        units: size of the hidden layer in which queries and keys are added.
        normalize: if `True`, `v` is weight-normalised (`g * v / ||v||` with a
            learned scalar `g`), as in Salimans & Kingma (2016) and the
            `normalize` option of tensorflow/nmt. Defaults to `False`.
        dropout: dropout rate on the attention weights.

    Call arguments: see `zoo.layers.Attention`.

    Example:

    >>> layer = AdditiveAttention(units=8)
    >>> context, weights = layer(
    ...     query=np.zeros((2, 16)), value=np.ones((2, 5, 12)),
    ...     return_attention_scores=True)
    >>> context.shape, weights.shape
    ((2, 12), (2, 5))

    References:
        - Bahdanau, Cho, Bengio. Neural Machine Translation by Jointly
          Learning to Align and Translate. ICLR 2015.
    """

    def __init__(self, units: int, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer. Received: units={units}")
        self.units = units
        self.normalize = normalize
        self.query_dense = keras.layers.Dense(
            units, use_bias=False, name="query_dense", dtype=self.dtype_policy
        )
        self.key_dense = keras.layers.Dense(
            units, use_bias=True, name="key_dense", dtype=self.dtype_policy
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        key_shape = key_shape or value_shape
        self.query_dense.build(query_shape)
        self.key_dense.build(key_shape)
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        if self.normalize:
            self.g = self.add_weight(
                name="g", shape=(), initializer=keras.initializers.Constant(self.units**-0.5)
            )
        self.built = True

    def prepare(self, keys):
        return self.key_dense(keys)

    def score(self, query, prepared_keys):
        hidden = ops.tanh(
            ops.expand_dims(self.query_dense(query), 2) + ops.expand_dims(prepared_keys, 1)
        )
        v = ops.cast(self.v, hidden.dtype)
        if self.normalize:
            v = ops.cast(self.g, hidden.dtype) * v / ops.sqrt(ops.sum(ops.square(v)))
        return ops.einsum("bqkd,d->bqk", hidden, v)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "normalize": self.normalize})
        return config
