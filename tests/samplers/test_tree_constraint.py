"""TreeConstraint with greedy and beam search over stub decoders; `is_well_formed` is the oracle."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo.data.treebank import is_well_formed
from zoo.samplers import TreeConstraint, beam_search, greedy_search

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[START]",
    "[END]",
    "XX",
    "(S",
    ")S",
    "(NP",
    ")NP",
    "(VP",
    ")VP",
    "(PP",
    ")PP",
]
ID = {token: index for index, token in enumerate(VOCAB)}
V, START, END = len(VOCAB), ID["[START]"], ID["[END]"]
OPENS = {"(S", "(NP", "(VP", "(PP"}
HASH_MOD = 10007


class RandomDecoder:
    """Logits from a seeded random table indexed by a running hash of the history.

    Each row may prefer one token (`decode(..., prefer=[...])`): its logit
    gets `strength` more at every step, pushing the decoder towards an
    invalid sequence (always `)NP`, always `XX`...). The preference is part
    of the decoder state, so beam search tiles and reorders it with the rest.
    """

    def __init__(self, seed, strength=20.0, table_size=97):
        rng = np.random.default_rng(seed)
        self.table = rng.normal(scale=3.0, size=(table_size, V)).astype("float32")
        self.strength = strength

    def step_fn(self, tokens, state, memory):
        h = (state["h"] * 31 + tokens + 1) % HASH_MOD
        logits = ops.take(self.table, h % self.table.shape[0], axis=0)
        preferred = ops.equal(ops.arange(V, dtype="int32")[None, :], state["prefer"][:, None])
        logits = logits + self.strength * ops.cast(preferred, "float32")
        return logits, {"h": h, "prefer": state["prefer"]}, memory


def decode(decoder, n_words, max_length, *, beam_size=None, constraint=None, prefer=None):
    """Runs a sampler with the constraint; `max_length` is one budget per row (or one for all)."""
    constraint = constraint or TreeConstraint(VOCAB)
    n_words = np.asarray(n_words, "int32")
    batch_size = len(n_words)
    row_max = np.broadcast_to(np.asarray(max_length, "int32"), (batch_size,))
    prefer = [-1] * batch_size if prefer is None else [ID[token] for token in prefer]
    kwargs = dict(
        batch_size=batch_size,
        start_id=START,
        end_id=END,
        max_length=int(row_max.max()),
        allowed_fn=constraint.allowed_fn,
        hook_state=constraint.initial_state(n_words, row_max),
    )
    state = {"h": np.arange(batch_size, dtype="int32") * 7 + 1, "prefer": np.int32(prefer)}
    memory = np.zeros((batch_size, 2), "float32")
    if beam_size is None:
        out = greedy_search(decoder.step_fn, state, memory, **kwargs)
    else:
        out = beam_search(decoder.step_fn, state, memory, beam_size=beam_size, **kwargs)
    return {key: ops.convert_to_numpy(value) for key, value in out.items()}, row_max


def assert_tree(tokens, length, n_words, budget):
    """One output row is a tree over `n_words` words, then the end token, within `budget`."""
    assert length < len(tokens) and tokens[length] == END, tokens
    assert length + 1 <= budget
    seq = [VOCAB[t] for t in tokens[:length]]
    if n_words == 0:
        assert seq == []
    else:
        assert is_well_formed(seq, int(n_words)), seq


def assert_all_trees(out, n_words, row_max):
    for b, n in enumerate(n_words):
        assert_tree(out["tokens"][b], out["lengths"][b], n, row_max[b])
    if "beam_tokens" in out:
        # Every real hypothesis, not only the best: a beam whose hook state
        # were not reordered with it would break here.
        for b, n in enumerate(n_words):
            for k in range(out["beam_tokens"].shape[1]):
                if out["beam_scores"][b, k] > -1e8:
                    assert_tree(out["beam_tokens"][b, k], out["beam_lengths"][b, k], n, row_max[b])


N_WORDS = list(range(1, 13))
RANDOM_BUDGETS = [3 * n + 5 for n in N_WORDS]
ADVERSARIES = [")NP", "XX", "[END]", "[PAD]", "(NP", ")S"]


# One batch per run: a run costs about the same for 12 rows as for 72.
@pytest.mark.parametrize("beam_size", [None, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_logits_always_give_well_formed_trees(seed, beam_size):
    n_words, budgets = N_WORDS * 3, RANDOM_BUDGETS * 3  # three random streams per length
    out, row_max = decode(RandomDecoder(seed), n_words, budgets, beam_size=beam_size)
    assert_all_trees(out, n_words, row_max)


@pytest.mark.parametrize("beam_size", [None, 4])
def test_logits_preferring_invalid_sequences_still_give_trees(beam_size):
    prefer = [token for token in ADVERSARIES for _ in N_WORDS]
    n_words, budgets = N_WORDS * len(ADVERSARIES), RANDOM_BUDGETS * len(ADVERSARIES)
    out, row_max = decode(RandomDecoder(3), n_words, budgets, beam_size=beam_size, prefer=prefer)
    assert_all_trees(out, n_words, row_max)


def test_max_depth_bounds_the_open_brackets():
    constraint = TreeConstraint(VOCAB, max_depth=2)
    out, row_max = decode(
        RandomDecoder(4), N_WORDS, 40, beam_size=4, constraint=constraint, prefer=["(VP"] * 12
    )
    assert_all_trees(out, N_WORDS, row_max)
    for b in range(len(N_WORDS)):
        depth = np.cumsum([(VOCAB[t][0] == "(") - (VOCAB[t][0] == ")") for t in out["tokens"][b]])
        assert depth.max() == 2  # the decoder wants to open, it may only go two deep


@pytest.mark.parametrize("beam_size", [None, 4])
def test_tight_max_length_gives_one_flat_bracket(beam_size):
    n_words = [1, 2, 3, 5, 8]
    budgets = [n + 3 for n in n_words]
    out, _ = decode(RandomDecoder(5), n_words, budgets, beam_size=beam_size, prefer=["(NP"] * 5)
    for b, n in enumerate(n_words):
        seq = [VOCAB[t] for t in out["tokens"][b, : out["lengths"][b]]]
        assert seq[0] in OPENS
        assert seq == [seq[0]] + ["XX"] * n + [")" + seq[0][1:]]
        assert out["tokens"][b, n + 2] == END


def test_tight_scalar_max_length():
    out, _ = decode(RandomDecoder(6), [4], 7, prefer=["(S"])
    assert [VOCAB[t] for t in out["tokens"][0]] == ["(S", "XX", "XX", "XX", "XX", ")S", "[END]"]


@pytest.mark.parametrize("beam_size", [None, 4])
def test_no_words_or_no_room_gives_only_the_end_token(beam_size):
    # n_words == 0, then rows whose budget is below n_words + 3.
    n_words = [0, 2, 0, 3, 1]
    budgets = [9, 4, 1, 5, 9]
    out, _ = decode(RandomDecoder(7), n_words, budgets, beam_size=beam_size, prefer=["XX"] * 5)
    np.testing.assert_array_equal(out["lengths"], [0, 0, 0, 0, 2 + 1])
    np.testing.assert_array_equal(out["tokens"][[0, 1, 2, 3], 0], [END] * 4)
    assert_tree(out["tokens"][4], out["lengths"][4], 1, 9)


# --- the allowed set, token by token -------------------------------------------


def allowed_after(prefix, n_words, max_length, constraint=None):
    """The set of tokens the constraint allows after `prefix` (eager, one row)."""
    constraint = constraint or TreeConstraint(VOCAB)
    state = constraint.initial_state(np.array([n_words], "int32"), max_length)
    for step, token in enumerate(["[START]"] + list(prefix)):
        allowed, state = constraint.allowed_fn(
            ops.convert_to_tensor(step, "int32"), np.array([ID[token]], "int32"), state
        )
    return {VOCAB[i] for i in np.flatnonzero(ops.convert_to_numpy(allowed)[0])}


@pytest.mark.parametrize(
    "prefix, n_words, max_length, expected",
    [
        ([], 3, 50, OPENS),
        ([], 3, 6, OPENS),  # (X XX XX XX )X [END] is 6 tokens
        ([], 3, 5, {"[END]"}),  # no tree fits: the end token, never nothing
        ([], 0, 50, {"[END]"}),
        ("(S (NP XX".split(), 3, 50, OPENS | {"XX", ")NP"}),
        # After `(S (NP XX`: 3 tokens used; an open needs 1 + 2 XX + 3 closes + end.
        ("(S (NP XX".split(), 3, 10, OPENS | {"XX", ")NP"}),
        ("(S (NP XX".split(), 3, 9, {"XX", ")NP"}),
        # A placeholder needs 1 + 1 XX + 2 closes + end: 8 is the least that fits.
        ("(S (NP XX".split(), 3, 8, {"XX", ")NP"}),
        ("(S (NP XX".split(), 1, 50, {")NP"}),
        ("(S (NP".split(), 3, 50, OPENS | {"XX"}),
        ("(S (NP XX )NP".split(), 2, 50, OPENS | {"XX"}),
        ("(S (NP XX )NP".split(), 1, 50, {")S"}),
        ("(S XX".split(), 1, 50, {")S"}),
        ("(S XX".split(), 2, 50, OPENS | {"XX"}),
        ("(S XX )S".split(), 1, 50, {"[END]"}),
        ("(S XX )S [END]".split(), 1, 50, {"[END]"}),
        ("(S XX )S [END] [END] [END]".split(), 1, 50, {"[END]"}),
        ("(S (VP (PP XX".split(), 1, 50, {")PP"}),
        ("(S (VP (PP XX )PP".split(), 1, 50, {")VP"}),
    ],
)
def test_allowed_set_after_prefix(prefix, n_words, max_length, expected):
    assert allowed_after(prefix, n_words, max_length) == expected


def test_allowed_set_at_max_depth():
    constraint = TreeConstraint(VOCAB, max_depth=2)
    assert allowed_after(["(S", "(NP"], 3, 50, constraint) == {"XX"}
    assert allowed_after(["(S", "(NP", "XX", ")NP"], 3, 50, constraint) == OPENS | {"XX"}


def oracle(prefix, n_words, max_length, max_depth):
    """The tokens after `prefix` from which a well-formed tree can still be finished in time.

    The shortest finish writes the missing placeholders into the innermost
    bracket, then closes every open bracket; `is_well_formed` judges it.
    """
    if "[END]" in prefix:
        return {"[END]"}
    expected = set()
    if n_words > 0 and is_well_formed(prefix, n_words) and len(prefix) + 1 <= max_length:
        expected.add("[END]")
    for token in VOCAB:
        if token in ("[END]",) or token not in OPENS | {"XX"} and not token.startswith(")"):
            continue
        candidate = prefix + [token]
        stack = []
        for t in candidate:
            if t.startswith("("):
                stack.append(t[1:])
            elif t.startswith(")") and stack:
                stack.pop()
        if len(stack) > max_depth:
            continue
        finish = ["XX"] * (n_words - candidate.count("XX")) + [")" + label for label in stack[::-1]]
        full = candidate + finish
        if n_words > 0 and is_well_formed(full, n_words) and len(full) + 1 <= max_length:
            expected.add(token)
    return expected or {"[END]"}


@pytest.mark.parametrize("max_depth", [64, 3])
def test_allowed_sets_match_the_oracle_along_random_walks(max_depth):
    """Walks many rows through random allowed tokens, checking every step's whole allowed set."""
    rng = np.random.default_rng(max_depth)
    constraint = TreeConstraint(VOCAB, max_depth=max_depth)
    n_words = rng.integers(0, 9, size=24).astype("int32")
    budgets = (n_words + rng.integers(2, 12, size=24)).astype("int32")
    state = constraint.initial_state(n_words, budgets)
    prefixes = [[] for _ in n_words]
    tokens = np.full(len(n_words), START, "int32")
    for step in range(int(budgets.max()) + 2):
        allowed, state = constraint.allowed_fn(ops.convert_to_tensor(step, "int32"), tokens, state)
        allowed = ops.convert_to_numpy(allowed)
        for b, n in enumerate(n_words):
            got = {VOCAB[i] for i in np.flatnonzero(allowed[b])}
            assert got == oracle(prefixes[b], int(n), int(budgets[b]), max_depth), (
                prefixes[b],
                n,
                budgets[b],
            )
            tokens[b] = rng.choice(np.flatnonzero(allowed[b]))
            prefixes[b].append(VOCAB[tokens[b]])
    for b, n in enumerate(n_words):
        ended = prefixes[b].index("[END]")
        assert ended + 1 <= budgets[b]
        if n == 0 or budgets[b] < n + 3:
            assert ended == 0
        else:
            assert is_well_formed(prefixes[b][:ended], int(n))


