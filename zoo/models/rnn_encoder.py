"""Embedding + stacked (bidirectional) RNN encoder."""

from __future__ import annotations

import keras
from keras import ops

CELLS = ("gru", "lstm")


@keras.saving.register_keras_serializable(package="zoo")
class RNNEncoder(keras.layers.Layer):
    """Token ids -> annotation vectors, one per source position.

    Args:
        vocab_size: source vocabulary size; id 0 is padding.
        embedding_dim: size of the token embeddings.
        units: units per direction of each RNN layer.
        cell: `"gru"` or `"lstm"`.
        layers: number of stacked RNN layers.
        dropout: dropout between the embedding and each RNN layer.
        bidirectional: run each layer in both directions and concatenate
            (Bahdanau et al.'s "annotations"). Defaults to `True`.

    Call arguments:
        source: int `(batch_size, S)`, 0 for padding.
        training: Python bool.

    Returns:
        A dict with `values` `(batch_size, S, D)` (D = `units`, doubled when
        bidirectional), `mask` bool `(batch_size, S)` and `summary`
        `(batch_size, D)`: the final state of the top layer (forward and
        backward concatenated), the only context of a model without attention.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        units: int = 256,
        cell: str = "gru",
        layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"`cell` must be one of {CELLS}. Received: cell={cell!r}")
        if layers < 1:
            raise ValueError(f"`layers` must be >= 1. Received: layers={layers}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.layers = layers
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.supports_masking = True
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True, name="embedding", dtype=self.dtype_policy
        )
        rnn_class = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
        self.rnns = []
        for i in range(layers):
            rnn = rnn_class(
                units,
                return_sequences=True,
                return_state=True,
                name=f"{cell}_{i}",
                dtype=self.dtype_policy,
            )
            if bidirectional:
                rnn = keras.layers.Bidirectional(
                    rnn, name=f"bidirectional_{i}", dtype=self.dtype_policy
                )
            self.rnns.append(rnn)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    @property
    def output_dim(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    def build(self, source_shape):
        self.embedding.build(source_shape)
        shape = tuple(source_shape) + (self.embedding_dim,)
        for rnn in self.rnns:
            rnn.build(shape)
            shape = tuple(source_shape) + (self.output_dim,)
        self.built = True

    def call(self, source, training=None):
        mask = ops.not_equal(source, 0)
        x = self.embedding(source)
        summary = None
        for rnn in self.rnns:
            x = self.dropout_layer(x, training=training)
            outputs = rnn(x, mask=mask, training=training)
            x = outputs[0]
            states = outputs[1:]
            if self.bidirectional:
                half = len(states) // 2
                # GRU: [h_fwd, h_bwd]; LSTM: [h_fwd, c_fwd, h_bwd, c_bwd]: keep the h's.
                summary = ops.concatenate([states[0], states[half]], axis=-1)
            else:
                summary = states[0]
        return {"values": x, "mask": mask, "summary": summary}

    def compute_mask(self, source, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "cell": self.cell,
                "layers": self.layers,
                "dropout": self.dropout,
                "bidirectional": self.bidirectional,
            }
        )
        return config
