import json
import random

import pytest
import tensorflow as tf

from zoo.text import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    SymbolTokenizer,
    tokenizer_from_config,
)

TREES = [
    "(S (NP XX XX )NP (VP XX )VP )S",
    "(S (NP XX )NP (VP XX (NP XX XX )NP )VP (. XX ). )S",
    "(S (-LRB- XX )-LRB- (NP XX )NP (, XX ), (VP XX )VP (-RRB- XX )-RRB- )S",
    "(SBARQ (WHNP XX )WHNP (SQ (VP XX )VP )SQ (. XX ). )SBARQ",
    "(s (np xx )np )s",
    "(NP-SBJ (NNP XX )NNP (`` XX )`` ('' XX )'' (: XX ): ($ XX )$ )NP-SBJ",
]


@pytest.fixture(scope="module")
def tokenizer() -> SymbolTokenizer:
    return SymbolTokenizer.build(TREES)


def round_trip(tokenizer, texts):
    ids = tokenizer.tokenize(tf.constant(texts))
    return [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]


def test_exact_round_trip_of_trees(tokenizer):
    assert round_trip(tokenizer, TREES) == TREES


def test_symbols_are_not_normalised(tokenizer):
    words = tokenizer.words(tf.constant(["(NP Café )NP (-LRB- (, ),"])).to_list()
    assert words == [[s.encode() for s in ["(NP", "Café", ")NP", "(-LRB-", "(,", "),"]]]
    # Case matters: "(NP" and "(np" are different symbols.
    assert tokenizer.vocab.index("(NP") != tokenizer.vocab.index("(np")


def test_reserved_ids(tokenizer):
    assert tokenizer.vocab[:4] == list(RESERVED_TOKENS)
    assert (PAD_ID, UNK_ID, START_ID, END_ID) == (0, 1, 2, 3)
    ids = tokenizer.tokenize(tf.constant(TREES))
    assert ids.dtype == tf.int32 and ids.flat_values.numpy().min() >= 4
    # Written reserved tokens get their reserved ids; detokenize drops them.
    ids = tokenizer.tokenize(tf.constant(["[START] (S )S [END] [PAD]"]))
    s_ids = [tokenizer.vocab.index("(S"), tokenizer.vocab.index(")S")]
    assert ids.to_list() == [[START_ID, *s_ids, END_ID, PAD_ID]]
    assert round_trip(tokenizer, ["[START] (S )S [END]"]) == ["(S )S"]


def test_unknown_symbol_gives_unk(tokenizer):
    ids = tokenizer.tokenize(tf.constant(["(S (ADJP XX )ADJP )S"])).to_list()[0]
    assert ids[1] == UNK_ID and ids[3] == UNK_ID and len(ids) == 5
    assert tokenizer.id_to_token(ids).numpy().tolist() == [
        b"(S",
        b"[UNK]",
        b"XX",
        b"[UNK]",
        b")S",
    ]
    assert round_trip(tokenizer, ["(S (ADJP XX )ADJP )S"]) == ["(S XX )S"]


def test_vocabulary_order_is_frequency_then_code_point():
    tokenizer = SymbolTokenizer.build(["b a C", "C a", "a (, b", "[UNK] A"])
    # a: 3, then C and b tie at 2 ("C" < "b"), then the singletons in code point
    # order; the written "[UNK]" is not counted twice.
    assert tokenizer.vocab == [*RESERVED_TOKENS, "a", "C", "b", "(,", "A"]


def test_build_is_deterministic(tokenizer):
    shuffled = TREES * 3
    random.Random(0).shuffle(shuffled)
    assert SymbolTokenizer.build(shuffled).vocab == SymbolTokenizer.build(TREES * 3).vocab
    assert SymbolTokenizer.build(shuffled, batch_size=2).vocab == tokenizer.vocab


