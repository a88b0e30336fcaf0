"""RNN decoder with attention, written as one `step` function.

The same `step` runs under `keras.ops.scan` for teacher-forced training and
inside the samplers for greedy and beam search, so what is trained is what is
decoded.
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.layers import attention_from_config

STYLES = ("luong", "bahdanau")
OUTPUTS = ("tanh", "layernorm")


@keras.saving.register_keras_serializable(package="zoo")
class AttentionDecoder(keras.layers.Layer):
    """Stacked GRU/LSTM decoder attending over an encoder memory.

    Two wirings of the attention, as in the papers:

    - `style="luong"` (Luong et al. 2015, with input feeding): the RNN reads
      `[embedding(y_{t-1}); h~_{t-1}]`, its output `h_t` queries the memory,
      and `h~_t = tanh(W_c [c_t; h_t])` is both the output and the next feed.
    - `style="bahdanau"` (Bahdanau et al. 2015): the previous state `s_{t-1}`
      queries the memory, the RNN reads `[embedding(y_{t-1}); c_t]`, and the
      output is `tanh(W_o [s_t; c_t; embedding(y_{t-1})])` (a deep output).

    With `attention="none"` the decoder is the encoder-decoder baseline the
    papers compare against (Cho et al. 2014): the encoder summary is the only
    context, fed at every step in place of `c_t`.

    Args:
        vocab_size: target vocabulary size (id 0 is padding).
        embedding_dim: size of the target embeddings.
        units: units of each decoder RNN layer and of the output vector.
        cell: `"gru"` or `"lstm"`.
        layers: number of stacked RNN cells.
        dropout: dropout on the inputs of each cell and on the output vector.
        attention: `"additive" | "dot" | "general" | "concat" | "none"`.
        attention_units: hidden size of additive and concat scores.
        normalize: weight-normalised additive attention.
        scale: learned scale of multiplicative scores.
        style: `"luong"` or `"bahdanau"`.
        output: how the output vector is made from its inputs (`[c_t; h_t]`
            for Luong): `"tanh"` is the papers' `tanh(W x)`; `"layernorm"`
            is `LayerNorm(W x)` (Ba et al. 2016), which trains several times
            faster on real text (see the README's ablation: the bounded tanh
            vector makes the vocabulary layer slow to become confident).

    The state of a step is a tuple `(cell_states, feed)`: `cell_states` a
    tuple with one tuple of tensors per layer (`(h,)` for GRU, `(h, c)` for
    LSTM), `feed` the previous output vector `(batch_size, units)`.
    The memory is a dict from `prepare_memory`: `values`, `keys`, `mask`,
    `summary`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        units: int = 256,
        cell: str = "gru",
        layers: int = 1,
        dropout: float = 0.0,
        attention: str = "additive",
        attention_units: int = 256,
        normalize: bool = False,
        scale: bool = False,
        style: str = "luong",
        output: str = "tanh",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output not in OUTPUTS:
            raise ValueError(f"`output` must be one of {OUTPUTS}. Received: output={output!r}")
        if style not in STYLES:
            raise ValueError(f"`style` must be one of {STYLES}. Received: style={style!r}")
        if cell not in ("gru", "lstm"):
            raise ValueError(f"`cell` must be 'gru' or 'lstm'. Received: cell={cell!r}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.layers = layers
        self.dropout = dropout
        self.attention = attention
        self.attention_units = attention_units
        self.normalize = normalize
        self.scale = scale
        self.style = style
        self.output_kind = output

        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, name="embedding", dtype=policy
        )
        cell_class = keras.layers.GRUCell if cell == "gru" else keras.layers.LSTMCell
        self.cells = [
            cell_class(units, name=f"{cell}_cell_{i}", dtype=policy) for i in range(layers)
        ]
        self.attention_layer = attention_from_config(
            attention,
            units=attention_units,
            normalize=normalize,
            scale=scale,
            name="attention",
            dtype=policy,
        )
        self.bridges = [
            keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}", dtype=policy)
            for i in range(layers)
        ]
        self.output_dense = keras.layers.Dense(
            units,
            activation="tanh" if output == "tanh" else None,
            name="output_dense",
            dtype=policy,
        )
        self.output_norm = (
            keras.layers.LayerNormalization(name="output_norm", dtype=policy)
            if output == "layernorm"
            else None
        )
        self.logits_dense = keras.layers.Dense(vocab_size, name="logits_dense", dtype=policy)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=policy)

    @property
    def has_attention(self) -> bool:
        return self.attention_layer is not None

    def build(self, memory_shape):
        """`memory_shape`: `(batch_size, S, D)` of the encoder values."""
        batch, _, memory_dim = memory_shape
        self.embedding.build((batch, None))
        context_dim = memory_dim
        if self.style == "luong" and self.has_attention:
            cell_input = self.embedding_dim + self.units
            output_input = context_dim + self.units
        else:
            cell_input = self.embedding_dim + context_dim
            output_input = self.units + context_dim + self.embedding_dim
        for i, cell in enumerate(self.cells):
            cell.build((batch, cell_input if i == 0 else self.units))
            self.bridges[i].build((batch, memory_dim))
        if self.has_attention:
            query_dim = self.units
            self.attention_layer.build((batch, None, query_dim), tuple(memory_shape))
        self.output_dense.build((batch, output_input))
        if self.output_norm is not None:
            self.output_norm.build((batch, self.units))
        self.logits_dense.build((batch, None, self.units))
        self.built = True

    # --- pieces used by training and by the samplers ---------------------------
    def prepare_memory(self, values, mask, summary) -> dict:
        """Everything the steps read but never change: computed once per source."""
        keys = self.attention_layer.prepare(values) if self.has_attention else values
        return {"values": values, "keys": keys, "mask": mask, "summary": summary}

    def initial_state(self, memory: dict):
        summary = memory["summary"]
        cell_states = []
        for bridge in self.bridges:
            h = bridge(summary)
            cell_states.append((h,) if self.cell == "gru" else (h, ops.zeros_like(h)))
        batch = ops.shape(summary)[0]
        feed = ops.zeros((batch, self.units), dtype=self.compute_dtype)
        return (tuple(cell_states), feed)

    def _run_cells(self, x, cell_states, training):
        new_states = []
        for cell, states in zip(self.cells, cell_states, strict=True):
            x = self.dropout_layer(x, training=training)
            x, states = cell(x, list(states), training=training)
            new_states.append(tuple(states))
        return x, tuple(new_states)

    def step_embedded(self, embedded, state, memory, training=None):
        """One decoder step from an embedded input token.

        Returns `(output, new_state, attention)`: output `(batch_size, units)`
        (apply `logits_dense` for the vocabulary), attention `(batch_size, S)`.
        """
        cell_states, feed = state
        values, mask = memory["values"], memory["mask"]
        if self.style == "luong" and self.has_attention:
            h, cell_states = self._run_cells(
                ops.concatenate([embedded, feed], -1), cell_states, training
            )
            context, attention = self.attention_layer.attend(h, memory["keys"], values, mask=mask)
            output = self._output(ops.concatenate([context, h], -1))
        else:
            if self.has_attention:
                query = cell_states[-1][0]
                context, attention = self.attention_layer.attend(
                    query, memory["keys"], values, mask=mask
                )
            else:
                context = memory["summary"]
                attention = ops.zeros(ops.shape(values)[:2], dtype=self.compute_dtype)
            h, cell_states = self._run_cells(
                ops.concatenate([embedded, context], -1), cell_states, training
            )
            output = self._output(ops.concatenate([h, context, embedded], -1))
        output = self.dropout_layer(output, training=training)
        return output, (cell_states, output), ops.cast(attention, self.compute_dtype)

    def _output(self, x):
        x = self.output_dense(x)
        return x if self.output_norm is None else self.output_norm(x)

    def step(self, tokens, state, memory):
        """The sampler contract: `(tokens (N,), state, memory) -> (logits, state, attention)`."""
        output, state, attention = self.step_embedded(
            self.embedding(tokens), state, memory, training=False
        )
        logits = ops.cast(self.logits_dense(output), "float32")
        return logits, state, attention

    def call(self, target_in, memory: dict, training=None):
        """Teacher forcing over `target_in` `(batch_size, T)`.

        Returns `(logits (batch_size, T, V), attention (batch_size, T, S))`.
        """
        embedded = ops.transpose(self.embedding(target_in), (1, 0, 2))  # time-major for scan
        state = self.initial_state(memory)
        attention0 = ops.zeros(ops.shape(memory["values"])[:2], dtype=self.compute_dtype)

        def body(carry, x):
            state, _ = carry[:2], carry[2]
            output, new_state, attention = self.step_embedded(x, state, memory, training=training)
            del output  # it is new_state[1]
            new_carry = (new_state[0], new_state[1], attention)
            # scan (TF backend) keeps only outputs shaped exactly like the carry.
            return new_carry, new_carry

        _, (_, outputs, attention) = ops.scan(body, (state[0], state[1], attention0), embedded)
        for cell in self.cells:  # see KERAS3-NOTES: cell dropout masks leak across traces
            if hasattr(cell, "reset_dropout_mask"):
                cell.reset_dropout_mask()
                cell.reset_recurrent_dropout_mask()
        logits = self.logits_dense(ops.transpose(outputs, (1, 0, 2)))
        return ops.cast(logits, "float32"), ops.transpose(attention, (1, 0, 2))

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
                "attention": self.attention,
                "attention_units": self.attention_units,
                "normalize": self.normalize,
                "scale": self.scale,
                "style": self.style,
                "output": self.output_kind,
            }
        )
        return config
