"""Multiplicative (Luong) attention: dot, general and concat scores."""

from __future__ import annotations

import keras
from keras import ops

from zoo.layers.attention import Attention

SCORES = ("dot", "general", "concat")


@keras.saving.register_keras_serializable(package="zoo")
class MultiplicativeAttention(Attention):
    """Global attention of Luong et al. (2015) with its three score functions.

    - `dot`: `q . k` (query and key sizes must match);
    - `general`: `q . (W_a k)`, `W_a k` computed once per memory;
    - `concat`: `v^T tanh(W_a [q; k])`, written as `W_q q + W_k k` so the key
      half is computed once per memory.

    Args:
        score_mode: one of `"dot"`, `"general"`, `"concat"`.
        units: hidden size of the `concat` score; ignored otherwise (the
            `general` projection maps keys to the query size).
        scale: if `True`, scores are multiplied by a learned scalar
            (initialised to 1), which lets the model sharpen or flatten the
            distribution; tensorflow/nmt calls this "scaled Luong".
        dropout: dropout rate on the attention weights.

    Call arguments: see `zoo.layers.Attention`.

    Example:

    >>> layer = MultiplicativeAttention("general")
    >>> layer(query=np.zeros((2, 3, 16)), value=np.ones((2, 5, 12))).shape
    (2, 3, 12)

    References:
        - Luong, Pham, Manning. Effective Approaches to Attention-based
          Neural Machine Translation. EMNLP 2015.
    """

    def __init__(
        self, score_mode: str = "general", units: int | None = None, scale: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        if score_mode not in SCORES:
            raise ValueError(
                f"`score_mode` must be one of {SCORES}. Received: score_mode={score_mode!r}"
            )
        if score_mode == "concat" and (not isinstance(units, int) or units <= 0):
            raise ValueError(
                f"`units` must be a positive integer for score_mode='concat'. Received: units={units}"
            )
        self.score_mode = score_mode
        self.units = units
        self.scale = scale

    def build(self, query_shape, value_shape=None, key_shape=None):
        key_shape = key_shape or value_shape
        query_dim, key_dim = query_shape[-1], key_shape[-1]
        if self.score_mode == "dot" and query_dim != key_dim:
            raise ValueError(
                "score_mode='dot' needs queries and keys of the same size. "
                f"Received: query size {query_dim}, key size {key_dim}"
            )
        if self.score_mode == "general":
            self.key_dense = keras.layers.Dense(
                query_dim, use_bias=False, name="key_dense", dtype=self.dtype_policy
            )
            self.key_dense.build(key_shape)
        elif self.score_mode == "concat":
            self.query_dense = keras.layers.Dense(
                self.units, use_bias=False, name="query_dense", dtype=self.dtype_policy
            )
            self.key_dense = keras.layers.Dense(
                self.units, use_bias=True, name="key_dense", dtype=self.dtype_policy
            )
            self.query_dense.build(query_shape)
            self.key_dense.build(key_shape)
            self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        if self.scale:
            self.scale_weight = self.add_weight(name="scale", shape=(), initializer="ones")
        self.built = True

    def prepare(self, keys):
        if self.score_mode == "dot":
            return keys
        return self.key_dense(keys)

    def score(self, query, prepared_keys):
        if self.score_mode == "concat":
            hidden = ops.tanh(
                ops.expand_dims(self.query_dense(query), 2) + ops.expand_dims(prepared_keys, 1)
            )
            scores = ops.einsum("bqkd,d->bqk", hidden, ops.cast(self.v, hidden.dtype))
        else:
            scores = ops.matmul(
                query, ops.transpose(ops.cast(prepared_keys, query.dtype), (0, 2, 1))
            )
        if self.scale:
            scores = scores * ops.cast(self.scale_weight, scores.dtype)
        return scores

    def get_config(self):
        config = super().get_config()
        config.update({"score_mode": self.score_mode, "units": self.units, "scale": self.scale})
        return config
