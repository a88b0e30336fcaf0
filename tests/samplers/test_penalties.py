"""GNMT's coverage penalty and n-gram blocking in the samplers, checked by brute force."""

import numpy as np
import pytest
from keras import ops

from tests.samplers.test_beam_search import all_sequences, gnmt_penalty, run_beam
from tests.samplers.test_greedy_search import END, START, HashDecoder, V, decoded
from zoo.samplers import greedy_search, search


class ReadingDecoder:
    """Logits from a table indexed by (step, previous token); each token reads its own
    source positions: the attention is a softmax of a table row indexed by the token fed."""

    def __init__(self, seed=0, positions=5):
        rng = np.random.default_rng(seed)
        self.logits = rng.normal(scale=1.5, size=(8, V, V)).astype("float32")
        self.reads = (rng.normal(scale=3.0, size=(V, positions))).astype("float32")
        self.positions = positions

    def inputs(self, batch_size):
        state = {"t": np.zeros(batch_size, "int32"), "row": np.arange(batch_size, dtype="int32")}
        memory = {"mask": np.ones((batch_size, self.positions), bool)}
        return state, memory

    def step_fn(self, tokens, state, memory):
        t = ops.minimum(state["t"], 7)
        index = (t * V + tokens) * V
        table = ops.reshape(ops.convert_to_tensor(self.logits), (-1,))
        logits = ops.take(table, index[:, None] + ops.arange(V)[None, :])
        logits = logits + ops.cast(state["row"], "float32")[:, None] * 0.3
        attention = ops.softmax(ops.take(ops.convert_to_tensor(self.reads), tokens, axis=0))
        return logits, {"t": state["t"] + 1, "row": state["row"]}, attention

    def replay(self, state, memory, row, tokens):
        prev, log_probs, attentions = START, [], []
        for t, token in enumerate(tokens):
            logits = self.logits[min(t, 7), prev] + row * 0.3
            logits = logits - logits.max()
            log_probs.append(logits[token] - np.log(np.exp(logits).sum()))
            reads = np.exp(self.reads[prev] - self.reads[prev].max())
            attentions.append(reads / reads.sum())
            prev = token
        return np.array(log_probs), np.array(attentions)


def repeats_an_ngram(seq, n):
    grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
    return len(grams) != len(set(grams))


def best_by_brute_force(decoder, state, memory, row, max_length, alpha, beta=0.0, ngram=0):
    ranked = []
    for seq in all_sequences(max_length):
        if ngram and repeats_an_ngram(seq, ngram):
            continue
        log_probs, attentions = decoder.replay(state, memory, row, seq)
        score = log_probs.sum() / gnmt_penalty(len(seq), alpha)
        if beta:
            coverage = np.sum(attentions, axis=0)
            score += beta * np.log(np.clip(coverage, 1e-6, 1.0)).sum()
        ranked.append((score, seq))
    ranked.sort(key=lambda pair: -pair[0])
    assert ranked[0][0] - ranked[1][0] > 1e-4, "ambiguous best sequence: change the seed"
    return ranked[0]


@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_wide_beam_with_coverage_penalty_finds_the_brute_force_best(beta):
    max_length = 4
    decoder = ReadingDecoder(seed=5)
    state, memory = decoder.inputs(3)
    out = run_beam(
        decoder,
        state,
        memory,
        3,
        max_length,
        beam_size=V ** (max_length - 1),
        length_penalty=0.6,
        coverage_penalty=beta,
    )
    plain = run_beam(
        decoder, state, memory, 3, max_length, beam_size=V ** (max_length - 1), length_penalty=0.6
    )
    changed = 0
    for row in range(3):
        score, best = best_by_brute_force(decoder, state, memory, row, max_length, 0.6, beta)
        assert decoded(out, row) == best
        np.testing.assert_allclose(out["scores"][row], score, rtol=1e-4, atol=1e-4)
        changed += decoded(plain, row) != best
    if beta == 2.0:
        assert changed, "a strong coverage penalty changes some row's best output"


