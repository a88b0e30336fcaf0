"""Beam search against stub decoders, checked by brute-force enumeration."""

import numpy as np
import pytest
import tensorflow as tf

from tests.samplers.test_greedy_search import (
    DEPTH,
    END,
    SOURCE_LENGTH,
    START,
    HashDecoder,
    MarkovDecoder,
    V,
    check_padding,
    decoded,
    forbid_two_after_one_and_third_one,
    forbid_two_after_one_and_third_one_np,
)
from zoo.samplers import beam_search, greedy_search


def gnmt_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def all_sequences(max_length, allowed=None):
    """Every output: ends at the first end token or at `max_length` tokens."""
    out = []

    def extend(prefix):
        for token in range(V):
            if allowed is not None and not allowed(prefix, token):
                continue
            seq = prefix + (token,)
            if token == END or len(seq) == max_length:
                out.append(seq)
            else:
                extend(seq)

    extend(())
    return out


def brute_force(decoder, state, memory, row, max_length, alpha=0.0, allowed=None):
    """All outputs of one row ranked by `sum(log p) / lp(len)`, best first."""
    ranked = []
    for seq in all_sequences(max_length, allowed):
        log_probs, _ = decoder.replay(state, memory, row, seq)
        ranked.append((log_probs.sum() / gnmt_penalty(len(seq), alpha), seq))
    ranked.sort(key=lambda pair: -pair[0])
    assert ranked[0][0] - ranked[1][0] > 1e-4, "ambiguous best sequence: change the seed"
    return ranked


def run_beam(decoder, state, memory, batch_size, max_length, step_fn=None, **kwargs):
    return beam_search(
        step_fn or decoder.step_fn,
        state,
        memory,
        batch_size=batch_size,
        start_id=START,
        end_id=END,
        max_length=max_length,
        **kwargs,
    )


def test_beam_size_one_equals_greedy():
    decoder = HashDecoder(seed=11, end_bias=0.5)
    state, memory = decoder.inputs(5)
    beam = run_beam(decoder, state, memory, 5, 7, beam_size=1)
    greedy = greedy_search(
        decoder.step_fn, state, memory, batch_size=5, start_id=START, end_id=END, max_length=7
    )
    np.testing.assert_array_equal(beam["tokens"], greedy["tokens"])
    np.testing.assert_array_equal(beam["lengths"], greedy["lengths"])
    np.testing.assert_allclose(beam["scores"], greedy["scores"], rtol=1e-6)
    np.testing.assert_array_equal(beam["attention"], greedy["attention"])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_finds_the_brute_force_best(alpha):
    max_length = 4
    decoder = HashDecoder(seed=12, end_bias=0.3)
    state, memory = decoder.inputs(3)
    out = run_beam(
        decoder, state, memory, 3, max_length, beam_size=V ** (max_length - 1), length_penalty=alpha
    )
    for row in range(3):
        best_score, best = brute_force(decoder, state, memory, row, max_length, alpha)[0]
        assert decoded(out, row) == best
        np.testing.assert_allclose(out["scores"][row], best_score, rtol=1e-5, atol=1e-5)


def test_beam_beats_greedy_when_greedy_is_not_optimal():
    # Step 0: token 1 (0.55) beats the end token route via token 2 (0.45);
    # but after 1 every token is equally likely, after 2 the end is certain.
    probs = np.full((3, V, V), 0.25)
    probs[0, START] = [1e-3, 0.55, 0.45, 1e-3]
    probs[1, 2] = [1e-3, 1e-3, 1e-3, 0.99]
    decoder = MarkovDecoder(probs)
    state, memory = decoder.inputs(2)
    greedy = greedy_search(
        decoder.step_fn, state, memory, batch_size=2, start_id=START, end_id=END, max_length=3
    )
    beam = run_beam(decoder, state, memory, 2, 3, beam_size=2)
    assert decoded(greedy, 0)[0] == 1
    assert decoded(beam, 0) == (2, END)
    log_probs, _ = decoder.replay(state, memory, 0, (2, END))
    np.testing.assert_allclose(beam["scores"], [log_probs.sum()] * 2, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(beam["scores"]) > np.asarray(greedy["scores"]))


