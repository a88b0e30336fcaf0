"""Greedy search against stub decoders over a four-token alphabet.

The stub decoders and the NumPy replay of a token sequence defined here are
also used by `test_beam_search.py`.
"""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo.samplers import beam_search, greedy_search

V, START, END = 4, 0, 3
SOURCE_LENGTH, DEPTH = 5, 2
HASH_MOD = 10007


def log_softmax(x):
    x = np.asarray(x, dtype="float64")
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


class HashDecoder:
    """Logits from a random table indexed by a running hash of the whole history.

    `bias[prev, next]` is added to the logits, to make some patterns likely.
    The attention encodes the hash (so the history) and the memory, with
    shape `(N, SOURCE_LENGTH)`, or `(N, 2, 3)` over a `(B, 6, DEPTH)` "image
    grid" memory when `grid=True`.
    """

    def __init__(self, seed=0, end_bias=0.0, bias=None, grid=False, table_size=61):
        rng = np.random.default_rng(seed)
        self.table = rng.normal(scale=2.0, size=(table_size, V)).astype("float32")
        self.table[:, END] += end_bias
        self.bias = np.zeros((V, V), "float32") if bias is None else np.asarray(bias, "float32")
        self.grid = grid

    def inputs(self, batch_size, seed=1):
        rng = np.random.default_rng(seed)
        positions = 6 if self.grid else SOURCE_LENGTH
        state = {
            "h": (np.arange(batch_size, dtype="int32") * 7 + 1),
            "steps": np.zeros(batch_size, "int32"),
        }
        memory = {
            "keys": rng.integers(0, 5, size=(batch_size, positions, DEPTH)).astype("float32"),
            "mask": np.ones((batch_size, positions), bool),
        }
        return state, memory

    def step_fn(self, tokens, state, memory):
        h = (state["h"] * 31 + tokens + 1) % HASH_MOD
        logits = ops.take(self.table, h % self.table.shape[0], axis=0)
        logits = logits + ops.take(self.bias, tokens, axis=0)
        weight = ops.cast(h % 13 + 1, "float32")[:, None]
        attention = memory["keys"][:, :, 0] * weight * ops.cast(memory["mask"], "float32")
        if self.grid:
            attention = ops.reshape(attention, (-1, 2, 3))
        return logits, {"h": h, "steps": state["steps"] + 1}, attention

    def replay(self, state, memory, row, tokens):
        """NumPy replay of one row: (log-prob of each token, attention at each step)."""
        h, prev = int(state["h"][row]), START
        log_probs, attentions = [], []
        for token in tokens:
            h = (h * 31 + prev + 1) % HASH_MOD
            logits = self.table[h % self.table.shape[0]] + self.bias[prev]
            log_probs.append(log_softmax(logits)[token])
            attention = memory["keys"][row, :, 0] * (h % 13 + 1)
            attentions.append(attention.reshape(2, 3) if self.grid else attention)
            prev = token
        return np.array(log_probs), np.array(attentions)

    def greedy(self, state, memory, row, max_length, allowed=None):
        """NumPy greedy decoding of one row, with an optional `allowed(prefix, token)`."""
        h, prev, tokens = int(state["h"][row]), START, []
        while len(tokens) < max_length and (not tokens or tokens[-1] != END):
            h = (h * 31 + prev + 1) % HASH_MOD
            log_probs = log_softmax(self.table[h % self.table.shape[0]] + self.bias[prev])
            if allowed is not None:
                log_probs = np.array(
                    [lp if allowed(tokens, t) else -1e9 for t, lp in enumerate(log_probs)]
                )
            prev = int(np.argmax(log_probs))
            tokens.append(prev)
        return tuple(tokens)


class MarkovDecoder:
    """Log-probabilities given by hand: `log_probs[step, prev_token, next_token]`."""

    def __init__(self, probs):
        probs = np.asarray(probs, "float64")
        self.log_probs = np.log(probs / probs.sum(-1, keepdims=True))

    def inputs(self, batch_size):
        state = {"t": np.zeros(batch_size, "int32")}
        memory = np.zeros((batch_size, 3, DEPTH), "float32")
        return state, memory

    def step_fn(self, tokens, state, memory):
        t = ops.minimum(state["t"], self.log_probs.shape[0] - 1)
        logits = ops.take(
            ops.reshape(self.log_probs.astype("float32"), (-1, V)), t * V + tokens, axis=0
        )
        return logits, {"t": state["t"] + 1}, memory[:, :, 0]

    def replay(self, state, memory, row, tokens):
        prev, log_probs = START, []
        for t, token in enumerate(tokens):
            log_probs.append(self.log_probs[min(t, len(self.log_probs) - 1), prev, token])
            prev = token
        return np.array(log_probs), None


