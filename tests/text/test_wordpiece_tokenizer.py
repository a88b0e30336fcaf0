import json
import random

import numpy as np
import pytest
import tensorflow as tf

from tests.text.conftest import GERMAN_SENTENCES
from zoo.text import (
    RESERVED_TOKENS,
    UNK_ID,
    WordPieceTokenizer,
    normalize_python,
    tokenizer_from_config,
)


def round_trip(tokenizer, texts):
    ids = tokenizer.tokenize(tf.constant(texts))
    return [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]


def test_reserved_tokens_have_fixed_ids(wordpiece):
    assert wordpiece.vocab[:4] == list(RESERVED_TOKENS)
    ids = wordpiece.tokenize(tf.constant(["The cat sat on the mat."])).flat_values.numpy()
    assert ids.dtype == np.int32
    assert ids.size > 0 and ids.min() >= 4


def test_vocab_size_is_a_maximum(corpus, wordpiece):
    assert len(wordpiece.vocab) == wordpiece.vocab_size <= 300
    small = WordPieceTokenizer.build(corpus, vocab_size=40)
    assert small.vocab_size <= 40
    assert small.vocab[:4] == list(RESERVED_TOKENS)


def test_round_trip_of_training_sentences(corpus, wordpiece):
    texts = corpus[:50]
    assert round_trip(wordpiece, texts) == [normalize_python(t) for t in texts]


def test_german_round_trip(wordpiece):
    got = round_trip(wordpiece, GERMAN_SENTENCES)
    assert got == [normalize_python(t) for t in GERMAN_SENTENCES]
    assert got[2].startswith("die strasse in koln ist gross ,")


def test_unseen_word_is_cut_into_pieces(wordpiece):
    ids = wordpiece.tokenize(tf.constant(["the gardenbridge"]))
    pieces = [p.decode("utf-8") for p in wordpiece.id_to_token(ids)[0].numpy()]
    assert pieces[0] == "the" and len(pieces) > 2
    assert all(p.startswith("##") for p in pieces[2:])
    assert UNK_ID not in ids.flat_values.numpy()
    assert round_trip(wordpiece, ["the gardenbridge"]) == ["the gardenbridge"]


def test_unknown_character_gives_unk(wordpiece):
    ids = wordpiece.tokenize(tf.constant(["the ωmega cat"])).numpy()[0].tolist()
    assert ids[1] == UNK_ID and len(ids) == 3
    assert round_trip(wordpiece, ["the ωmega cat"]) == ["the cat"]


def test_build_is_deterministic(corpus, wordpiece):
    shuffled = list(corpus)
    random.Random(1).shuffle(shuffled)
    assert WordPieceTokenizer.build(shuffled, vocab_size=300).vocab == wordpiece.vocab


def test_empty_inputs(wordpiece):
    ids = wordpiece.tokenize(tf.constant(["", "cat", "  "]))
    assert ids.row_lengths().numpy().tolist() == [0, 1, 0]
    assert wordpiece.detokenize(ids).numpy().tolist() == [b"", b"cat", b""]
    none = wordpiece.tokenize(tf.constant([], tf.string))
    assert isinstance(none, tf.RaggedTensor) and none.shape.as_list() == [0, None]
    assert wordpiece.detokenize(none).shape == (0,)
    assert wordpiece.detokenize(tf.zeros([0, 5], tf.int32)).shape == (0,)
    assert WordPieceTokenizer.build([], vocab_size=10).vocab == list(RESERVED_TOKENS)


def test_detokenize_dense_drops_special_tokens(wordpiece):
    ids = wordpiece.tokenize(tf.constant(["the small cat"])).to_tensor()[0]
    dense = tf.concat([[2], ids, [UNK_ID, 3, 0, 0]], axis=0)[tf.newaxis]
    assert wordpiece.detokenize(dense).numpy().tolist() == [b"the small cat"]
    assert wordpiece.detokenize(tf.cast(dense, tf.int64)).numpy().tolist() == [b"the small cat"]


def test_id_to_token(wordpiece):
    tokens = wordpiece.id_to_token(tf.constant([[0, 1, 2, 3, -1, 10**6]]))
    assert tokens.numpy()[0, :4].tolist() == [t.encode() for t in RESERVED_TOKENS]
    assert tokens.numpy()[0, 4:].tolist() == [b"[UNK]", b"[UNK]"]


def test_methods_trace_in_tf_function(wordpiece):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def fn(text):
        ids = wordpiece.tokenize(text)
        return ids.to_tensor(), wordpiece.id_to_token(ids).to_tensor(), wordpiece.detokenize(ids)

    ids, pieces, text = fn(tf.constant(["The cat!", ""]))
    assert text.numpy().tolist() == [b"the cat !", b""]
    assert pieces.numpy()[0].tolist() == [b"the", b"cat", b"!"]
    assert ids.dtype == tf.int32


def test_config_save_and_load(tmp_path, wordpiece):
    config = json.loads(json.dumps(wordpiece.get_config()))
    assert config["kind"] == "wordpiece" and config["lowercase"] is True
    vocab_path = wordpiece.save(str(tmp_path))
    for restored in (
        tokenizer_from_config(config),
        WordPieceTokenizer.load(str(tmp_path)),
        tokenizer_from_config({"kind": "wordpiece", "vocab_file": vocab_path}),
    ):
        assert isinstance(restored, WordPieceTokenizer)
        assert restored.vocab == wordpiece.vocab
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines == wordpiece.vocab


def test_invalid_arguments(wordpiece):
    with pytest.raises(ValueError, match="must start with"):
        WordPieceTokenizer(["a", "b"])
    with pytest.raises(ValueError, match="whitespace"):
        WordPieceTokenizer([*RESERVED_TOKENS, "a b"])
    with pytest.raises(ValueError, match="vocab_size"):
        WordPieceTokenizer.build(["a"], vocab_size=4)
    with pytest.raises(ValueError, match="1-D"):
        wordpiece.tokenize(tf.constant("a"))
    with pytest.raises(ValueError, match="kind"):
        tokenizer_from_config({"kind": "bpe", "vocab": []})
