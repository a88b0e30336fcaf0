"""The base class of every attention layer in the zoo.

The base class owns what all attention variants share: masking, the softmax,
dropout on the weights and the weighted sum of the values. A variant only
says how a query is scored against the keys (`score`) and what can be
computed once per memory rather than once per query (`prepare`).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class Attention(keras.layers.Layer):
    """Base class of attention layers: masked softmax over keys, weighted sum of values.

    Subclasses override `score(query, prepared_keys)`, returning raw scores of
    shape `(batch_size, Tq, Tk)`, and may override `prepare(keys)` to project
    the keys once per memory. A decoder that attends at every output step
    calls `prepare` once per source sequence and then `attend` at each step,
    so the key projection is not recomputed `Tq` times.

    Args:
        dropout: float in `[0, 1)`, dropout rate applied to the attention
            weights during training. Defaults to `0.0`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`...).

    Call arguments:
        query: `(batch_size, Tq, Dq)`, or `(batch_size, Dq)` for a single query
            (the output then has no `Tq` axis).
        value: `(batch_size, Tk, Dv)`, the memory that is averaged.
        key: `(batch_size, Tk, Dk)`, optional; defaults to `value`.
        mask: boolean `(batch_size, Tk)`, optional. `False` marks padding:
            those keys get exactly zero weight. A query whose keys are all
            masked gets all-zero weights and a zero context.
        return_attention_scores: if `True`, return `(context, weights)`.
        training: Python bool, whether dropout is active.

    Returns:
        context `(batch_size, Tq, Dv)` (or `(batch_size, Dv)`), and the
        weights `(batch_size, Tq, Tk)` (or `(batch_size, Tk)`) when asked.
    """

    def __init__(self, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.dropout = dropout
        self.supports_masking = True
        self._dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    # --- hooks for subclasses -------------------------------------------------
    def prepare(self, keys):
        """Computes what depends on the keys alone. Called once per memory."""
        return keys

    def score(self, query, prepared_keys):
        """Raw scores `(batch_size, Tq, Tk)` of 3-D queries against prepared keys."""
        raise NotImplementedError

    # --- shared machinery -----------------------------------------------------
    def attend(self, query, prepared_keys, value, mask=None, training=None):
        """Attends with already prepared keys. Returns `(context, weights)`.

        This is the per-step entry point of decoders: `prepared_keys` is the
        output of `prepare(key)`, computed once per memory.
        """
        single_query = len(query.shape) == 2
        if single_query:
            query = ops.expand_dims(query, 1)
        scores = self.score(query, prepared_keys)
        weights = self._masked_softmax(scores, mask)
        dropped = self._dropout_layer(weights, training=training)
        context = ops.matmul(dropped, ops.cast(value, dropped.dtype))
        if single_query:
            context = ops.squeeze(context, 1)
            weights = ops.squeeze(weights, 1)
        return context, weights

    def _masked_softmax(self, scores, mask):
        # Softmax in float32: bf16/f16 exponentials lose the small weights.
        scores = ops.cast(scores, "float32")
        if mask is None:
            return ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        mask = ops.cast(ops.expand_dims(mask, -2), "float32")  # (B, 1, Tk)
        # 1e9 is safe in float32; the scores are float32 here whatever the policy.
        scores = scores - 1e9 * (1.0 - mask)
        weights = ops.softmax(scores, axis=-1) * mask
        # Exactly zero on padding, and all zeros when every key is masked.
        return ops.cast(weights, self.compute_dtype)

    def call(
        self,
        query,
        value,
        key=None,
        mask=None,
        return_attention_scores: bool = False,
        training=None,
    ):
        key = value if key is None else key
        context, weights = self.attend(
            query, self.prepare(key), value, mask=mask, training=training
        )
        if return_attention_scores:
            return context, weights
        return context

    def compute_mask(self, query, value=None, key=None, mask=None, **kwargs):
        return None

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return config