def test_vocab_size_caps_the_vocabulary(tokenizer):
    capped = SymbolTokenizer.build(TREES, vocab_size=8)
    assert capped.vocab_size == 8
    assert capped.vocab == tokenizer.vocab[:8]
    assert capped.vocab[4] == "XX"
    with pytest.raises(ValueError, match="vocab_size"):
        SymbolTokenizer.build(TREES, vocab_size=4)


def test_min_count_leaves_rare_symbols_out():
    tokenizer = SymbolTokenizer.build(["a a b", "a b c", "d"], min_count=2)
    assert tokenizer.vocab == [*RESERVED_TOKENS, "a", "b"]
    capped = SymbolTokenizer.build(["a a b", "a b c", "d"], vocab_size=5, min_count=2)
    assert capped.vocab == [*RESERVED_TOKENS, "a"]


def test_empty_inputs(tokenizer):
    ids = tokenizer.tokenize(tf.constant(["", "(S )S"]))
    assert ids.row_lengths().numpy().tolist() == [0, 2]
    assert tokenizer.detokenize(ids).numpy().tolist() == [b"", b"(S )S"]
    none = tokenizer.tokenize(tf.constant([], tf.string))
    assert none.shape.as_list() == [0, None]
    assert tokenizer.detokenize(none).shape == (0,)
    assert SymbolTokenizer.build([]).vocab == list(RESERVED_TOKENS)


def test_rejects_batches_that_are_not_1d(tokenizer):
    with pytest.raises(ValueError, match="shape"):
        tokenizer.tokenize(tf.constant([["(S )S"]]))


def test_methods_trace_in_tf_function(tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def fn(text):
        return tokenizer.detokenize(tokenizer.tokenize(text).to_tensor())

    assert [t.decode() for t in fn(tf.constant(TREES)).numpy()] == TREES


def test_config_save_and_load(tmp_path, tokenizer):
    config = json.loads(json.dumps(tokenizer.get_config()))
    assert config == {"kind": "symbol", "vocab": tokenizer.vocab}
    vocab_path = tokenizer.save(str(tmp_path / "full"))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "vocab.txt").write_text("\n".join(tokenizer.vocab) + "\n", encoding="utf-8")
    for restored in (
        tokenizer_from_config(config),
        SymbolTokenizer.load(str(tmp_path / "full")),
        SymbolTokenizer.load(str(bare)),
        tokenizer_from_config({"kind": "symbol", "vocab_file": vocab_path}),
    ):
        assert isinstance(restored, SymbolTokenizer)
        assert restored.vocab == tokenizer.vocab
        assert round_trip(restored, TREES) == TREES
    with pytest.raises(ValueError, match="kind"):
        SymbolTokenizer.from_config({**config, "kind": "word"})
    with pytest.raises(ValueError, match="lowercase"):
        tokenizer_from_config({**config, "lowercase": True})


class Exported(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, text):
        return {"ids": self.tokenizer.tokenize(text).to_tensor()}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def detokenize(self, ids):
        return {"text": self.tokenizer.detokenize(ids)}


def test_saved_model_round_trip(tmp_path, tokenizer):
    texts = tf.constant([*TREES, "", "(S (ADJP XX )ADJP )S"])
    module = Exported(tokenizer)
    expected = module.tokenize(texts)["ids"].numpy().tolist()
    tf.saved_model.save(
        module,
        str(tmp_path),
        signatures={
            "tokenize": module.tokenize.get_concrete_function(),
            "detokenize": module.detokenize.get_concrete_function(),
        },
    )
    del module
    loaded = tf.saved_model.load(str(tmp_path))
    ids = loaded.signatures["tokenize"](text=texts)["ids"]
    assert ids.numpy().tolist() == expected
    text = loaded.signatures["detokenize"](ids=ids)["text"].numpy().tolist()
    assert [t.decode() for t in text] == [*TREES, "", "(S XX )S"]
    assert loaded.tokenize(tf.constant(["(NP XX )NP"]))["ids"].numpy().tolist() == [
        [tokenizer.vocab.index(s) for s in ["(NP", "XX", ")NP"]]
    ]
