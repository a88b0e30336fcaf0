"""Batched beam search over a decoder step function, with the GNMT length penalty.

All `batch_size * beam_size` hypotheses advance together through one
`keras.ops.while_loop`, so the search traces inside
`tf.function(autograph=False)` and `tf.saved_model.save` and needs no custom
op (a custom op would break stock TensorFlow Serving).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras import ops

from zoo.samplers.greedy_search import (
    NEG_INF,
    _check_length,
    _forbid_repeats,
    _map,
    _mask_rows,
    _score_step,
    _write_step,
    _zeros_buffer,
)


def beam_search(
    step_fn: Callable,
    state: Any,
    memory: Any,
    *,
    batch_size,
    start_id: int,
    end_id: int,
    max_length,
    beam_size=4,
    length_penalty=0.0,
    allowed_fn: Callable | None = None,
    hook_state: Any = None,
    coverage_penalty=0.0,
    coverage_mask=None,
    no_repeat_ngram: int = 0,
    stop_at_best: bool = False,
) -> dict:
    """Beam search: keeps the `beam_size` best hypotheses of each sequence.

    The decoder `state`, `memory` and `hook_state` are tiled once to
    `N = batch_size * beam_size` rows (`ops.repeat(x, beam_size, axis=0)`,
    so the beams of one sequence are adjacent), then every step scores the
    `beam_size * vocab_size` one-token extensions of each sequence's beams,
    keeps the best `beam_size` and reorders the state, the hook state and the
    token and attention histories after them (`ops.take`). The memory is
    never reordered: all beams of a sequence share it.

    - At step 0 only beam 0 of each sequence is live (the others start at
      `-1e9`), so the beams never hold duplicate hypotheses.
    - A hypothesis that emitted `end_id` is finished and frozen: it extends
      only with `end_id`, at zero cost, so it keeps its score and its
      length, and it competes with the live hypotheses at every step.
    - Hypotheses are ranked, at every step and at the end, by
      `log_prob_sum / lp(length)` with the GNMT length penalty
      `lp(length) = ((5 + length) / 6) ** length_penalty` (Wu et al., 2016),
      where `length` counts the generated tokens, end token included. With
      `length_penalty=0` the score is the plain sum of log-probabilities.
    - With `coverage_penalty=beta > 0`, GNMT's coverage penalty is added to
      that score: `beta * sum_i log(min(sum_t a_ti, 1))` over the source
      positions `i` (those `coverage_mask` marks), `a_ti` the attention of
      output step `t`: a hypothesis that leaves source words unread ranks
      lower, one that reads some words many times gains nothing. The sum
      runs over the steps so far, at every step (the score beams are pruned
      by) and at the end; coverage below `1e-6` counts as `1e-6`.
    - With `no_repeat_ngram=n > 0`, a hypothesis cannot write an n-gram it
      has already written (see `greedy_search`).
    - The loop stops when every hypothesis is finished (or has score
      `-1e9`, i.e. does not exist), or after `max_length` steps. With
      `stop_at_best=True` a sequence is also done as soon as its best
      hypothesis has finished with a score above every live one's: without
      penalties a score only falls as a hypothesis grows, so nothing can
      overtake it, and the best hypothesis (`tokens`, `lengths`, `scores`,
      `attention`) is the one the full search returns, found in fewer steps.
      The other beams (`beam_*`) are then the search's state when it stopped,
      some of them unfinished.
    - When a sequence has fewer than `beam_size` possible hypotheses (tiny
      vocabularies, heavy `allowed_fn` masking), the extra beams carry
      scores near `-1e9` and meaningless tokens.

    Args:
        step_fn: `step_fn(tokens, state, memory) -> (logits, new_state,
            attention)`, called on `N = batch_size * beam_size` rows.
            `tokens` is int32 `(N,)`; `logits` are unnormalised `(N,
            vocab_size)` (the log-softmax is taken in float32); `attention`
            is `(N, ...)` with the same trailing shape at every step. See
            `greedy_search` for the full contract.
        state: initial decoder state, any nest of tensors with leading
            dimension `batch_size` (tiled here).
        memory: any nest of tensors with leading dimension `batch_size`
            (tiled once here, never reordered).
        batch_size: Python int or scalar int tensor.
        start_id: int, the token fed at the first step.
        end_id: int, the end token (counted in scores and lengths used by
            the penalty, not in the returned `lengths`).
        max_length: Python int or scalar int32 tensor (`>= 1`), the largest
            number of generated tokens, end token included.
        beam_size: number of beams per sequence. A Python int is the normal
            case (static shapes); on the TensorFlow backend a scalar int32
            tensor also works (e.g. a serving input), at the cost of unknown
            static shapes. Defaults to `4`.
        length_penalty: float (or scalar float tensor), the GNMT `alpha`.
            `0` disables it; larger values favour longer outputs. Defaults
            to `0.0`.
        allowed_fn: optional `allowed_fn(step, prev_tokens, hook_state) ->
            (allowed, new_hook_state)` returning bool `(N, vocab_size)`;
            forbidden tokens get log-probability `-1e9` (the allowed ones are
            not renormalised). `prev_tokens` is `(N,)`, the token each beam
            chose at the previous step (`start_id` at step 0). Finished beams
            ignore it (they always extend with `end_id`).
        hook_state: initial nest of `allowed_fn` with leading dimension
            `batch_size` (tiled and reordered with the beams like `state`),
            or `None`.
        coverage_penalty: float (or scalar float tensor), the GNMT `beta`.
            Needs an attention `(N, S)` from `step_fn`. `0` disables it.
            Defaults to `0.0`.
        coverage_mask: bool `(batch_size, S)`, the source positions the
            coverage penalty counts (padding `False`), or `None` for all.
        no_repeat_ngram: Python int, `0` (the default) or the n-gram size a
            hypothesis may not repeat.
        stop_at_best: Python bool, stop each sequence once its best
            hypothesis can no longer be overtaken (see above), for callers
            that only read the best. Needs `length_penalty=0` and
            `coverage_penalty=0` (both can raise a hypothesis's score as it
            grows). Defaults to `False`.

    Returns:
        A dict with, for the best hypothesis of each sequence:
        - `"tokens"`: int32 `(batch_size, max_length)`, generated tokens
          (`start_id` excluded); the end token at position `lengths[b]` when
          the hypothesis ended, then 0 in every later position.
        - `"lengths"`: int32 `(batch_size,)`, tokens before the end token;
          `max_length` if it never ended.
        - `"scores"`: float32 `(batch_size,)`, the length-normalised score
          used for ranking (the log-probability sum when
          `length_penalty=0`), coverage penalty included.
        - `"attention"`: `(batch_size, max_length, ...)`, the attention of
          the chosen hypothesis at each of its output steps, zeros after its
          end token.

        and for all beams, best first:
        - `"beam_tokens"`: int32 `(batch_size, beam_size, max_length)`.
        - `"beam_lengths"`: int32 `(batch_size, beam_size)`.
        - `"beam_scores"`: float32 `(batch_size, beam_size)`.

    Example:

    ```python
    from keras import ops

    vocab_size, end_id = 5, 4

    def step_fn(tokens, state, memory):
        logits = ops.one_hot(ops.minimum(tokens + 1, end_id), vocab_size) * 3.0
        attention = ops.softmax(ops.sum(memory, axis=-1))
        return logits, state, attention

    memory = ops.ones((2, 7, 3))  # (batch_size, source_length, depth)
    out = beam_search(
        step_fn, ops.zeros((2, 8)), memory, batch_size=2, start_id=0,
        end_id=end_id, max_length=6, beam_size=3, length_penalty=0.6,
    )
    out["tokens"]  # [[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 0, 0]]
    out["beam_tokens"].shape  # (2, 3, 6)
    out["attention"].shape  # (2, 6, 7)
    ```

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144), Google's
          Neural Machine Translation System (length and coverage penalties,
          section 7).
        - [Paulus et al., 2018](https://arxiv.org/abs/1705.04304), A Deep
          Reinforced Model for Abstractive Summarization (n-gram blocking).
    """
    _check_length(max_length)
    if isinstance(beam_size, int) and beam_size < 1:
        raise ValueError(f"`beam_size` must be at least 1. Received: beam_size={beam_size}")
    if hook_state is None:
        hook_state = ()
    penalised = not (isinstance(length_penalty, (int, float)) and length_penalty == 0)
    covered = not (isinstance(coverage_penalty, (int, float)) and coverage_penalty == 0)
    if stop_at_best and (penalised or covered):
        raise ValueError(
            "`stop_at_best` needs `length_penalty=0` and `coverage_penalty=0`: with a penalty "
            "a finished hypothesis can be overtaken. Received: "
            f"length_penalty={length_penalty}, coverage_penalty={coverage_penalty}"
        )

    def tile(x):
        return ops.repeat(x, beam_size, axis=0)

    state = _map(tile, state)
    memory = _map(tile, memory)
    hook_state = _map(tile, hook_state)
    if coverage_mask is not None:
        coverage_mask = ops.cast(tile(coverage_mask), "float32")

    def coverage_score(coverage):
        """The GNMT coverage penalty `(N,)` of each row's summed attention `(N, S)`."""
        if not covered:
            return 0.0
        logs = ops.log(ops.clip(ops.cast(coverage, "float32"), 1e-6, 1.0))
        if coverage_mask is not None:
            logs = logs * coverage_mask
        return ops.cast(coverage_penalty, "float32") * ops.sum(logs, axis=-1)

    def normalise(raw, lengths):
        if not penalised:
            return raw
        lengths = ops.cast(lengths, "float32")
        return raw / ops.power((5.0 + lengths) / 6.0, ops.cast(length_penalty, "float32"))

    def decide(step, prev_tokens, state, hook_state, finished, raw, gen_len, coverage, token_buf):
        log_probs, state, attention, hook_state = _score_step(
            step_fn, allowed_fn, step, prev_tokens, state, memory, hook_state
        )
        if no_repeat_ngram and token_buf is not None:
            log_probs = _forbid_repeats(log_probs, token_buf, step, no_repeat_ngram)
        if coverage is None:
            coverage = ops.zeros_like(ops.cast(attention, "float32"))
        coverage = coverage + _mask_rows(ops.cast(attention, "float32"), ops.logical_not(finished))
        vocab_size = ops.shape(log_probs)[1]
        is_end = ops.equal(ops.arange(vocab_size, dtype="int32"), end_id)
        frozen = ops.where(is_end, 0.0, NEG_INF)
        log_probs = ops.where(ops.expand_dims(finished, 1), frozen[None, :], log_probs)
        cand_raw = ops.expand_dims(raw, 1) + log_probs
        cand_len = gen_len + ops.cast(ops.logical_not(finished), "int32")
        cand_score = normalise(cand_raw, ops.expand_dims(cand_len, 1))
        if covered:
            cand_score = cand_score + ops.expand_dims(coverage_score(coverage), 1)
        _, top = ops.top_k(ops.reshape(cand_score, (-1, beam_size * vocab_size)), beam_size)
        top = ops.cast(ops.reshape(top, (-1,)), "int32")
        rows = ops.arange(ops.shape(raw)[0], dtype="int32")
        parent = (rows // beam_size) * beam_size + top // vocab_size
        tokens = top % vocab_size
        raw = ops.take(ops.reshape(cand_raw, (-1,)), parent * vocab_size + tokens)

        def reorder(x):
            return ops.take(x, parent, axis=0)

        return (
            tokens,
            parent,
            raw,
            reorder(attention),
            _map(reorder, state),
            _map(reorder, hook_state),
            reorder(coverage),
        )

    def record(step, tokens, parent, attention, finished, gen_len, token_buf, att_buf, parent_buf):
        # The attention history is not reordered with the beams (that would
        # copy `(N, max_length, S)` floats every step): each step's row is
        # written where it is, with its parent, and the best hypothesis's
        # rows are followed back once at the end (`_follow_parents`).
        finished, gen_len, token_buf = (
            ops.take(x, parent, axis=0) for x in (finished, gen_len, token_buf)
        )
        alive = ops.logical_not(finished)
        token_buf = _write_step(token_buf, step, _mask_rows(tokens, alive))
        att_buf = _write_step(att_buf, step, _mask_rows(attention, alive))
        parent_buf = _write_step(parent_buf, step, parent)
        gen_len = gen_len + ops.cast(alive, "int32")
        finished = ops.logical_or(finished, ops.equal(tokens, end_id))
        return finished, gen_len, token_buf, att_buf, parent_buf

    # Step 0 runs outside the loop: it fixes the attention buffer's shape and
    # gives loop variables whose static shapes match the loop body's.
    num_rows = batch_size * beam_size
    step = ops.convert_to_tensor(0, dtype="int32")
    rows = ops.arange(num_rows, dtype="int32")
    raw = ops.where(ops.equal(rows % beam_size, 0), 0.0, NEG_INF)
    finished = ops.zeros_like(rows) > 0
    gen_len = ops.zeros_like(rows)
    start_tokens = ops.zeros_like(rows) + start_id
    tokens, parent, raw, attention, state, hook_state, coverage = decide(
        step, start_tokens, state, hook_state, finished, raw, gen_len, None, None
    )
    token_buf = _zeros_buffer(tokens, max_length)
    att_buf = _zeros_buffer(attention, max_length)
    parent_buf = _zeros_buffer(parent, max_length)
    finished, gen_len, token_buf, att_buf, parent_buf = record(
        step, tokens, parent, attention, finished, gen_len, token_buf, att_buf, parent_buf
    )

    def cond(step, prev_tokens, state, hook_state, finished, raw, *_):
        # A beam with score ~-1e9 does not exist; it must not keep the loop going.
        done = ops.logical_or(finished, ops.less_equal(raw, 0.5 * NEG_INF))
        if stop_at_best:
            # A sequence's best finished score against its best live one's:
            # done when strictly above (a tie could still be overtaken by index).
            beams = (-1, beam_size)
            ended = ops.reshape(ops.where(finished, raw, NEG_INF), beams)
            live = ops.reshape(ops.where(done, NEG_INF, raw), beams)
            settled = ops.greater(ops.max(ended, axis=1), ops.max(live, axis=1))
            done = ops.logical_or(ops.reshape(done, beams), settled[:, None])
        return ops.logical_and(ops.less(step, max_length), ops.logical_not(ops.all(done)))

    def body(
        step,
        prev_tokens,
        state,
        hook_state,
        finished,
        raw,
        gen_len,
        token_buf,
        att_buf,
        parent_buf,
        coverage,
    ):
        tokens, parent, raw, attention, state, hook_state, coverage = decide(
            step, prev_tokens, state, hook_state, finished, raw, gen_len, coverage, token_buf
        )
        finished, gen_len, token_buf, att_buf, parent_buf = record(
            step, tokens, parent, attention, finished, gen_len, token_buf, att_buf, parent_buf
        )
        return (
            step + 1,
            tokens,
            state,
            hook_state,
            finished,
            raw,
            gen_len,
            token_buf,
            att_buf,
            parent_buf,
            coverage,
        )

    loop_vars = (step + 1, tokens, state, hook_state, finished, raw, gen_len, token_buf, att_buf)
    outputs = ops.while_loop(cond, body, loop_vars + (parent_buf, coverage))
    steps = outputs[0]
    finished, raw, gen_len, token_buf, att_buf, parent_buf, coverage = outputs[4:]

    # Final ranking, best first within each sequence.
    scores = normalise(raw, gen_len)
    if covered:
        scores = scores + coverage_score(coverage)
    _, order = ops.top_k(ops.reshape(scores, (-1, beam_size)), beam_size)
    order = (rows // beam_size) * beam_size + ops.cast(ops.reshape(order, (-1,)), "int32")
    scores = ops.take(scores, order)
    lengths = ops.take(gen_len - ops.cast(finished, "int32"), order)
    token_buf = ops.take(token_buf, order, axis=0)
    best = ops.reshape(order, (-1, beam_size))[:, 0]
    max_len = ops.shape(token_buf)[1]
    beam_tokens = ops.reshape(token_buf, (-1, beam_size, max_len))
    return {
        "tokens": beam_tokens[:, 0],
        "lengths": ops.reshape(lengths, (-1, beam_size))[:, 0],
        "scores": ops.reshape(scores, (-1, beam_size))[:, 0],
        "attention": _follow_parents(att_buf, parent_buf, best, steps),
        "beam_tokens": beam_tokens,
        "beam_lengths": ops.reshape(lengths, (-1, beam_size)),
        "beam_scores": ops.reshape(scores, (-1, beam_size)),
    }


def _follow_parents(att_buf, parent_buf, rows, steps):
    """The attention history `(B, T, ...)` of the hypotheses in `rows` `(B,)` after `steps` steps.

    `att_buf[r, t]` is what the hypothesis in row `r` after step `t` attended
    to at step `t`, and `parent_buf[r, t]` the row it extended (its row after
    step `t - 1`); following the parents back from the last step gives each
    step's row of one hypothesis. Steps never run stay zero.
    """
    max_len = ops.shape(att_buf)[1]
    parents = ops.reshape(parent_buf, (-1,))
    rows = ops.cast(rows, "int32")

    def follow(i, carry):
        row, row_buf = carry
        t = steps - 1 - i  # from the last step back to the first
        row_buf = _write_step(row_buf, t, row)
        return ops.take(parents, row * max_len + t), row_buf

    row_buf = ops.zeros_like(ops.take(parent_buf, rows, axis=0))
    _, row_buf = ops.fori_loop(0, steps, follow, (rows, row_buf))
    trailing = tuple(ops.shape(att_buf)[2:])
    flat = ops.reshape(att_buf, (-1, *trailing))
    index = row_buf * max_len + ops.arange(max_len, dtype="int32")[None, :]
    picked = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
    return ops.reshape(picked, (-1, max_len, *trailing))