def forbid_two_after_one_and_third_one(step, prev_tokens, hook_state):
    """Parsing-like constraint: no `1 2` bigram, and token 1 at most twice."""
    ones = hook_state["ones"] + ops.cast(ops.equal(prev_tokens, 1), "int32")
    columns = ops.arange(V, dtype="int32")[None, :]
    two_after_one = ops.logical_and(ops.equal(columns, 2), ops.equal(prev_tokens, 1)[:, None])
    third_one = ops.logical_and(ops.equal(columns, 1), ops.greater_equal(ones, 2)[:, None])
    allowed = ops.logical_not(ops.logical_or(two_after_one, third_one))
    return allowed, {"ones": ones}


def forbid_two_after_one_and_third_one_np(prefix, token):
    if prefix and prefix[-1] == 1 and token == 2:
        return False
    return not (token == 1 and list(prefix).count(1) >= 2)


def decoded(out, row):
    """The sequence of row `row` as a tuple, end token included, padding dropped."""
    tokens = np.asarray(out["tokens"][row])
    length = int(out["lengths"][row])
    return tuple(int(t) for t in tokens[: min(length + 1, len(tokens))])


def check_padding(tokens, length, max_length):
    """End token at `length` (when it ended) and zeros after it."""
    tokens = np.asarray(tokens)
    if length < max_length:
        assert tokens[length] == END
        assert np.all(tokens[length + 1 :] == 0)
    assert END not in tokens[:length]


def test_matches_numpy_greedy_and_replayed_scores():
    decoder = HashDecoder(seed=3)
    state, memory = decoder.inputs(4)
    out = greedy_search(
        decoder.step_fn, state, memory, batch_size=4, start_id=START, end_id=END, max_length=6
    )
    assert out["tokens"].shape == (4, 6) and out["tokens"].dtype == "int32"
    assert out["lengths"].dtype == "int32" and out["scores"].dtype == "float32"
    for row in range(4):
        expected = decoder.greedy(state, memory, row, 6)
        assert decoded(out, row) == expected
        check_padding(out["tokens"][row], int(out["lengths"][row]), 6)
        log_probs, _ = decoder.replay(state, memory, row, expected)
        np.testing.assert_allclose(out["scores"][row], log_probs.sum(), rtol=1e-5, atol=1e-5)


def test_max_length_respected_when_end_never_likely():
    decoder = HashDecoder(seed=4, end_bias=-30.0)
    state, memory = decoder.inputs(3)
    for max_length in (1, 5):
        out = greedy_search(
            decoder.step_fn,
            state,
            memory,
            batch_size=3,
            start_id=START,
            end_id=END,
            max_length=max_length,
        )
        assert out["tokens"].shape == (3, max_length)
        np.testing.assert_array_equal(out["lengths"], [max_length] * 3)
        assert END not in np.asarray(out["tokens"])


def test_stops_early_when_every_row_has_ended():
    decoder = HashDecoder(seed=5, end_bias=30.0)
    calls = []

    def counting_step(tokens, state, memory):
        calls.append(1)
        return decoder.step_fn(tokens, state, memory)

    state, memory = decoder.inputs(2)
    out = greedy_search(
        counting_step, state, memory, batch_size=2, start_id=START, end_id=END, max_length=20
    )
    assert len(calls) == 1  # eager: the loop body never ran
    np.testing.assert_array_equal(out["lengths"], [0, 0])
    np.testing.assert_array_equal(out["tokens"][:, 0], [END, END])
    assert np.all(np.asarray(out["tokens"])[:, 1:] == 0)


def test_allowed_fn_forbids_patterns_with_hook_state():
    bias = np.zeros((V, V))
    bias[:, 1] += 2.0
    bias[1, 2] += 5.0
    decoder = HashDecoder(seed=6, bias=bias)
    state, memory = decoder.inputs(4)
    free = greedy_search(
        decoder.step_fn, state, memory, batch_size=4, start_id=START, end_id=END, max_length=7
    )
    free_sequences = [decoded(free, row) for row in range(4)]
    assert any(
        not all(forbid_two_after_one_and_third_one_np(seq[:i], seq[i]) for i in range(len(seq)))
        for seq in free_sequences
    ), "the stub should produce the forbidden patterns without the hook"
    out = greedy_search(
        decoder.step_fn,
        state,
        memory,
        batch_size=4,
        start_id=START,
        end_id=END,
        max_length=7,
        allowed_fn=forbid_two_after_one_and_third_one,
        hook_state={"ones": np.zeros(4, "int32")},
    )
    for row in range(4):
        seq = decoded(out, row)
        assert all(forbid_two_after_one_and_third_one_np(seq[:i], seq[i]) for i in range(len(seq)))
        assert seq == decoder.greedy(
            state, memory, row, 7, allowed=forbid_two_after_one_and_third_one_np
        )


