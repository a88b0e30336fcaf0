"""Image captioning model of Show, Attend and Tell: CNN encoder + attention LSTM decoder."""

from __future__ import annotations

import keras
from keras import ops

from zoo.models.caption_decoder import CaptionDecoder


def _with_mask(alpha, mask):
    """Attention `(B, T, L)` and its real-step mask `(B, T)` (all real when None), as float32."""
    alpha = ops.cast(alpha, "float32")
    if mask is None:
        return alpha, ops.ones(ops.shape(alpha)[:2], dtype="float32")
    return alpha, ops.cast(mask, "float32")


def doubly_stochastic_penalty(alpha, mask=None, weight: float = 1.0):
    """The doubly stochastic attention penalty of Xu et al. (2015), Eq. 14.

    `weight * sum_b sum_i (1 - sum_t mask_bt * alpha_bti)^2 / sum_bt mask_bt`:
    for each image, the squared gap between 1 and the total attention each of
    the `L` locations received over the real (unmasked) steps, summed over
    locations and images, then divided by the number of real steps of the
    batch.

    That divisor is the one `MaskedSparseCrossentropy` uses to turn the summed
    negative log-likelihood into a per-token mean, so `cross-entropy + penalty`
    is the paper's objective (NLL summed over words + `lambda` times the
    penalty, per caption, summed over the batch) divided by one common
    constant: `weight` has the meaning of the paper's `lambda` whatever the
    batch size and caption lengths.

    Args:
        alpha: attention weights `(batch_size, T, L)`.
        mask: `(batch_size, T)`, true (or 1) on real steps; `None` means every
            step is real. Masked steps count neither in the sum over `t` nor
            in the divisor, and a row without any real step (an all-padding
            row) adds nothing.
        weight: the paper's `lambda`.

    Returns:
        A float32 scalar (0 when the batch has no real step).
    """
    alpha, mask = _with_mask(alpha, mask)
    coverage = ops.sum(alpha * ops.expand_dims(mask, -1), axis=1)  # (batch_size, L)
    total = ops.sum(ops.square(1.0 - coverage) * ops.max(mask, axis=1, keepdims=True))
    return weight * total / ops.maximum(ops.sum(mask), 1.0)


def coverage_loss(alpha, mask=None, weight: float = 1.0):
    """The coverage loss of See et al. (2017), Eq. 12, over attention to image locations.

    `weight * sum_b sum_t mask_bt * sum_i min(alpha_bti, c_bti) / sum_bt mask_bt`,
    where `c_bt = sum_{t' < t} mask_bt' * alpha_bt'` is the attention the
    locations received at the earlier real steps: a step pays for looking
    again where the caption already looked. Unlike the doubly stochastic
    penalty it does not ask every location to be looked at (with fewer words
    than locations, that asks for flat attention); it only stops the
    attention from settling on the same few locations at every step.
    Divided by the real steps of the batch, as the cross-entropy is.

    Args:
        alpha: attention weights `(batch_size, T, L)`.
        mask: `(batch_size, T)`, true (or 1) on real steps; `None`: all real.
        weight: the loss's weight (See et al. use 1).

    Returns:
        A float32 scalar (0 when the batch has no real step).
    """
    alpha, mask = _with_mask(alpha, mask)
    seen = alpha * ops.expand_dims(mask, -1)
    before = ops.cumsum(seen, axis=1) - seen  # what the earlier real steps attended
    total = ops.sum(ops.minimum(seen, before))
    return weight * total / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="zoo")
