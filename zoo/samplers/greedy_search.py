"""Greedy decoding over a decoder step function, in-graph and batched.

The loop is a `keras.ops.while_loop` over fixed-size buffers, so it traces
inside `tf.function(autograph=False)` (what `keras.export.ExportArchive`
uses) and inside `tf.saved_model.save`, with a batch size and a maximum
length that may both be tensors (serving inputs). The private helpers at the
bottom are shared with `beam_search`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

# Log-probability given to forbidden tokens (and to beams that do not exist).
# Finite on purpose: sums and differences of -inf give NaN.
NEG_INF = -1e9


def greedy_search(
    step_fn: Callable,
    state: Any,
    memory: Any,
    *,
    batch_size,
    start_id: int,
    end_id: int,
    max_length,
    allowed_fn: Callable | None = None,
    hook_state: Any = None,
    no_repeat_ngram: int = 0,
) -> dict:
    """Greedy decoding: at every step, the most likely allowed token.

    `step_fn` is called once per output step on the whole batch, inside a
    `keras.ops.while_loop`; the first step is run before the loop (it gives
    the shapes of the attention buffer). Rows that have emitted `end_id` keep
    being fed `end_id` until every row has ended or `max_length` steps have
    run, but what they produce is discarded. The loop stops early when every
    row has ended.

    Args:
        step_fn: `step_fn(tokens, state, memory) -> (logits, new_state,
            attention)`. `tokens` is int32 `(N,)`, the previous token of each
            row (`start_id` at the first step). `state` is the decoder state
            nest. `logits` are unnormalised scores `(N, vocab_size)` (any float
            dtype; the log-softmax is taken in float32). `attention` is
            `(N, ...)` with a trailing shape that is the same at every step,
            e.g. `(N, source_length)` or `(N, H * W)`. Here `N = batch_size`.
        state: the initial decoder state, any nest (tuple, list, dict) of
            tensors with leading dimension `batch_size`. It is a loop variable,
            so `step_fn` must return the same structure, dtypes and shapes.
        memory: any nest of tensors with leading dimension `batch_size`
            (encoder outputs, masks, precomputed key projections, image
            feature grids), passed unchanged to every call of `step_fn`.
        batch_size: Python int or scalar int tensor, the number of rows.
        start_id: int, the token fed at the first step.
        end_id: int, the end token. It is part of the output (at position
            `lengths[b]`) and its log-probability counts in the score.
        max_length: Python int or scalar int32 tensor (`>= 1`), the largest
            number of generated tokens, end token included. Decoding always
            stops there, whether or not `end_id` was produced.
        allowed_fn: optional `allowed_fn(step, prev_tokens, hook_state) ->
            (allowed, new_hook_state)`, called before `step_fn` at each step
            with `step` a scalar int32 (0 at the first step), `prev_tokens`
            `(N,)` the tokens chosen at the previous step (`start_id` at step
            0) and `hook_state` the hook's nest. `allowed` is bool `(N,
            vocab_size)`: tokens set to `False` cannot be chosen (their
            log-probability becomes `-1e9`; the allowed ones are not
            renormalised, so scores stay model log-probabilities). If a row
            allows no token at all, token 0 is chosen with score `-1e9`;
            nothing becomes NaN.
        hook_state: the initial nest of `allowed_fn` (leading dimension
            `batch_size`), or `None`.
        no_repeat_ngram: Python int; if `n > 0`, a token that would complete
            an n-gram the row has already written is forbidden (Paulus et al.
            2018), which stops the loops of an undertrained model ("a woman in
            a woman in a woman"). `0` (the default) forbids nothing.

    Returns:
        A dict with:
        - `"tokens"`: int32 `(batch_size, max_length)`, the generated tokens,
          `start_id` excluded. The end token sits at position `lengths[b]`
          (when the row ended) and every position after it holds 0.
        - `"lengths"`: int32 `(batch_size,)`, the number of tokens before the
          end token (end token excluded); `max_length` if the row never
          ended.
        - `"scores"`: float32 `(batch_size,)`, the sum of the log-probabilities
          of the generated tokens, end token included.
        - `"attention"`: `(batch_size, max_length, ...)`, the attention that
          `step_fn` returned at each output step (the step that produced
          token `t` is row `t`); zeros after the end token.

    Example:

    ```python
    from keras import ops

    vocab_size, end_id = 5, 4

    def step_fn(tokens, state, memory):
        # Counts up from the start token, then ends: 1, 2, 3, <end>.
        logits = ops.one_hot(ops.minimum(tokens + 1, end_id), vocab_size) * 10.0
        attention = ops.softmax(ops.sum(memory * state[:, None, :], axis=-1))
        return logits, state, attention

    memory = ops.ones((2, 7, 3))  # (batch_size, source_length, depth)
    state = ops.zeros((2, 3))
    out = greedy_search(
        step_fn, state, memory, batch_size=2, start_id=0, end_id=end_id, max_length=6
    )
    out["tokens"]  # [[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 0, 0]]
    out["lengths"]  # [3, 3]
    out["attention"].shape  # (2, 6, 7)
    ```
    """
    _check_length(max_length)
    if hook_state is None:
        hook_state = ()

    def decide(step, prev_tokens, state, hook_state, finished, token_buf=None):
        log_probs, state, attention, hook_state = _score_step(
            step_fn, allowed_fn, step, prev_tokens, state, memory, hook_state
        )
        if no_repeat_ngram and token_buf is not None:
            log_probs = _forbid_repeats(log_probs, token_buf, step, no_repeat_ngram)
        tokens = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
        # An ended row keeps feeding the end token; its outputs are discarded.
        tokens = ops.where(finished, ops.cast(end_id, "int32"), tokens)
        log_prob = ops.take_along_axis(log_probs, ops.expand_dims(tokens, 1), axis=1)[:, 0]
        return tokens, log_prob, attention, state, hook_state

    def record(step, tokens, log_prob, attention, finished, lengths, scores, token_buf, att_buf):
        alive = ops.logical_not(finished)
        token_buf = _write_step(token_buf, step, _mask_rows(tokens, alive))
        att_buf = _write_step(att_buf, step, _mask_rows(attention, alive))
        scores = scores + ops.where(alive, log_prob, 0.0)
        lengths = lengths + ops.cast(alive, "int32")
        finished = ops.logical_or(finished, ops.equal(tokens, end_id))
        return finished, lengths, scores, token_buf, att_buf

    # Step 0 runs outside the loop: its attention gives the buffer's shape,
    # and the loop variables then start from tensors made by the same ops as
    # the loop body's, so their static shapes agree (no shape invariants).
    step = ops.convert_to_tensor(0, dtype="int32")
    start_tokens = ops.full((batch_size,), start_id, dtype="int32")
    not_finished = ops.zeros((batch_size,), dtype="bool")
    tokens, log_prob, attention, state, hook_state = decide(
        step, start_tokens, state, hook_state, not_finished
    )
    token_buf = _zeros_buffer(tokens, max_length)
    att_buf = _zeros_buffer(attention, max_length)
    finished, lengths, scores, token_buf, att_buf = record(
        step,
        tokens,
        log_prob,
        attention,
        ops.zeros_like(tokens) > 0,
        ops.zeros_like(tokens),
        ops.zeros_like(log_prob),
        token_buf,
        att_buf,
    )

    def cond(step, prev_tokens, state, hook_state, finished, *_):
        return ops.logical_and(ops.less(step, max_length), ops.logical_not(ops.all(finished)))

    def body(step, prev_tokens, state, hook_state, finished, lengths, scores, token_buf, att_buf):
        tokens, log_prob, attention, state, hook_state = decide(
            step, prev_tokens, state, hook_state, finished, token_buf
        )
        finished, lengths, scores, token_buf, att_buf = record(
            step, tokens, log_prob, attention, finished, lengths, scores, token_buf, att_buf
        )
        return step + 1, tokens, state, hook_state, finished, lengths, scores, token_buf, att_buf

    loop_vars = (step + 1, tokens, state, hook_state, finished, lengths, scores, token_buf, att_buf)
    outputs = ops.while_loop(cond, body, loop_vars)
    finished, lengths, scores, token_buf, att_buf = outputs[4:]
    return {
        "tokens": token_buf,
        "lengths": lengths - ops.cast(finished, "int32"),
        "scores": scores,
        "attention": att_buf,
    }


# --- helpers shared with beam_search ------------------------------------------


def _check_length(max_length):
    if isinstance(max_length, int) and max_length < 1:
        raise ValueError(f"`max_length` must be at least 1. Received: max_length={max_length}")


def _map(fn, nest):
    """Applies `fn` to every tensor of a nest (`None` leaves stay `None`)."""
    return keras.tree.map_structure(lambda x: None if x is None else fn(x), nest)


def _score_step(step_fn, allowed_fn, step, prev_tokens, state, memory, hook_state):
    """Runs the hook and the decoder for one step; returns float32 log-probs."""
    allowed = None
    if allowed_fn is not None:
        allowed, hook_state = allowed_fn(step, prev_tokens, hook_state)
    logits, state, attention = step_fn(prev_tokens, state, memory)
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    # `x > NEG_INF` is False for -inf and NaN too (e.g. all logits -inf), so
    # every log-prob that leaves here is finite.
    keep = ops.greater(log_probs, NEG_INF)
    if allowed is not None:
        keep = ops.logical_and(keep, ops.cast(allowed, "bool"))
    return ops.where(keep, log_probs, NEG_INF), state, attention, hook_state


def _forbid_repeats(log_probs, token_buf, step, ngram: int):
    """`log_probs` with `NEG_INF` where a token would repeat an `ngram`-gram of its row.

    `token_buf` `(N, T)` holds each row's tokens, `step` of them written so
    far. The n-gram starting at position `k` is complete when `k + n <= step`;
    it bans its last token when its first `n - 1` tokens equal the row's last
    `n - 1` (for `n = 1`, every token written so far is banned).
    """
    rows, width = ops.shape(token_buf)[0], ops.shape(token_buf)[1]
    starts = ops.arange(width, dtype="int32")
    last = width - 1

    def column(index):  # token_buf[:, index] for an (N,)- or (T,)-shaped index, clamped
        index = ops.clip(index, 0, last)
        if len(index.shape) == 0:
            index = ops.full((rows,), index, dtype="int32")
            return ops.take_along_axis(token_buf, ops.expand_dims(index, 1), axis=1)
        return ops.take(token_buf, index, axis=1)

    match = ops.expand_dims(ops.less_equal(starts + ngram, step), 0)  # (1, T)
    for j in range(ngram - 1):
        window = column(starts + j)  # (N, T): token j of the n-gram starting at k
        prefix = column(step - ngram + 1 + j)  # (N, 1): token j of the row's last n - 1
        match = ops.logical_and(match, ops.equal(window, prefix))
    match = ops.broadcast_to(match, (rows, width))
    banned_token = column(starts + ngram - 1)  # (N, T)
    row_ids = ops.repeat(ops.expand_dims(ops.arange(rows, dtype="int32"), 1), width, axis=1)
    indices = ops.stack([ops.reshape(row_ids, (-1,)), ops.reshape(banned_token, (-1,))], axis=1)
    banned = ops.scatter(
        indices, ops.reshape(ops.cast(match, "float32"), (-1,)), ops.shape(log_probs)
    )
    return ops.where(banned > 0, NEG_INF, log_probs)


def _rows_shape(mask, x):
    """Reshapes a `(N,)` mask so that it broadcasts against `x` `(N, ...)`."""
    return ops.reshape(mask, (-1,) + (1,) * (len(x.shape) - 1))


def _mask_rows(x, keep):
    """Zeros the rows of `x` `(N, ...)` where `keep` `(N,)` is False."""
    return ops.where(_rows_shape(keep, x), x, ops.zeros_like(x))


def _zeros_buffer(first, max_length):
    """Zeros `(N, max_length, ...)` shaped after one step's output `(N, ...)`."""
    return ops.repeat(ops.zeros_like(ops.expand_dims(first, 1)), max_length, axis=1)


def _write_step(buffer, step, values):
    """Writes `values` `(N, ...)` at time `step` of `buffer` `(N, T, ...)`.

    One scatter of `N` rows (`tf.tensor_scatter_nd_update` on TensorFlow, a
    stock op that Serving runs): the cost of a step does not grow with `T`,
    and under XLA the buffer is updated in place.
    """
    rows = ops.shape(values)[0]
    at = ops.stack(
        [ops.arange(rows, dtype="int32"), ops.full((rows,), step, dtype="int32")], axis=1
    )
    return ops.scatter_update(buffer, at, ops.cast(values, buffer.dtype))
