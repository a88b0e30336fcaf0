"""A decoding constraint that only lets a sampler write well-formed linearised trees.

Parsing as translation (Vinyals et al. 2015) decodes a sentence into a
linearised tree such as ``(S (NP XX XX )NP (VP XX )VP )S``, one ``XX`` per
word. `TreeConstraint.allowed_fn` is the per-step hook of `greedy_search` and
`beam_search`: it follows the open brackets of every hypothesis in its hook
state and masks each token that could not lead to such a tree within
`max_length` tokens. `keras.ops` only, so it traces into a SavedModel.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from keras import ops

_OPEN = re.compile(r"\(([^\s()]+)")
_CLOSE = re.compile(r"\)([^\s()]+)")

# Classes of the vocabulary.
_OTHER, _OPENING, _CLOSING, _PLACEHOLDER, _END = range(5)


class TreeConstraint:
    """Masks the tokens that would make the output anything but a well-formed tree over exactly n words.

    A well-formed output is one root bracket spanning the whole sequence,
    then the end token: ``(S (NP XX XX )NP (VP XX )VP )S [END]``. Every
    ``)X`` closes the innermost open ``(X``, every constituent covers at
    least one placeholder, and there are exactly `n_words` placeholders (what
    `zoo.data.treebank.is_well_formed` checks). Used as the `allowed_fn` of
    `greedy_search` or `beam_search`, every hypothesis that ends is such a
    tree, and every hypothesis can always end within `max_length` tokens.

    The vocabulary is classified once: opening brackets ``"(LABEL"``,
    closing brackets ``")LABEL"``, the placeholder and the end token. Every
    other token (``[PAD]``, ``[UNK]``, ``[START]``, a bare ``")"``) is never
    allowed. A closing label without an opening bracket of the same label in
    the vocabulary is never allowed either.

    At each step, the hook first applies the previous token to the state (not
    at step 0, where it is the start token): an opening bracket pushes its
    label and the number of placeholders written so far, a closing bracket
    pops, a placeholder counts, the end token marks the row done. Then, with
    `depth` open brackets, `xx` placeholders written out of `n` and `step`
    tokens already generated (the next one is token number `step + 1`), it
    allows:

    - an opening bracket: at step 0 (the root), or inside the root
      (`depth > 0`), when `xx < n`, `depth < max_depth` and the length budget
      can still finish the tree after it, i.e. the bracket, the `n - xx`
      placeholders left, `depth + 1` closing brackets and the end token fit:
      `step + 1 + (n - xx) + (depth + 1) + 1 <= max_length`;
    - the placeholder: when `depth > 0`, `xx < n` and
      `step + 1 + (n - xx - 1) + depth + 1 <= max_length`;
    - the closing bracket of the innermost open label (and no other
      closing bracket), when that constituent covers a placeholder written
      since it opened and, for the root (`depth == 1`), when `xx == n`;
    - the end token: when the root is closed (`depth == 0` and `xx == n`),
      and then for ever (the samplers keep feeding it).

    Closing brackets need no budget test: when the tree can still be
    finished, a closing bracket uses one token and removes one from what is
    left to write. So, from any state reached under the constraint, at least
    one token is allowed: the placeholder while words are left (its budget
    test is exactly "the tree can still be finished"), else the innermost
    closing bracket, else the end token.

    Two cases have no tree to write, and allow only the end token from step
    0: `n_words == 0` (an empty sentence; the caller documents an empty
    tree), and a `max_length` below `n_words + 3`, the shortest tree
    ``(X XX ... XX )X [END]``. The caller sees an output of length 0 and
    reports it. More generally, a row whose state allows nothing (only a
    beam that is not a real hypothesis can get there) is given the end token,
    so `allowed` never has an all-False row.

    Args:
        vocab: the target vocabulary, a list of token strings (index = id).
        pos_placeholder: the token standing for a part of speech and its
            word. Defaults to `"XX"`.
        end_token: the end token of the samplers. Defaults to `"[END]"`.
        max_depth: the largest number of brackets open at once (the size of
            the stack in the state). Defaults to `64`.

    Attributes:
        token_kind: int32 NumPy `(V,)`, the class of each token: 0 never
            allowed, 1 opening bracket, 2 closing bracket, 3 placeholder,
            4 end token.
        token_label: int32 NumPy `(V,)`, the label index of each bracket
            (`labels[i]`), -1 for the other tokens.
        labels: the bracket labels, in order of first appearance.

    Example:

    ```python
    vocab = ["[PAD]", "[START]", "[END]", "XX", "(S", ")S", "(NP", ")NP"]
    constraint = TreeConstraint(vocab)
    n_words = ops.array([3, 1], "int32")  # (batch_size,)
    out = beam_search(
        step_fn, state, memory, batch_size=2, start_id=1, end_id=2,
        max_length=20, beam_size=4,
        allowed_fn=constraint.allowed_fn,
        hook_state=constraint.initial_state(n_words, 20),
    )
    # every out["tokens"][b, : out["lengths"][b]] is a tree over n_words[b] words
    ```

    References:
        - [Vinyals et al., 2015](https://arxiv.org/abs/1412.7449), Grammar
          as a Foreign Language.
    """

    def __init__(
        self,
        vocab: list[str],
        *,
        pos_placeholder: str = "XX",
        end_token: str = "[END]",
        max_depth: int = 64,
    ):
        vocab = list(vocab)
        if pos_placeholder not in vocab:
            raise ValueError(
                f"The vocabulary has no `pos_placeholder`. Received: pos_placeholder={pos_placeholder!r}"
            )
        if end_token not in vocab:
            raise ValueError(
                f"The vocabulary has no `end_token`. Received: end_token={end_token!r}"
            )
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(
                f"`max_depth` must be an integer >= 1. Received: max_depth={max_depth!r}"
            )
        self.vocab = vocab
        self.pos_placeholder = pos_placeholder
        self.end_token = end_token
        self.max_depth = max_depth

        kinds = np.full(len(vocab), _OTHER, "int32")
        label_ids = np.full(len(vocab), -1, "int32")
        labels: dict[str, int] = {}
        closes = []
        for index, token in enumerate(vocab):
            if token == end_token:
                kinds[index] = _END
            elif token == pos_placeholder:
                kinds[index] = _PLACEHOLDER
            elif _OPEN.fullmatch(token):
                kinds[index] = _OPENING
                label_ids[index] = labels.setdefault(token[1:], len(labels))
            elif _CLOSE.fullmatch(token):
                closes.append(index)
        if not labels:
            raise ValueError(
                'The vocabulary has no opening bracket such as "(S". '
                f"Received: {len(vocab)} tokens starting {vocab[:8]!r}"
            )
        for index in closes:
            # A closing label that no bracket opens can never be the innermost one.
            if vocab[index][1:] in labels:
                kinds[index] = _CLOSING
                label_ids[index] = labels[vocab[index][1:]]
        self.token_kind = kinds
        self.token_label = label_ids
        self.labels = list(labels)

    def initial_state(self, n_words, max_length) -> dict[str, Any]:
        """The hook state before decoding, to pass as the samplers' `hook_state`.

        Args:
            n_words: int tensor `(batch_size,)`, the number of words of each
                sentence (negative counts as 0).
            max_length: Python int or scalar int tensor, the samplers'
                `max_length` (the budget includes the end token); or int
                `(batch_size,)`, a budget per sentence (each at most the
                samplers' `max_length`).

        Returns:
            A dict of tensors with leading dimension `batch_size`:
            `"stack"` int32 `(batch_size, max_depth)` the labels of the open
            brackets (outermost first; entries at or past `depth` are
            stale), `"xx_at_open"` int32 `(batch_size, max_depth)` the
            placeholder count when each was opened, `"depth"`, `"xx_count"`,
            `"n_words"`, `"max_length"` int32 `(batch_size,)` and `"done"`
            bool `(batch_size,)`.
        """
        n_words = ops.maximum(ops.cast(ops.convert_to_tensor(n_words), "int32"), 0)
        zeros = ops.zeros_like(n_words)
        slots = ops.zeros_like(ops.expand_dims(n_words, 1)) + ops.zeros(
            (1, self.max_depth), dtype="int32"
        )
        return {
            "stack": slots,
            "xx_at_open": slots,
            "depth": zeros,
            "xx_count": zeros,
            "n_words": n_words,
            "done": ops.equal(zeros, 1),
            "max_length": zeros + ops.cast(max_length, "int32"),
        }

    def allowed_fn(self, step, prev_tokens, hook_state):
        """The samplers' hook: `(step, prev_tokens, hook_state) -> (allowed, new_hook_state)`.

        Args:
            step: scalar int32, the index of the token about to be chosen.
            prev_tokens: int32 `(N,)`, the token chosen at the previous step
                (the start token at step 0, which is not applied).
            hook_state: the dict of `initial_state`, leading dimension `N`.

        Returns:
            `allowed`, bool `(N, vocab_size)`, and the updated state.
        """
        state = self._apply(step, prev_tokens, hook_state)
        return self._allowed(step, state), state

    def _apply(self, step, prev_tokens, state):
        kinds = ops.convert_to_tensor(self.token_kind)
        labels = ops.convert_to_tensor(self.token_label)
        prev_tokens = ops.cast(prev_tokens, "int32")
        kind = ops.where(ops.greater(step, 0), ops.take(kinds, prev_tokens), _OTHER)
        # A finished row is fed the end token for ever; nothing else moves it.
        kind = ops.where(state["done"], _OTHER, kind)
        label = ops.take(labels, prev_tokens)
        opens = ops.equal(kind, _OPENING)
        depth, xx_count = state["depth"], state["xx_count"]

        # Masked writes at position `depth`; a push past `max_depth` writes
        # nothing (only a non-hypothesis beam can try it).
        at_top = ops.logical_and(
            ops.equal(ops.arange(self.max_depth, dtype="int32")[None, :], depth[:, None]),
            opens[:, None],
        )
        stack = ops.where(at_top, label[:, None], state["stack"])
        xx_at_open = ops.where(at_top, xx_count[:, None], state["xx_at_open"])
        depth = depth + ops.cast(opens, "int32") - ops.cast(ops.equal(kind, _CLOSING), "int32")
        return {
            "stack": stack,
            "xx_at_open": xx_at_open,
            "depth": ops.clip(depth, 0, self.max_depth),
            "xx_count": xx_count + ops.cast(ops.equal(kind, _PLACEHOLDER), "int32"),
            "n_words": state["n_words"],
            "done": ops.logical_or(state["done"], ops.equal(kind, _END)),
            "max_length": state["max_length"],
        }

    def _allowed(self, step, state):
        kinds = ops.convert_to_tensor(self.token_kind)
        labels = ops.convert_to_tensor(self.token_label)
        depth, xx, n = state["depth"], state["xx_count"], state["n_words"]
        max_length = state["max_length"]
        step = ops.cast(step, "int32")
        live = ops.logical_not(state["done"])
        inside = ops.logical_and(live, ops.greater(depth, 0))
        words_left = ops.less(xx, n)
        remaining = n - xx

        # Budgets (tokens generated so far: `step`; this token is one more).
        open_fits = ops.less_equal(step + 1 + remaining + (depth + 1) + 1, max_length)
        xx_fits = ops.less_equal(step + 1 + (remaining - 1) + depth + 1, max_length)

        may_open = ops.logical_or(inside, ops.logical_and(live, ops.equal(step, 0)))
        open_ok = ops.logical_and(
            ops.logical_and(may_open, words_left),
            ops.logical_and(ops.less(depth, self.max_depth), open_fits),
        )
        xx_ok = ops.logical_and(ops.logical_and(inside, words_left), xx_fits)

        innermost = ops.expand_dims(ops.clip(depth - 1, 0, self.max_depth - 1), 1)
        inner_label = ops.take_along_axis(state["stack"], innermost, axis=1)[:, 0]
        inner_start = ops.take_along_axis(state["xx_at_open"], innermost, axis=1)[:, 0]
        close_ok = ops.logical_and(
            ops.logical_and(inside, ops.greater(xx, inner_start)),
            ops.logical_or(ops.greater(depth, 1), ops.greater_equal(xx, n)),
        )
        end_ok = ops.logical_or(
            state["done"], ops.logical_and(ops.equal(depth, 0), ops.greater_equal(xx, n))
        )

        # Which classes each row allows, spread over the vocabulary by class,
        # then the closing brackets narrowed to the innermost label.
        class_ok = ops.stack([ops.zeros_like(live), open_ok, close_ok, xx_ok, end_ok], axis=1)
        allowed = ops.take(class_ok, kinds, axis=1)
        allowed = ops.logical_and(
            allowed,
            ops.logical_or(
                ops.not_equal(kinds, _CLOSING)[None, :],
                ops.equal(labels[None, :], inner_label[:, None]),
            ),
        )
        # No tree fits (max_length < n_words + 3) or the row is not a real
        # hypothesis: end it rather than leave the row without any token.
        stuck = ops.logical_not(ops.any(allowed, axis=1))
        return ops.logical_or(
            allowed, ops.logical_and(ops.equal(kinds, _END)[None, :], stuck[:, None])
        )