class Captioner(keras.Model):
    """CNN encoder + LSTM decoder with soft attention (Xu et al. 2015).

    The encoder maps images to a grid of annotation vectors; `CaptionDecoder`
    generates the caption while attending over them. The model takes either
    images or precomputed encoder features, so the features of a frozen
    encoder can be cached and the same model trained on them.

    During training (`training=True`), the doubly stochastic attention penalty
    (Eq. 14) is added with `add_loss`, so `fit` minimises
    `MaskedSparseCrossentropy + doubly_stochastic_penalty(attention, mask,
    doubly_stochastic)`: see `doubly_stochastic_penalty` for its
    normalisation (the paper's objective divided by the number of real
    tokens in the batch). The real steps are those where `caption_in` is not
    padding, which are the real steps of the target as well when, as in
    `zoo.data.seq2seq_dataset`, each caption `[START] w_1 .. w_n [END]` is
    sliced into `caption_in = [START] w_1 .. w_n` and the target
    `w_1 .. w_n [END]` before padding (slicing a padded batch would leave
    `[END]` in the `caption_in` of short captions, and count one padding
    step). The penalty is not part of evaluation losses (`training=False`).

    Args:
        encoder: a Keras layer mapping images `(batch_size, S, S', 3)` to
            annotation vectors `(batch_size, L, D)`, e.g.
            `zoo.models.cnn_encoder.CNNEncoder`; `None` for a model that only
            takes features. It is saved with the model (it must be
            serializable). When the model is built from features alone, an
            unbuilt encoder is built for images of unknown size
            `(None, None, None, 3)`, so its weights are saved too.
        vocab_size: caption vocabulary size (0 is padding).
        embedding_dim: word embedding size (and deep output size).
        units: LSTM units.
        attention_units: hidden size of the additive attention.
        attention_score: `"additive"` (the paper) or `"general"` (Luong's
            `h^T W_a a`); see `CaptionDecoder`.
        dropout: dropout rate before the output layer.
        gate: the `beta` gate on the context (section 4.2.1).
        output_previous_word: `E y_{t-1}` in the deep output (Eq. 7).
        output_context: `L_z z_t` in the deep output (Eq. 7).
        output_activation: activation of the deep output vector (`None`:
            Eq. 7; `"tanh"`: the authors' code).
        init_from_image: the decoder's initial state from the mean
            annotation vector (the paper), or a learned constant (the image
            then reaches the decoder only through attention).
        attention_query: `"previous"` (the paper: the attention reads
            `h_{t-1}`) or `"current"` (Lu et al. 2017: it reads `h_t`, after
            the LSTM step); see `CaptionDecoder`.
        sentinel: Lu et al.'s visual sentinel, a location the attention can
            choose instead of the image (needs `attention_query="current"`).
            The penalty and the coverage loss then read the cells' weights
            divided by their sum: where on the image a step looks, not how
            much (with the cells' own weights the penalty would push the
            sentinel's share to zero).
        doubly_stochastic: the penalty weight `lambda` (0 disables it).
            Defaults to 1, the paper's value.
        coverage_loss: the weight of See et al.'s coverage loss
            (`coverage_loss`), added in training like the penalty; 0 (the
            default) disables it.

    Call arguments:
        inputs: dict with `caption_in` int `(batch_size, T)` (the caption
            shifted right, starting with the start token; 0 is padding) and
            either `image` float `(batch_size, S, S', 3)` or `features` float
            `(batch_size, L, D)`.
        training: Python bool.

    Returns:
        Logits `(batch_size, T, vocab_size)` in float32.

    Example:

    ```python
    model = Captioner(CNNEncoder("small", grid_size=4), vocab_size=100, units=64)
    # jit_compile=False: XLA cannot compile the decoder's scan (KERAS3-NOTES).
    model.compile(optimizer="adam", loss=MaskedSparseCrossentropy(),
                  metrics=[MaskedAccuracy()], jit_compile=False)
    model.fit({"image": images, "caption_in": caption_in}, caption_out)
    memory = model.encode(images)
    out = greedy_search(model.step, model.initial_state(memory), memory,
                        batch_size=len(images), start_id=2, end_id=3, max_length=20)
    ```

    References:
        Xu et al. 2015, [Show, Attend and Tell: Neural Image Caption Generation
        with Visual Attention](https://arxiv.org/abs/1502.03044).
    """

    def __init__(
        self,
        encoder: keras.layers.Layer | None,
        vocab_size: int,
        embedding_dim: int = 128,
        units: int = 256,
        attention_units: int = 256,
        dropout: float = 0.0,
        gate: bool = True,
        output_previous_word: bool = True,
        output_context: bool = True,
        output_activation: str | None = None,
        init_from_image: bool = True,
        attention_query: str = "previous",
        sentinel: bool = False,
        attention_score: str = "additive",
        doubly_stochastic: float = 1.0,
        coverage_loss: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if doubly_stochastic < 0:
            raise ValueError(
                f"`doubly_stochastic` must be >= 0. Received: doubly_stochastic={doubly_stochastic}"
            )
        if coverage_loss < 0:
            raise ValueError(
                f"`coverage_loss` must be >= 0. Received: coverage_loss={coverage_loss}"
            )
        self.encoder = encoder
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.attention_units = attention_units
        self.dropout = dropout
        self.gate = gate
        self.output_previous_word = output_previous_word
        self.output_context = output_context
        self.output_activation = output_activation
        self.init_from_image = init_from_image
        self.attention_query = attention_query
        self.sentinel = sentinel
        self.attention_score = attention_score
        self.doubly_stochastic = doubly_stochastic
        self.coverage_loss = coverage_loss
        self.decoder = CaptionDecoder(
            vocab_size,
            embedding_dim=embedding_dim,
            units=units,
            attention_units=attention_units,
            dropout=dropout,
            gate=gate,
            output_previous_word=output_previous_word,
            output_context=output_context,
            output_activation=output_activation,
            init_from_image=init_from_image,
            attention_query=attention_query,
            sentinel=sentinel,
            attention_score=attention_score,
            name="decoder",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        """`input_shape`: the dict of input shapes (`image` or `features`, `caption_in`)."""
        if not isinstance(input_shape, dict) or not ({"image", "features"} & set(input_shape)):
            raise ValueError(
                "`Captioner` inputs are a dict with 'image' or 'features' and 'caption_in'. "
                f"Received: input_shape={input_shape}"
            )
        image_shape = input_shape.get("image")
        # The batch size is no part of any weight shape; keep it out of build configs.
        image_shape = (None, *image_shape[1:]) if image_shape else (None, None, None, 3)
        if self.encoder is not None and not self.encoder.built:
            self.encoder.build(image_shape)
        if "features" in input_shape:
            features_shape = tuple(input_shape["features"])
            if self.encoder is not None:
                encoded_dim = self._encoder_output_dim(image_shape)
                if encoded_dim is not None and encoded_dim != features_shape[-1]:
                    raise ValueError(
                        f"The features must have the encoder's depth {encoded_dim}. "
                        f"Received: features shape={features_shape}"
                    )
        else:
            features_shape = (None, None, self._encoder_output_dim(image_shape))
        if not self.decoder.built:  # `encode` may have built it already
            self.decoder.build(features_shape)
        self.built = True

    def _encoder_output_dim(self, image_shape):
        if hasattr(self.encoder, "output_dim"):
            return self.encoder.output_dim
        return self.encoder.compute_output_spec(keras.KerasTensor(image_shape)).shape[-1]

    def encode(self, images_or_features, training=None) -> dict:
        """Images `(B, S, S', 3)` or features `(B, L, D)` (or an inputs dict) -> memory dict.

        The memory holds the annotation vectors and their attention keys,
        computed once per image; pass it to `initial_state` and `step`.
        """
        if isinstance(images_or_features, dict):
            if "features" in images_or_features:
                features = images_or_features["features"]
            else:
                features = self._encode_images(images_or_features["image"], training)
        else:
            x = images_or_features
            rank = len(x.shape)
            if rank == 4:
                features = self._encode_images(x, training)
            elif rank == 3:
                features = x
            else:
                raise ValueError(
                    "Expected images (batch_size, S, S, 3) or features (batch_size, L, D). "
                    f"Received: shape={tuple(x.shape)}"
                )
        return self.decoder.prepare_memory(features)

    def _encode_images(self, images, training):
        if self.encoder is None:
            raise ValueError(
                "This Captioner has no encoder: pass precomputed 'features' (batch_size, L, D)."
            )
        return self.encoder(images, training=training)

    def initial_state(self, memory: dict):
        """The decoder state `(h_0, c_0)` for `memory`."""
        return self.decoder.initial_state(memory)

    def step(self, tokens, state, memory: dict):
        """One decoding step, the samplers' `step_fn`: `-> (logits (N, V), state, attention (N, L))`."""
        return self.decoder.step(tokens, state, memory)

    def forward_with_attention(self, inputs: dict, training=None):
        """Teacher-forced logits `(B, T, V)` float32 and attention `(B, T, L)`."""
        memory = self.encode(inputs, training=training)
        return self.decoder(inputs["caption_in"], memory, training=training)

    def call(self, inputs, training=None):
        logits, attention = self.forward_with_attention(inputs, training=training)
        mask = ops.not_equal(inputs["caption_in"], 0)
        if self.sentinel:
            # The penalties ask where on the image a caption looks, not how much
            # it looks: the cells' weights over their sum (1 - beta).
            total = ops.sum(ops.cast(attention, "float32"), axis=-1, keepdims=True)
            attention = ops.cast(attention, "float32") / ops.maximum(total, 1e-6)
        if training and self.doubly_stochastic > 0:
            self.add_loss(doubly_stochastic_penalty(attention, mask, self.doubly_stochastic))
        if training and self.coverage_loss > 0:
            self.add_loss(coverage_loss(attention, mask, self.coverage_loss))
        return logits

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "attention_units": self.attention_units,
                "dropout": self.dropout,
                "gate": self.gate,
                "output_previous_word": self.output_previous_word,
                "output_context": self.output_context,
                "output_activation": self.output_activation,
                "init_from_image": self.init_from_image,
                "attention_query": self.attention_query,
                "sentinel": self.sentinel,
                "attention_score": self.attention_score,
                "doubly_stochastic": self.doubly_stochastic,
                "coverage_loss": self.coverage_loss,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"], custom_objects=custom_objects
        )
        return cls(**config)
