"""Encoder-decoder model for sequence to sequence tasks (translation, parsing)."""

from __future__ import annotations

import keras
from keras import ops

from zoo.models.attention_decoder import AttentionDecoder
from zoo.models.rnn_encoder import RNNEncoder


@keras.saving.register_keras_serializable(package="zoo")
class Seq2Seq(keras.Model):
    """BiRNN encoder + attention decoder, trained with `fit`, decoded by the samplers.

    Args:
        source_vocab_size: size of the source vocabulary (0 is padding).
        target_vocab_size: size of the target vocabulary (0 is padding).
        embedding_dim: size of source and target embeddings.
        encoder: dict of `RNNEncoder` arguments (`cell`, `units`, `layers`,
            `dropout`, `bidirectional`).
        decoder: dict of `AttentionDecoder` arguments (`cell`, `units`,
            `layers`, `dropout`, `style`).
        attention: dict with `kind` (`additive | dot | general | concat |
            none`), `units`, `normalize`, `scale`.

    Call arguments:
        inputs: dict with `source` int `(batch_size, S)` and `target_in` int
            `(batch_size, T)` (the target shifted right, starting with the
            start token). 0 is padding in both.

    Returns:
        Logits `(batch_size, T, target_vocab_size)` in float32.

    Example:

    >>> model = Seq2Seq(100, 120, encoder={"units": 32}, decoder={"units": 32},
    ...                 attention={"kind": "additive", "units": 32})
    >>> model({"source": np.ones((2, 7)), "target_in": np.ones((2, 5))}).shape
    (2, 5, 120)
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embedding_dim: int = 128,
        encoder: dict | None = None,
        decoder: dict | None = None,
        attention: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_config = dict(encoder or {})
        self.decoder_config = dict(decoder or {})
        self.attention_config = dict(attention or {})
        # Only what is given: `AttentionDecoder`'s defaults are the one place they live.
        names = {"kind": "attention", "units": "attention_units"}
        attention_args = {names.get(k, k): v for k, v in self.attention_config.items()}
        self.encoder = RNNEncoder(
            source_vocab_size,
            embedding_dim,
            name="encoder",
            dtype=self.dtype_policy,
            **self.encoder_config,
        )
        self.decoder = AttentionDecoder(
            target_vocab_size,
            embedding_dim,
            name="decoder",
            dtype=self.dtype_policy,
            **self.decoder_config,
            **attention_args,
        )

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        self.decoder.build((None, None, self.encoder.output_dim))
        self.built = True

    def encode(self, source, training=None) -> dict:
        """Source ids -> the decoder's memory dict (keys projected once)."""
        encoded = self.encoder(source, training=training)
        return self.decoder.prepare_memory(encoded["values"], encoded["mask"], encoded["summary"])

    def call(self, inputs, training=None):
        logits, _ = self.forward_with_attention(
            inputs["source"], inputs["target_in"], training=training
        )
        return logits

    def forward_with_attention(self, source, target_in, training=None):
        """Teacher-forced logits `(B, T, V)` and attention `(B, T, S)`."""
        memory = self.encode(source, training=training)
        return self.decoder(target_in, memory, training=training)

    def initial_state(self, memory):
        return self.decoder.initial_state(memory)

    def step(self, tokens, state, memory):
        """One decoding step: the samplers' `step_fn`."""
        return self.decoder.step(tokens, state, memory)

    def decoding_step(self, memory):
        """`(step_fn, memory)` to search with: `step`, or a faster equivalent (see the decoder's)."""
        return self.decoder.decoding_step(memory)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "source_vocab_size": self.source_vocab_size,
                "target_vocab_size": self.target_vocab_size,
                "embedding_dim": self.embedding_dim,
                "encoder": self.encoder_config,
                "decoder": self.decoder_config,
                "attention": self.attention_config,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="zoo")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Token cross-entropy averaged over real tokens (label 0 is padding).

    Padding does not dilute the loss: the mean is over real target tokens of
    the batch, whatever the padded length of the bucket.
    """

    def __init__(self, label_smoothing: float = 0.0, name="masked_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        if self.label_smoothing:
            onehot = ops.one_hot(y_true, ops.shape(y_pred)[-1])
            loss = keras.losses.categorical_crossentropy(
                onehot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
            )
        else:
            loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        # The base class averages over batch*time; rescale so the result is
        # the mean over real tokens.
        total = ops.cast(ops.size(mask), "float32")
        return loss * mask * total / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="zoo")
class MaskedAccuracy(keras.metrics.Mean):
    """Share of real target tokens (label != 0) whose argmax is right."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.not_equal(y_true, 0)
        correct = ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true)
        return super().update_state(
            ops.cast(correct, "float32"), sample_weight=ops.cast(mask, "float32")
        )