# --- graph mode, API -------------------------------------------------------------------


def test_traces_with_unknown_batch_in_tf_function():
    constraint = TreeConstraint(VOCAB)
    decoder = RandomDecoder(8)
    specs = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)]

    def run(n_words, max_length, beam_size):
        batch_size = tf.shape(n_words)[0]
        kwargs = dict(
            batch_size=batch_size,
            start_id=START,
            end_id=END,
            max_length=max_length,
            allowed_fn=constraint.allowed_fn,
            hook_state=constraint.initial_state(n_words, max_length),
        )
        state = {"h": tf.range(batch_size) * 7 + 1, "prefer": tf.fill([batch_size], ID[")S"])}
        memory = tf.zeros(tf.stack([batch_size, 2]))
        if beam_size is None:
            return greedy_search(decoder.step_fn, state, memory, **kwargs)
        return beam_search(decoder.step_fn, state, memory, beam_size=beam_size, **kwargs)

    greedy = tf.function(lambda n, m: run(n, m, None), autograph=False, input_signature=specs)
    beam = tf.function(lambda n, m: run(n, m, 3), autograph=False, input_signature=specs)
    concrete = greedy.get_concrete_function()
    assert concrete.structured_outputs["tokens"].shape.as_list()[0] is None
    n_words = np.array([1, 4, 7, 0], "int32")
    for fn in (greedy, beam):
        out = {k: np.asarray(v) for k, v in fn(tf.constant(n_words), tf.constant(26)).items()}
        assert_all_trees(out, n_words, [26] * len(n_words))


def test_state_has_leading_batch_dimension():
    constraint = TreeConstraint(VOCAB, max_depth=5)
    state = constraint.initial_state(np.array([2, 3, 4], "int32"), 10)
    for value in state.values():
        assert value.shape[0] == 3
    assert tuple(state["stack"].shape) == (3, 5)
    assert constraint.labels == ["S", "NP", "VP", "PP"]
    np.testing.assert_array_equal(constraint.token_label[[5, 6, 11, 12, 4]], [0, 0, 3, 3, -1])


def test_closing_label_without_opening_is_never_allowed():
    vocab = VOCAB + [")ADJP"]
    constraint = TreeConstraint(vocab)
    assert constraint.token_kind[-1] == 0


@pytest.mark.parametrize(
    "vocab, kwargs, match",
    [
        (["[END]", "(S", ")S"], {}, "pos_placeholder"),
        (["XX", "(S", ")S"], {}, "end_token"),
        (["XX", "[END]", ")S"], {}, "opening bracket"),
        (VOCAB, {"max_depth": 0}, "max_depth"),
    ],
)
def test_bad_arguments_raise(vocab, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TreeConstraint(vocab, **kwargs)