def test_finished_beams_are_frozen_with_their_score_and_length():
    max_length, beam_size, alpha = 6, 3, 0.6
    decoder = HashDecoder(seed=13, end_bias=1.0)
    state, memory = decoder.inputs(4)
    out = run_beam(decoder, state, memory, 4, max_length, beam_size=beam_size, length_penalty=alpha)
    beam_tokens, beam_lengths = np.asarray(out["beam_tokens"]), np.asarray(out["beam_lengths"])
    beam_scores = np.asarray(out["beam_scores"])
    assert beam_tokens.shape == (4, beam_size, max_length)
    assert np.all(np.diff(beam_scores, axis=1) <= 0), "beams must be sorted best first"
    assert np.any(beam_lengths < max_length - 2), "some beams should end early and stay frozen"
    for row in range(4):
        sequences = set()
        for k in range(beam_size):
            length = int(beam_lengths[row, k])
            check_padding(beam_tokens[row, k], length, max_length)
            seq = tuple(int(t) for t in beam_tokens[row, k, : min(length + 1, max_length)])
            sequences.add(seq)
            log_probs, _ = decoder.replay(state, memory, row, seq)
            expected = log_probs.sum() / gnmt_penalty(len(seq), alpha)
            np.testing.assert_allclose(beam_scores[row, k], expected, rtol=1e-5, atol=1e-5)
        assert len(sequences) == beam_size, "no duplicate hypotheses"
        np.testing.assert_array_equal(out["tokens"][row], beam_tokens[row, 0])
        assert out["lengths"][row] == beam_lengths[row, 0]


def test_max_length_respected_when_end_never_likely():
    decoder = HashDecoder(seed=14, end_bias=-30.0)
    state, memory = decoder.inputs(2)
    for max_length in (1, 4):
        out = run_beam(decoder, state, memory, 2, max_length, beam_size=3, length_penalty=0.6)
        assert out["tokens"].shape == (2, max_length)
        np.testing.assert_array_equal(out["lengths"], [max_length] * 2)
        np.testing.assert_array_equal(out["beam_lengths"], np.full((2, 3), max_length))
        assert END not in np.asarray(out["beam_tokens"])


def test_stops_early_when_every_beam_has_ended():
    decoder = HashDecoder(seed=15, end_bias=30.0)
    calls = []

    def counting_step(tokens, state, memory):
        calls.append(1)
        return decoder.step_fn(tokens, state, memory)

    state, memory = decoder.inputs(2)
    out = beam_search(
        counting_step,
        state,
        memory,
        batch_size=2,
        start_id=START,
        end_id=END,
        max_length=20,
        beam_size=2,
    )
    assert len(calls) <= 3
    np.testing.assert_array_equal(out["lengths"], [0, 0])


def counted(step_fn):
    """`step_fn` and a list that grows by one at each call."""
    calls = []

    def counting_step(tokens, state, memory):
        calls.append(1)
        return step_fn(tokens, state, memory)

    return counting_step, calls


def both_ways(decoder, state, memory, batch_size, max_length, **kwargs):
    """Beam search with `stop_at_best` False and True: `(outputs, step calls)` of each."""
    outs, calls = {}, {}
    for stop in (False, True):
        step_fn, calls[stop] = counted(decoder.step_fn)
        outs[stop] = run_beam(
            decoder,
            state,
            memory,
            batch_size,
            max_length,
            step_fn=step_fn,
            beam_size=3,
            stop_at_best=stop,
            **kwargs,
        )
    return outs, calls


def test_stop_at_best_stops_once_the_best_has_ended():
    # The end token first is the best output (0.9); the other beams live on,
    # every later token as likely, and never end within `max_length`.
    probs = np.full((2, V, V), 0.3)
    probs[:, :, END] = 1e-3
    probs[0, START] = [1e-3, 0.05, 0.05, 0.9]
    decoder = MarkovDecoder(probs)
    state, memory = decoder.inputs(2)
    outs, calls = both_ways(decoder, state, memory, 2, 12)
    assert len(calls[False]) == 12
    assert len(calls[True]) == 1, "the first step settles it: nothing can overtake 0.9"
    best, _ = decoder.replay(state, memory, 0, (END,))
    for stop in (False, True):
        assert decoded(outs[stop], 0) == (END,)
        np.testing.assert_allclose(outs[stop]["scores"], [best.sum()] * 2, rtol=1e-5)
    np.testing.assert_array_equal(outs[True]["tokens"], outs[False]["tokens"])
    np.testing.assert_array_equal(outs[True]["lengths"], [0, 0])


@pytest.mark.parametrize("constrained", [False, True])
def test_stop_at_best_returns_what_the_full_search_returns(constrained):
    hooks = {}
    if constrained:
        hooks = {
            "allowed_fn": forbid_two_after_one_and_third_one,
            "hook_state": {"ones": np.zeros(6, "int32")},
        }
    saved = 0
    for seed in range(8):
        decoder = HashDecoder(seed=40 + seed, end_bias=0.5)
        state, memory = decoder.inputs(6, seed=seed)
        outs, calls = both_ways(decoder, state, memory, 6, 10, **hooks)
        for key in ("tokens", "lengths", "attention"):
            np.testing.assert_array_equal(outs[True][key], outs[False][key], err_msg=key)
        np.testing.assert_array_equal(outs[True]["scores"], outs[False]["scores"])
        assert len(calls[True]) <= len(calls[False])
        saved += len(calls[False]) - len(calls[True])
    assert saved > 0, "some searches should have ended before all their beams did"


