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
RESERVED_IDS = 4  # [PAD], [UNK], [START], [END]: never a pointer token (padding would move it)
OUTPUTS = ("tanh", "layernorm")
SMALL_VOCABULARY = 1024
"""`decoding_step` tabulates the projected embeddings of vocabularies up to this size."""


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
        pointer_token: for outputs that consume the source one word at a
            time (the `XX` of a linearised tree), the id of that token. The
            decoder then also reads the encoder vector of the word the
            output has reached, a hard pointer that advances each time
            the token is fed back (the deterministic attention of Ma et al.
            2017 on a top-down linearisation, as Liu et al. 2018): the soft
            attention no longer has to find the next word by itself, which
            is what a parser trained on a thousand trees cannot learn.
            `None` (default): no pointer.
        pointer_reversed: the source is fed reversed (its first word is
            the last position before `[END]`), so the pointer walks
            backwards. Past the last word it rests on `[END]`.

    The state of a step is a tuple `(cell_states, feed)`: `cell_states` a
    tuple with one tuple of tensors per layer (`(h,)` for GRU, `(h, c)` for
    LSTM), `feed` the previous output vector `(batch_size, units)`; with a
    pointer, a third element, int32 `(batch_size,)`, counts the pointer
    tokens read so far.
    The memory is a dict from `prepare_memory`: `values`, `keys`, `mask`,
    `summary`.

    References:
        - [Ma et al., 2017](https://doi.org/10.1609/aaai.v31i1.10967),
          Deterministic Attention for Sequence-to-Sequence Constituent Parsing.
        - [Liu et al., 2018](https://doi.org/10.1609/aaai.v32i1.11917),
          Improving Sequence-to-Sequence Constituency Parsing.
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
        pointer_token: int | None = None,
        pointer_reversed: bool = False,
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
        if pointer_token is not None and not RESERVED_IDS <= int(pointer_token) < vocab_size:
            raise ValueError(
                f"`pointer_token` must be a token id from {RESERVED_IDS} (ids below are "
                f"[PAD], [UNK], [START], [END]) to vocab_size={vocab_size} - 1. "
                f"Received: pointer_token={pointer_token!r}"
            )
        self.pointer_token = None if pointer_token is None else int(pointer_token)
        self.pointer_reversed = bool(pointer_reversed)

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

    @property
    def has_pointer(self) -> bool:
        return self.pointer_token is not None

    def build(self, memory_shape):
        """`memory_shape`: `(batch_size, S, D)` of the encoder values."""
        batch, _, memory_dim = memory_shape
        self.embedding.build((batch, None))
        context_dim = memory_dim
        pointed_dim = memory_dim if self.has_pointer else 0
        if self.style == "luong" and self.has_attention:
            cell_input = self.embedding_dim + self.units + pointed_dim
            output_input = context_dim + self.units + pointed_dim
        else:
            cell_input = self.embedding_dim + context_dim + pointed_dim
            output_input = self.units + context_dim + self.embedding_dim + pointed_dim
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
        if self.has_pointer:
            return (tuple(cell_states), feed, ops.zeros((batch,), dtype="int32"))
        return (tuple(cell_states), feed)

    def _pointer_position(self, read, mask):
        """The source position of the word after `read` pointer tokens (same shape as `read`).

        Positions `0..n-1` hold the `n` words (reversed or not), position `n`
        the `[END]` token, where the pointer rests once every word is read.
        """
        n_words = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True) - 1
        if self.pointer_reversed:
            position = ops.where(ops.greater_equal(read, n_words), n_words, n_words - 1 - read)
        else:
            position = ops.minimum(read, n_words)
        return ops.maximum(position, 0)

    def _pointed(self, read, memory):
        """The encoder vectors `(batch_size, T, D)` of the words after `read` `(batch_size, T)` pointer tokens."""
        values = memory["values"]
        position = self._pointer_position(read, memory["mask"])
        one_hot = ops.one_hot(position, ops.shape(values)[1], dtype=values.dtype)
        return ops.matmul(one_hot, values)

    def _is_pointer_token(self, tokens):
        return ops.cast(ops.equal(ops.cast(tokens, "int32"), self.pointer_token), "int32")

    def _run_cells(self, x, cell_states, training):
        new_states = []
        for cell, states in zip(self.cells, cell_states, strict=True):
            x = self.dropout_layer(x, training=training)
            x, states = cell(x, list(states), training=training)
            new_states.append(tuple(states))
        return x, tuple(new_states)

    def step_embedded(self, embedded, state, memory, training=None, pointed=None):
        """One decoder step from an embedded input token.

        `state` is `(cell_states, feed)`; a decoder with a pointer also takes
        `pointed`, the encoder vector `(batch_size, D)` the pointer is on.

        Returns `(output, new_state, attention)`: output `(batch_size, units)`
        (apply `logits_dense` for the vocabulary), attention `(batch_size, S)`.
        """
        cell_states, feed = state
        values, mask = memory["values"], memory["mask"]
        extra = [] if pointed is None else [pointed]
        if self.style == "luong" and self.has_attention:
            h, cell_states = self._run_cells(
                ops.concatenate([embedded, feed, *extra], -1), cell_states, training
            )
            context, attention = self.attention_layer.attend(h, memory["keys"], values, mask=mask)
            output = self._output(ops.concatenate([context, h, *extra], -1))
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
                ops.concatenate([embedded, context, *extra], -1), cell_states, training
            )
            output = self._output(ops.concatenate([h, context, embedded, *extra], -1))
        output = self.dropout_layer(output, training=training)
        return output, (cell_states, output), ops.cast(attention, self.compute_dtype)

    def _output(self, x):
        x = self.output_dense(x)
        return x if self.output_norm is None else self.output_norm(x)

    def step(self, tokens, state, memory):
        """The sampler contract: `(tokens (N,), state, memory) -> (logits, state, attention)`."""
        pointed = None
        if self.has_pointer:
            read = state[2] + self._is_pointer_token(tokens)
            pointed = self._pointed(read[:, None], memory)[:, 0]
        output, new_state, attention = self.step_embedded(
            self.embedding(tokens), state[:2], memory, training=False, pointed=pointed
        )
        state = (*new_state, read) if self.has_pointer else new_state
        logits = ops.cast(self.logits_dense(output), "float32")
        return logits, state, attention

    # --- decoding with the input projections computed once per source -------------
    @property
    def precomputes_projections(self) -> bool:
        """Whether `decoding_step` has a faster step than `step` for this wiring."""
        return self.style == "bahdanau" and self.has_attention

    def decoding_step(self, memory: dict):
        """A step for decoding `memory` that reads its input projections from tables: `(step_fn, memory)`.

        In the Bahdanau wiring, all the first cell and the output layer read
        besides the state is linear in three vectors: the embedding of
        the previous token, the context `c_t = sum_i a_ti v_i` and the pointed
        encoder vector. Their products with the weights are computed once
        instead of at every step: `E W` for the whole (target) vocabulary
        (biases folded in), and `v_i W` for every source position, so that a
        step gathers a row, weights the context's rows by the attention
        (`sum_i a_ti (v_i W)`, which is `c_t W`), and multiplies only the
        recurrent state. With the parser's decoder that is about a third of
        the arithmetic of `step` per step while the source is shorter than
        the cell's gates (4 x units for an LSTM, 3 x units for a GRU); the
        logits are the same up to float rounding. The vocabulary's table is
        made when it is small (`SMALL_VOCABULARY`, a parser's labels); a
        large one's embeddings are projected at each step instead.

        Returns `step_fn` with `step`'s contract, `(tokens, state, memory) ->
        (logits, state, attention)`, and the memory to search with: `memory`
        and its `context_table` (and `pointer_table`), `(batch_size, S, gates
        + units)`. Other wirings (Luong, no attention) get `(self.step, memory)`.
        """
        if not self.precomputes_projections:
            return self.step, memory
        dtype = self.compute_dtype
        e, u = self.embedding_dim, self.units
        values = memory["values"]
        d = values.shape[-1]
        cell = self.cells[0]
        # The kernels' rows follow `step_embedded`'s inputs (and `build`'s sizes): the
        # first cell reads [embedding; context; pointed], the output [h; context; embedding; pointed].
        cell_kernel = ops.cast(cell.kernel, dtype)
        out_kernel = ops.cast(self.output_dense.kernel, dtype)

        def both(cell_rows, out_rows):
            return ops.concatenate(
                [cell_kernel[cell_rows[0] : cell_rows[1]], out_kernel[out_rows[0] : out_rows[1]]], 1
            )

        biases = ops.concatenate(
            [_input_bias(cell, dtype), _input_bias(self.output_dense, dtype)], 0
        )
        embedding_kernel = both((0, e), (u + d, u + d + e))
        if self.vocab_size <= SMALL_VOCABULARY:
            table = (
                ops.matmul(ops.cast(self.embedding.embeddings, dtype), embedding_kernel) + biases
            )

            def project_tokens(tokens):
                return ops.take(table, ops.cast(tokens, "int32"), axis=0)

        else:

            def project_tokens(tokens):
                return ops.matmul(self.embedding(tokens), embedding_kernel) + biases

        tables = {"context_table": ops.matmul(values, both((e, e + d), (u, u + d)))}
        if self.has_pointer:
            tables["pointer_table"] = ops.matmul(
                values, both((e + d, 2 * d + e), (u + d + e, u + 2 * d + e))
            )

        def step(tokens, state, memory):
            return self._projected_step(project_tokens(tokens), tokens, state, memory)

        return step, {**memory, **tables}

    def _projected_step(self, x, tokens, state, memory):
        cell_states, _ = state[:2]
        cell = self.cells[0]
        gates = cell.kernel.shape[-1]
        context, attention = self.attention_layer.attend(
            cell_states[-1][0], memory["keys"], memory["context_table"], mask=memory["mask"]
        )
        x = x + context
        if self.has_pointer:
            read = state[2] + self._is_pointer_token(tokens)
            position = self._pointer_position(read[:, None], memory["mask"])[:, 0]
            table = memory["pointer_table"]  # (batch_size, S, D): row b * S + position
            width = ops.shape(table)[1]
            rows = ops.arange(ops.shape(table)[0], dtype="int32") * width + position
            x = x + ops.take(ops.reshape(table, (-1, table.shape[-1])), rows, axis=0)
        h, states = _cell_from_projection(cell, x[:, :gates], cell_states[0])
        new_states = [states]
        for cell, states in zip(self.cells[1:], cell_states[1:], strict=True):
            h, states = cell(h, list(states), training=False)
            new_states.append(tuple(states))
        kernel = ops.cast(self.output_dense.kernel[: self.units], h.dtype)
        output = self.output_dense.activation(ops.matmul(h, kernel) + x[:, gates:])
        if self.output_norm is not None:
            output = self.output_norm(output)
        new_state = (tuple(new_states), output)
        if self.has_pointer:
            new_state = (*new_state, read)
        logits = ops.cast(self.logits_dense(output), "float32")
        return logits, new_state, ops.cast(attention, self.compute_dtype)

    def call(self, target_in, memory: dict, training=None):
        """Teacher forcing over `target_in` `(batch_size, T)`.

        Returns `(logits (batch_size, T, V), attention (batch_size, T, S))`.
        """
        embedded = self.embedding(target_in)
        if self.has_pointer:
            # Teacher forcing knows every step's pointer: gathered at once, fed beside the input.
            read = ops.cumsum(self._is_pointer_token(target_in), axis=1)
            embedded = ops.concatenate([embedded, self._pointed(read, memory)], -1)
        embedded = ops.transpose(embedded, (1, 0, 2))  # time-major for scan
        cell_states, feed = self.initial_state(memory)[:2]
        attention0 = ops.zeros(ops.shape(memory["values"])[:2], dtype=self.compute_dtype)

        def body(carry, x):
            pointed = None
            if self.has_pointer:
                x, pointed = x[:, : self.embedding_dim], x[:, self.embedding_dim :]
            output, new_state, attention = self.step_embedded(
                x, carry[:2], memory, training=training, pointed=pointed
            )
            del output  # it is new_state[1]
            new_carry = (new_state[0], new_state[1], attention)
            # scan (TF backend) keeps only outputs shaped exactly like the carry.
            return new_carry, new_carry

        _, (_, outputs, attention) = ops.scan(body, (cell_states, feed, attention0), embedded)
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
                "pointer_token": self.pointer_token,
                "pointer_reversed": self.pointer_reversed,
            }
        )
        return config