def test_the_coverage_mask_leaves_padding_out():
    decoder = ReadingDecoder(seed=5)
    state, memory = decoder.inputs(2)
    kwargs = dict(beam_size=4, length_penalty=0.0, coverage_penalty=1.0)
    everything = run_beam(decoder, state, memory, 2, 4, **kwargs)
    mask = np.ones_like(memory["mask"])
    mask[:, -2:] = False
    masked = run_beam(decoder, state, memory, 2, 4, coverage_mask=mask, **kwargs)
    for row in range(2):
        seq = decoded(masked, row)
        log_probs, attentions = decoder.replay(state, memory, row, seq)
        coverage = np.clip(np.sum(attentions, axis=0)[:-2], 1e-6, 1.0)
        expected = log_probs.sum() + np.log(coverage).sum()
        np.testing.assert_allclose(masked["scores"][row], expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(everything["scores"], masked["scores"])


@pytest.mark.parametrize("ngram", [1, 2])
def test_wide_beam_with_no_repeat_finds_the_best_output_without_repeats(ngram):
    max_length = 5
    decoder = HashDecoder(seed=3, end_bias=-1.0)
    state, memory = decoder.inputs(3)
    out = run_beam(
        decoder,
        state,
        memory,
        3,
        max_length,
        beam_size=V ** (max_length - 1),
        length_penalty=0.6,
        no_repeat_ngram=ngram,
    )
    for row in range(3):
        score, best = best_by_brute_force(decoder, state, memory, row, max_length, 0.6, ngram=ngram)
        assert decoded(out, row) == best and not repeats_an_ngram(best, ngram)
        np.testing.assert_allclose(out["scores"][row], score, rtol=1e-4, atol=1e-4)


def _looping_step(tokens, state, memory):
    """Prefers 1 after 2 and 2 after anything else: 2 1 2 1 2 1 ... never the end."""
    batch = ops.shape(tokens)[0]
    nxt = ops.where(ops.equal(tokens, 2), 1, 2)
    logits = ops.one_hot(nxt, V) * 4.0 + ops.one_hot(ops.full((batch,), END), V) * 1.0
    return logits, state, ops.ones((batch, 3)) / 3.0


@pytest.mark.parametrize("beam_size", [1, 3])
def test_no_repeat_ngram_breaks_a_loop(beam_size):
    state, memory = ops.zeros((2, 1)), ops.zeros((2, 3, 1))
    common = dict(batch_size=2, start_id=START, end_id=END, max_length=10, beam_size=beam_size)
    looping = search(_looping_step, state, memory, **common)
    assert decoded(looping, 0) == (2, 1) * 5  # no end in sight
    blocked = search(_looping_step, state, memory, no_repeat_ngram=3, **common)
    for row in range(2):
        seq = decoded(blocked, row)
        assert not repeats_an_ngram(seq, 3) and seq[-1] == END and len(seq) < 10


def test_greedy_no_repeat_matches_a_numpy_replay():
    decoder = HashDecoder(seed=8, end_bias=-2.0)
    state, memory = decoder.inputs(3)
    out = greedy_search(
        decoder.step_fn,
        state,
        memory,
        batch_size=3,
        start_id=START,
        end_id=END,
        max_length=8,
        no_repeat_ngram=2,
    )
    for row in range(3):
        seq = []
        while len(seq) < 8 and (not seq or seq[-1] != END):
            log_probs, _ = decoder.replay(state, memory, row, tuple(seq) + (0,))
            # The log-probabilities of every next token after `seq`.
            options = []
            for token in range(V):
                lp, _ = decoder.replay(state, memory, row, tuple(seq) + (token,))
                banned = len(seq) >= 1 and (seq[-1], token) in {
                    (seq[i], seq[i + 1]) for i in range(len(seq) - 1)
                }
                options.append(-1e9 if banned else lp[-1])
            seq.append(int(np.argmax(options)))
        assert decoded(out, row) == tuple(seq)