def test_nothing_allowed_gives_finite_output():
    decoder = HashDecoder(seed=7)
    state, memory = decoder.inputs(2)

    def forbid_all(step, prev_tokens, hook_state):
        return ops.zeros((ops.shape(prev_tokens)[0], V), "bool"), hook_state

    for search in (greedy_search, beam_search):
        out = search(
            decoder.step_fn,
            state,
            memory,
            batch_size=2,
            start_id=START,
            end_id=END,
            max_length=3,
            allowed_fn=forbid_all,
        )
        assert np.all(np.isfinite(out["scores"]))


def test_logits_with_minus_infinity_give_no_nan():
    def step_fn(tokens, state, memory):
        logits = ops.where(ops.equal(ops.arange(V)[None, :], 2), 0.0, float("-inf"))
        return ops.broadcast_to(logits, (ops.shape(tokens)[0], V)), state, memory

    state, memory = np.zeros((2, 1), "float32"), np.zeros((2, 3), "float32")
    for search in (greedy_search, beam_search):
        out = search(step_fn, state, memory, batch_size=2, start_id=START, end_id=END, max_length=3)
        np.testing.assert_array_equal(out["tokens"], [[2, 2, 2], [2, 2, 2]])
        assert np.all(np.isfinite(out["scores"]))


@pytest.mark.parametrize("grid", [False, True])
def test_attention_of_the_decoded_path(grid):
    decoder = HashDecoder(seed=8, end_bias=1.0, grid=grid)
    state, memory = decoder.inputs(3)
    out = greedy_search(
        decoder.step_fn, state, memory, batch_size=3, start_id=START, end_id=END, max_length=6
    )
    trailing = (2, 3) if grid else (SOURCE_LENGTH,)
    assert out["attention"].shape == (3, 6) + trailing
    attention = np.asarray(out["attention"])
    for row in range(3):
        seq = decoded(out, row)
        _, expected = decoder.replay(state, memory, row, seq)
        np.testing.assert_array_equal(attention[row, : len(seq)], expected)
        assert np.all(attention[row, len(seq) :] == 0)


def test_rejects_bad_max_length():
    decoder = HashDecoder()
    state, memory = decoder.inputs(1)
    with pytest.raises(ValueError, match="max_length=0"):
        greedy_search(
            decoder.step_fn, state, memory, batch_size=1, start_id=START, end_id=END, max_length=0
        )


def test_traces_with_dynamic_batch_and_tensor_max_length_and_saves(tmp_path):
    decoder = HashDecoder(seed=9, end_bias=0.5)
    state, memory = decoder.inputs(3)

    class Greedy(tf.Module):
        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, SOURCE_LENGTH, DEPTH], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
        )
        def decode(self, h, keys, max_length):
            batch_size = tf.shape(h)[0]
            state = {"h": h, "steps": tf.zeros_like(h)}
            memory = {"keys": keys, "mask": tf.ones(tf.shape(keys)[:2], tf.bool)}
            return greedy_search(
                decoder.step_fn,
                state,
                memory,
                batch_size=batch_size,
                start_id=START,
                end_id=END,
                max_length=max_length,
                allowed_fn=forbid_two_after_one_and_third_one,
                hook_state={"ones": tf.zeros_like(h)},
            )

    eager = greedy_search(
        decoder.step_fn,
        state,
        memory,
        batch_size=3,
        start_id=START,
        end_id=END,
        max_length=7,
        allowed_fn=forbid_two_after_one_and_third_one,
        hook_state={"ones": np.zeros(3, "int32")},
    )
    module = Greedy()
    traced = module.decode(state["h"], memory["keys"], tf.constant(7))
    tf.saved_model.save(module, str(tmp_path / "greedy"))
    reloaded = tf.saved_model.load(str(tmp_path / "greedy"))
    restored = reloaded.decode(tf.constant(state["h"]), tf.constant(memory["keys"]), tf.constant(7))
    for result in (traced, restored):
        for key in ("tokens", "lengths", "attention"):
            np.testing.assert_array_equal(result[key], eager[key])
        np.testing.assert_allclose(result["scores"], eager["scores"], rtol=1e-6)
    # Another batch size and max length through the same reloaded signature.
    short = reloaded.decode(
        tf.constant(state["h"][:2]), tf.constant(memory["keys"][:2]), tf.constant(2)
    )
    assert short["tokens"].shape == (2, 2)
    np.testing.assert_array_equal(short["tokens"], np.asarray(eager["tokens"])[:2, :2])


def test_traces_with_static_shapes_in_tf_function():
    decoder = HashDecoder(seed=10)
    state, memory = decoder.inputs(2)
    fn = tf.function(
        lambda s, m: greedy_search(
            decoder.step_fn, s, m, batch_size=2, start_id=START, end_id=END, max_length=5
        ),
        autograph=False,
    )
    traced = fn(state, memory)
    eager = greedy_search(
        decoder.step_fn, state, memory, batch_size=2, start_id=START, end_id=END, max_length=5
    )
    np.testing.assert_array_equal(traced["tokens"], eager["tokens"])
    assert traced["tokens"].shape == (2, 5)
