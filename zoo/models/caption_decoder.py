"""LSTM caption decoder with soft attention over an image grid (Show, Attend and Tell).

Like `AttentionDecoder`, the decoder is written as one step function: the same
`step_embedded` runs under `keras.ops.scan` for teacher-forced training and,
through `step`, inside the samplers for greedy and beam search.
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.layers import AdditiveAttention, MultiplicativeAttention


@keras.saving.register_keras_serializable(package="zoo")
class CaptionDecoder(keras.layers.Layer):
    """The LSTM decoder of Xu et al. (2015) with soft (deterministic) attention.

    At step `t`, with `h_{t-1}, c_{t-1}` the LSTM state and `y_{t-1}` the
    previous word:

    - attention (section 4.2): `alpha_t = softmax(v^T tanh(W h_{t-1} + U a_i + b))`
      over the `L` annotation vectors `a_i`, queried by the previous hidden
      state, and the context `z_t = sum_i alpha_ti a_i` (zoo's
      `AdditiveAttention`; `U a` is computed once per image by
      `prepare_memory`), or with `attention_score="general"` Luong's
      `softmax(h_{t-1}^T W_a a_i)` (`MultiplicativeAttention`, `W_a a` once
      per image);
    - gate (section 4.2.1, `gate=True`): `z_t <- beta_t * z_t` with the scalar
      `beta_t = sigmoid(f_beta(h_{t-1}))`; this gated context is used
      everywhere below;
    - LSTM input: `[E y_{t-1}; z_t]`, giving `h_t, c_t`;
    - deep output (Eq. 7): `p(y_t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z z_t))`,
      where the first term is kept when `output_previous_word` and the last
      when `output_context`; dropout is applied to the vector before `L_o`.

    With `attention_query="current"` the step is Lu et al.'s (2017) spatial
    attention model instead: the LSTM reads `[E y_{t-1}; mean_i a_i]` first
    (zeros for the mean with `init_from_image=False`), giving `h_t, c_t`,
    and the attention is queried by that current `h_t` (so is the gate), so
    the word about to be written steers where the step looks, and `z_t`
    goes only to the deep output, not the recurrence. With `sentinel=True`
    (and `"current"`) the step also has Lu et al.'s visual sentinel, a
    vector `s_t = sigmoid(W_x x_t + W_h h_{t-1}) * tanh(c_t)` made from what
    the LSTM remembers, scored as one more location: the softmax runs over
    the `L` cells and the sentinel, and the sentinel's weight (Lu et al.'s
    `beta_t`, not the gate's) is the share of the step taken from the
    language model rather than the image, so a word like "a" or "of" need
    not look anywhere. The context is then `sum_i alpha_ti a_i + beta_t W_v
    s_t` (`W_v` maps the sentinel into the annotation space), the gate
    applies to it as a whole, and the attention returned is the `alpha_ti`
    of the cells, which sum to `1 - beta_t`.

    The initial state (section 3.1.2) is `h_0 = tanh(f_init_h(mean_i a_i))`,
    `c_0 = tanh(f_init_c(mean_i a_i))`. With `init_from_image=False` it is
    the same layers' learned constant, `tanh(f_init(0))`: the image reaches
    the decoder only through its attention.

    Args:
        vocab_size: caption vocabulary size (id 0 is padding).
        embedding_dim: size `m` of the word embeddings `E y` and of the deep
            output vector.
        units: LSTM units `n`.
        attention_units: hidden size of the additive attention.
        attention_score: `"additive"` (the paper's `v^T tanh(W h + U a + b)`)
            or `"general"` (Luong et al. 2015's `h^T W_a a`, no `tanh` to
            saturate; `attention_units` is then unused). Defaults to
            `"additive"`.
        dropout: dropout rate on the deep output vector, before `L_o`.
        gate: whether the context is scaled by the gating scalar `beta_t`.
        output_previous_word: whether `E y_{t-1}` enters the deep output.
        output_context: whether `L_z z_t` enters the deep output.
        output_activation: activation applied to the deep output vector
            before dropout and `L_o`. `None` (default) is Eq. 7 of the paper;
            `"tanh"` is what the authors' Theano code does.
        init_from_image: whether the initial state is computed from the mean
            annotation vector (the paper) or is a learned constant, the same
            for every image; with `attention_query="current"`, `False` also
            gives the LSTM zeros where it would read the mean annotation
            vector, so that the image reaches the words only through the
            attention. Defaults to `True`.

    Call arguments:
        tokens_in: int `(batch_size, T)`, the caption shifted right (starting
            with the start token); 0 is padding. Padding steps are computed
            like any other; mask them in the loss.
        memory: the dict returned by `prepare_memory`.
        training: Python bool, whether dropout is active.

    Returns:
        `(logits, attention)`: float32 logits `(batch_size, T, vocab_size)` and
        the attention weights `(batch_size, T, L)` of every step (each row sums
        to 1 over `L`, or to `1 - beta_t` with the sentinel).

    The state of a step is the tuple `(h, c)`, each `(batch_size, units)`. The
    memory is a dict `{"values": a (batch_size, L, D), "keys": U a
    (batch_size, L, attention_units)}` (`W_a a`, `(batch_size, L, units)`,
    with the general score). The decoder builds itself on the first
    `prepare_memory` call, or call `build((batch_size, L, D))`.

    Example:

    ```python
    decoder = CaptionDecoder(vocab_size=100, embedding_dim=32, units=64)
    memory = decoder.prepare_memory(annotations)  # (batch_size, 49, 512)
    logits, attention = decoder(tokens_in, memory)  # (batch_size, T, 100), (batch_size, T, 49)
    state = decoder.initial_state(memory)
    logits, state, attention = decoder.step(start_tokens, state, memory)
    ```

    References:
        - Xu et al. 2015, [Show, Attend and Tell: Neural Image Caption
          Generation with Visual Attention](https://arxiv.org/abs/1502.03044).
        - Lu et al. 2017, [Knowing When to Look: Adaptive Attention via A
          Visual Sentinel for Image Captioning](https://arxiv.org/abs/1612.01887)
          (the spatial attention model, section 2.2).
    """

    QUERIES = ("previous", "current")
    SCORES = ("additive", "general")

    def __init__(
        self,
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention_score not in self.SCORES:
            raise ValueError(
                f"`attention_score` must be one of {self.SCORES}. "
                f"Received: attention_score={attention_score!r}"
            )
        if attention_query not in self.QUERIES:
            raise ValueError(
                f"`attention_query` must be one of {self.QUERIES}. "
                f"Received: attention_query={attention_query!r}"
            )
        if sentinel and attention_query != "current":
            raise ValueError(
                "The visual sentinel (`sentinel=True`) is scored against the current state: it "
                f"needs attention_query='current'. Received: attention_query={attention_query!r}"
            )
        for name, value in (
            ("vocab_size", vocab_size),
            ("embedding_dim", embedding_dim),
            ("units", units),
            ("attention_units", attention_units),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
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
        self._activation = keras.activations.get(output_activation)

        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, name="embedding", dtype=policy
        )
        self.init_h = keras.layers.Dense(units, activation="tanh", name="init_h", dtype=policy)
        self.init_c = keras.layers.Dense(units, activation="tanh", name="init_c", dtype=policy)
        if attention_score == "additive":
            self.attention_layer = AdditiveAttention(
                attention_units, name="attention", dtype=policy
            )
        else:
            self.attention_layer = MultiplicativeAttention(
                "general", name="attention", dtype=policy
            )
        self.beta_dense = (
            keras.layers.Dense(1, activation="sigmoid", name="beta_dense", dtype=policy)
            if gate
            else None
        )
        self.cell = keras.layers.LSTMCell(units, name="lstm_cell", dtype=policy)
        if sentinel:
            self.sentinel_gate = keras.layers.Dense(
                units, activation="sigmoid", name="sentinel_gate", dtype=policy
            )
            # Into the space of the scorer's keys: U a, or W_a a (the query's size).
            self.sentinel_key = keras.layers.Dense(
                attention_units if attention_score == "additive" else units,
                name="sentinel_key",
                dtype=policy,
            )
            self.sentinel_value = None  # maps into the annotation space: made in `build`
        self.hidden_to_output = keras.layers.Dense(
            embedding_dim, name="hidden_to_output", dtype=policy
        )
        self.context_to_output = (
            keras.layers.Dense(
                embedding_dim, use_bias=False, name="context_to_output", dtype=policy
            )
            if output_context
            else None
        )
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout", dtype=policy)
        self.logits_dense = keras.layers.Dense(vocab_size, name="logits_dense", dtype=policy)

    def build(self, features_shape):
        """`features_shape`: `(batch_size, L, D)` of the annotation vectors."""
        features_shape = tuple(features_shape)
        if len(features_shape) != 3 or features_shape[-1] is None:
            raise ValueError(
                "`CaptionDecoder` is built from the annotation vectors' shape "
                f"(batch_size, L, D) with D known. Received: features_shape={features_shape}"
            )
        batch, _, feature_dim = features_shape
        self.embedding.build((batch, None))
        self.init_h.build((batch, feature_dim))
        self.init_c.build((batch, feature_dim))
        self.attention_layer.build((batch, None, self.units), features_shape)
        if self.beta_dense is not None:
            self.beta_dense.build((batch, self.units))
        self.cell.build((batch, self.embedding_dim + feature_dim))
        if self.sentinel:
            self.sentinel_gate.build((batch, self.embedding_dim + feature_dim + self.units))
            self.sentinel_key.build((batch, self.units))
            self.sentinel_value = keras.layers.Dense(
                feature_dim, use_bias=False, name="sentinel_value", dtype=self.dtype_policy
            )
            self.sentinel_value.build((batch, self.units))
        self.hidden_to_output.build((batch, self.units))
        if self.context_to_output is not None:
            self.context_to_output.build((batch, feature_dim))
        self.logits_dense.build((batch, None, self.embedding_dim))
        self.built = True

    # --- pieces used by training and by the samplers ---------------------------
    def prepare_memory(self, features) -> dict:
        """Annotation vectors `(batch_size, L, D)` -> the memory dict, keys projected once."""
        if not self.built:
            self.build(features.shape)
        features = ops.cast(features, self.compute_dtype)
        return {"values": features, "keys": self.attention_layer.prepare(features)}

    def initial_state(self, memory: dict):
        """`(h_0, c_0)` from the mean annotation vector (section 3.1.2), or the learned constant."""
        mean = ops.mean(memory["values"], axis=1)
        if not self.init_from_image:
            mean = ops.zeros_like(mean)
        return (self.init_h(mean), self.init_c(mean))

    def attend(self, query, memory: dict, training=None):
        """The gated context `beta z` `(N, D)` (just `z` without the gate) and attention `(N, L)`."""
        context, attention = self.attention_layer.attend(
            query, memory["keys"], memory["values"], training=training
        )
        if self.beta_dense is not None:
            context = self.beta_dense(query) * context
        return context, attention

    def attend_with_sentinel(self, query, sentinel, memory: dict):
        """Attention over the cells and the sentinel `(N, units)` (Lu et al. 2017, Eq. 11-12).

        Returns the gated context `sum_i alpha_i a_i + beta W_v s` `(N, D)`
        and the cells' weights `alpha` `(N, L)`, which sum to `1 - beta`.
        """
        keys = ops.concatenate(
            [memory["keys"], ops.expand_dims(self.sentinel_key(sentinel), 1)], axis=1
        )
        scores = self.attention_layer.score(ops.expand_dims(query, 1), keys)[:, 0]
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        weights = ops.cast(weights, self.compute_dtype)
        cells, beta = weights[:, :-1], weights[:, -1:]
        values = memory["values"]
        context = ops.einsum("bl,bld->bd", cells, ops.cast(values, cells.dtype))
        context = context + beta * self.sentinel_value(sentinel)
        if self.beta_dense is not None:
            context = self.beta_dense(query) * context
        return context, cells

    def lstm_input(self, embedded, h_prev, memory: dict, training=None):
        """The LSTM input of one step.

        With the paper's `attention_query="previous"` it is `[E y_{t-1};
        beta_t z_t]`, and returns `(lstm_input (N, embedding_dim + D), context
        (N, D), attention (N, L))`, where `context` is the gated `beta_t z_t`
        (just `z_t` without the gate). With `"current"` it is `[E y_{t-1};
        mean_i a_i]`, and `context` and `attention` are `None` (the step
        attends after the LSTM).
        """
        if self.attention_query == "current":
            mean = ops.mean(memory["values"], axis=1)
            if not self.init_from_image:
                mean = ops.zeros_like(mean)
            return ops.concatenate([embedded, mean], -1), None, None
        context, attention = self.attend(h_prev, memory, training=training)
        return ops.concatenate([embedded, context], -1), context, attention

    def step_embedded(self, embedded, state, memory: dict, training=None):
        """One decoder step from the embedded previous word `(N, embedding_dim)`.

        Returns `(output, new_state, attention)`: output `(N, embedding_dim)`
        is the deep output vector before dropout and `L_o` (`logits_dense`),
        attention `(N, L)`.
        """
        h_prev, c_prev = state
        x, context, attention = self.lstm_input(embedded, h_prev, memory, training=training)
        h, (h, c) = self.cell(x, [h_prev, c_prev], training=training)
        if self.sentinel:
            sentinel = self.sentinel_gate(ops.concatenate([x, h_prev], -1)) * ops.tanh(c)
            context, attention = self.attend_with_sentinel(h, sentinel, memory)
        elif context is None:
            context, attention = self.attend(h, memory, training=training)
        output = self.hidden_to_output(h)
        if self.output_previous_word:
            output = output + embedded
        if self.context_to_output is not None:
            output = output + self.context_to_output(context)
        output = self._activation(output)
        return output, (h, c), ops.cast(attention, self.compute_dtype)

    def step(self, tokens, state, memory: dict):
        """The sampler contract: `(tokens (N,), state, memory) -> (logits, state, attention)`.

        Logits are float32 `(N, vocab_size)`, attention `(N, L)`.
        """
        output, state, attention = self.step_embedded(
            self.embedding(tokens), state, memory, training=False
        )
        return ops.cast(self.logits_dense(output), "float32"), state, attention

    def call(self, tokens_in, memory: dict, training=None):
        embedded = ops.transpose(self.embedding(tokens_in), (1, 0, 2))  # time-major for scan
        h0, c0 = self.initial_state(memory)
        batch = ops.shape(h0)[0]
        output0 = ops.zeros((batch, self.embedding_dim), dtype=self.compute_dtype)
        attention0 = ops.zeros(ops.shape(memory["values"])[:2], dtype=self.compute_dtype)

        def body(carry, x):
            h, c = carry[:2]
            output, (h, c), attention = self.step_embedded(x, (h, c), memory, training=training)
            new_carry = (h, c, output, attention)
            # scan (TF backend) keeps only outputs shaped exactly like the carry.
            return new_carry, new_carry

        _, (_, _, outputs, attention) = ops.scan(body, (h0, c0, output0, attention0), embedded)
        # The output vector does not feed back into the recurrence, so dropout
        # and L_o run once on all steps after the loop (no random ops in scan).
        outputs = self.dropout_layer(ops.transpose(outputs, (1, 0, 2)), training=training)
        logits = ops.cast(self.logits_dense(outputs), "float32")
        return logits, ops.transpose(attention, (1, 0, 2))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
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
            }
        )
        return config