def test_stop_at_best_refuses_penalties():
    decoder = HashDecoder()
    state, memory = decoder.inputs(1)
    with pytest.raises(ValueError, match="length_penalty=0.6"):
        run_beam(decoder, state, memory, 1, 3, length_penalty=0.6, stop_at_best=True)
    with pytest.raises(ValueError, match="coverage_penalty=0.2"):
        run_beam(decoder, state, memory, 1, 3, coverage_penalty=0.2, stop_at_best=True)


def test_allowed_fn_masking_equals_brute_force_over_allowed_sequences():
    max_length = 5
    bias = np.zeros((V, V))
    bias[:, 1] += 2.0
    bias[1, 2] += 5.0
    decoder = HashDecoder(seed=16, bias=bias)
    state, memory = decoder.inputs(3)
    out = run_beam(
        decoder,
        state,
        memory,
        3,
        max_length,
        beam_size=V ** (max_length - 1),
        allowed_fn=forbid_two_after_one_and_third_one,
        hook_state={"ones": np.zeros(3, "int32")},
    )
    free = run_beam(decoder, state, memory, 3, max_length, beam_size=8)
    assert any(1 in decoded(free, row) and 2 in decoded(free, row) for row in range(3))
    for row in range(3):
        ranked = brute_force(
            decoder, state, memory, row, max_length, allowed=forbid_two_after_one_and_third_one_np
        )
        assert decoded(out, row) == ranked[0][1]
        np.testing.assert_allclose(out["scores"][row], ranked[0][0], rtol=1e-5, atol=1e-5)
        for k in range(8):  # every real hypothesis in the beam obeys the hook
            length = int(out["beam_lengths"][row, k])
            seq = tuple(int(t) for t in out["beam_tokens"][row, k, : min(length + 1, max_length)])
            assert all(
                forbid_two_after_one_and_third_one_np(seq[:i], seq[i]) for i in range(len(seq))
            )


@pytest.mark.parametrize("grid", [False, True])
def test_attention_of_the_chosen_beam(grid):
    max_length = 6
    decoder = HashDecoder(seed=22, end_bias=0.8, grid=grid)
    state, memory = decoder.inputs(3)
    out = run_beam(decoder, state, memory, 3, max_length, beam_size=3, length_penalty=0.6)
    greedy = greedy_search(
        decoder.step_fn, state, memory, batch_size=3, start_id=START, end_id=END, max_length=6
    )
    # The chosen beam must start off the greedy path (it was not beam 0 at
    # step 0), so its attention history had to follow the reordering.
    assert any(
        decoded(out, row)[0] != decoded(greedy, row)[0] and len(decoded(out, row)) >= 2
        for row in range(3)
    )
    trailing = (2, 3) if grid else (SOURCE_LENGTH,)
    assert out["attention"].shape == (3, max_length) + trailing
    attention = np.asarray(out["attention"])
    for row in range(3):
        seq = decoded(out, row)
        _, expected = decoder.replay(state, memory, row, seq)
        np.testing.assert_array_equal(attention[row, : len(seq)], expected)
        assert np.all(attention[row, len(seq) :] == 0)


def test_length_penalty_changes_the_ranking_as_gnmt_says():
    # Ending at once scores log 0.5 = -0.69; `1 1 <end>` scores
    # log(0.45 * 0.9 * 0.9) = -1.01, so it wins only once divided by
    # lp(3) = (8 / 6) ** alpha with alpha = 2 (-0.57 > -0.69).
    probs = np.full((3, V, V), 0.01)
    probs[0, START] = [0.025, 0.45, 0.025, 0.5]
    probs[1, 1] = [0.0, 0.9, 0.05, 0.05]
    probs[2, 1] = [0.0, 0.05, 0.05, 0.9]
    decoder = MarkovDecoder(probs + 1e-6)
    state, memory = decoder.inputs(1)
    short_score = decoder.replay(state, memory, 0, (END,))[0].sum()
    long_score = decoder.replay(state, memory, 0, (1, 1, END))[0].sum()
    for alpha, expected_seq, expected_score in [
        (0.0, (END,), short_score),
        (1.0, (END,), short_score / gnmt_penalty(1, 1.0)),
        (2.0, (1, 1, END), long_score / gnmt_penalty(3, 2.0)),
    ]:
        out = run_beam(decoder, state, memory, 1, 3, beam_size=4, length_penalty=alpha)
        assert decoded(out, 0) == expected_seq
        np.testing.assert_allclose(out["scores"][0], expected_score, rtol=1e-5, atol=1e-5)
        assert brute_force(decoder, state, memory, 0, 3, alpha)[0][1] == expected_seq