def _input_bias(layer, dtype):
    """The bias a cell (or a Dense layer) adds to its input's projection; zeros without one."""
    width = layer.kernel.shape[-1]
    if not layer.use_bias:
        return ops.zeros((width,), dtype)
    bias = layer.bias
    if isinstance(layer, keras.layers.GRUCell):  # reset_after: (2, 3 x units), input's first
        bias = bias[0]
    return ops.cast(bias, dtype)


def _cell_from_projection(cell, projected, states):
    """One step of a Keras LSTM or GRU cell from its input's projection (`x W + b`): `(h, states)`.

    The rest of `LSTMCell.call` / `GRUCell.call` without dropout (decoding).
    """
    h = states[0]
    recurrent = ops.matmul(h, ops.cast(cell.recurrent_kernel, h.dtype))
    if isinstance(cell, keras.layers.LSTMCell):
        z_i, z_f, z_c, z_o = ops.split(projected + recurrent, 4, axis=1)
        c = cell.recurrent_activation(z_f) * states[1]
        c = c + cell.recurrent_activation(z_i) * cell.activation(z_c)
        h = cell.recurrent_activation(z_o) * cell.activation(c)
        return h, (h, c)
    # A GRU cell as `AttentionDecoder` makes it: Keras' default `reset_after=True`.
    units = cell.units
    if cell.use_bias:
        recurrent = recurrent + ops.cast(cell.bias[1], h.dtype)
    x_z, x_r, x_h = ops.split(projected, 3, axis=1)
    z = cell.recurrent_activation(x_z + recurrent[:, :units])
    r = cell.recurrent_activation(x_r + recurrent[:, units : 2 * units])
    candidate = cell.activation(x_h + r * recurrent[:, 2 * units :])
    h = z * h + (1 - z) * candidate
    return h, (h,)