def test_rejects_bad_arguments():
    decoder = HashDecoder()
    state, memory = decoder.inputs(1)
    with pytest.raises(ValueError, match="beam_size=0"):
        run_beam(decoder, state, memory, 1, 3, beam_size=0)
    with pytest.raises(ValueError, match="max_length=0"):
        run_beam(decoder, state, memory, 1, 0)


def test_traces_with_dynamic_shapes_and_saves(tmp_path):
    decoder = HashDecoder(seed=18, end_bias=0.5)
    state, memory = decoder.inputs(3)
    specs = [
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None, SOURCE_LENGTH, DEPTH], tf.float32),
        tf.TensorSpec([], tf.int32),
    ]

    def decode(h, keys, max_length, beam_size):
        return beam_search(
            decoder.step_fn,
            {"h": h, "steps": tf.zeros_like(h)},
            {"keys": keys, "mask": tf.ones(tf.shape(keys)[:2], tf.bool)},
            batch_size=tf.shape(h)[0],
            start_id=START,
            end_id=END,
            max_length=max_length,
            beam_size=beam_size,
            length_penalty=0.6,
            allowed_fn=forbid_two_after_one_and_third_one,
            hook_state={"ones": tf.zeros_like(h)},
        )

    class Beam(tf.Module):
        @tf.function(autograph=False, input_signature=specs)
        def beam3(self, h, keys, max_length):
            return decode(h, keys, max_length, 3)

        @tf.function(autograph=False, input_signature=specs + [tf.TensorSpec([], tf.int32)])
        def beam_any(self, h, keys, max_length, beam_size):
            return decode(h, keys, max_length, beam_size)

    eager = decode(tf.constant(state["h"]), tf.constant(memory["keys"]), 6, 3)
    module = Beam()
    tf.saved_model.save(module, str(tmp_path / "beam"))
    reloaded = tf.saved_model.load(str(tmp_path / "beam"))
    args = (tf.constant(state["h"]), tf.constant(memory["keys"]), tf.constant(6))
    results = [
        module.beam3(*args),
        module.beam_any(*args, tf.constant(3)),
        reloaded.beam3(*args),
        reloaded.beam_any(*args, tf.constant(3)),
    ]
    for result in results:
        for key in ("tokens", "lengths", "attention", "beam_tokens", "beam_lengths"):
            np.testing.assert_array_equal(result[key], eager[key])
        np.testing.assert_allclose(result["beam_scores"], eager["beam_scores"], rtol=1e-6)
    wide = reloaded.beam_any(*args, tf.constant(5))
    assert wide["beam_tokens"].shape == (3, 5, 6)
    assert np.all(np.asarray(wide["scores"]) >= np.asarray(eager["scores"]) - 1e-6)


def test_traces_with_static_shapes_in_tf_function():
    decoder = HashDecoder(seed=19)
    state, memory = decoder.inputs(2)
    fn = tf.function(
        lambda s, m: run_beam(decoder, s, m, 2, 5, beam_size=3, length_penalty=1.0), autograph=False
    )
    traced = fn(state, memory)
    eager = run_beam(decoder, state, memory, 2, 5, beam_size=3, length_penalty=1.0)
    np.testing.assert_array_equal(traced["beam_tokens"], eager["beam_tokens"])
    assert traced["beam_tokens"].shape == (2, 3, 5)
    assert traced["attention"].shape == (2, 5, SOURCE_LENGTH)


def test_memory_is_tiled_not_reordered():
    # One (B, S, D) memory entry per sequence: every beam must see its own sequence's memory.
    decoder = HashDecoder(seed=20)
    state, memory = decoder.inputs(2)
    seen = []

    def step_fn(tokens, state, memory):
        seen.append(np.asarray(memory["keys"]))
        return decoder.step_fn(tokens, state, memory)

    beam_search(
        step_fn, state, memory, batch_size=2, start_id=START, end_id=END, max_length=3, beam_size=3
    )
    for keys in seen:
        np.testing.assert_array_equal(keys, np.repeat(memory["keys"], 3, axis=0))
    assert DEPTH == keys.shape[-1]
