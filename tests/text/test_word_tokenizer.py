import json
import random

import pytest
import tensorflow as tf

from tests.text.conftest import GERMAN_SENTENCES
from zoo.text import RESERVED_TOKENS, UNK_ID, WordTokenizer, normalize_python, tokenizer_from_config


def round_trip(tokenizer, texts):
    ids = tokenizer.tokenize(tf.constant(texts))
    return [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]


def test_vocabulary_is_most_frequent_words_ties_alphabetical():
    tokenizer = WordTokenizer.build(["b a c", "c a", "A!"], vocab_size=6)
    # a: 3, c: 2, then b and ! tie at 1: "!" sorts before "b".
    assert tokenizer.vocab == [*RESERVED_TOKENS, "a", "c"]
    tokenizer = WordTokenizer.build(["b a c", "c a", "A!"], vocab_size=7)
    assert tokenizer.vocab == [*RESERVED_TOKENS, "a", "c", "!"]


def test_vocab_size_and_reserved_ids(word_tokenizer):
    assert word_tokenizer.vocab_size == len(word_tokenizer.vocab) <= 200
    assert word_tokenizer.vocab[:4] == list(RESERVED_TOKENS)
    ids = word_tokenizer.tokenize(tf.constant(["The cat sat."]))
    assert ids.dtype == tf.int32 and ids.flat_values.numpy().min() >= 4


def test_round_trip_of_training_sentences(corpus, word_tokenizer):
    texts = corpus[:50] + GERMAN_SENTENCES
    assert round_trip(word_tokenizer, texts) == [normalize_python(t) for t in texts]


def test_unknown_word_gives_unk(word_tokenizer):
    ids = word_tokenizer.tokenize(tf.constant(["the zebra sat"])).numpy()[0].tolist()
    assert ids[1] == UNK_ID and len(ids) == 3
    assert word_tokenizer.id_to_token(ids).numpy().tolist() == [b"the", b"[UNK]", b"sat"]
    assert round_trip(word_tokenizer, ["the zebra sat"]) == ["the sat"]


def test_build_is_deterministic(corpus, word_tokenizer):
    shuffled = list(corpus)
    random.Random(2).shuffle(shuffled)
    assert WordTokenizer.build(shuffled, vocab_size=200).vocab == word_tokenizer.vocab


def test_empty_inputs(word_tokenizer):
    ids = word_tokenizer.tokenize(tf.constant(["", "cat"]))
    assert ids.row_lengths().numpy().tolist() == [0, 1]
    assert word_tokenizer.detokenize(ids).numpy().tolist() == [b"", b"cat"]
    none = word_tokenizer.tokenize(tf.constant([], tf.string))
    assert none.shape.as_list() == [0, None]
    assert word_tokenizer.detokenize(none).shape == (0,)
    assert word_tokenizer.detokenize(tf.zeros([2, 3], tf.int32)).numpy().tolist() == [b"", b""]


def test_methods_trace_in_tf_function(word_tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def fn(text):
        ids = word_tokenizer.tokenize(text)
        return word_tokenizer.detokenize(ids.to_tensor())

    assert fn(tf.constant(["Die Straße, die Brücke!"])).numpy().tolist() == [
        b"die strasse , die brucke !"
    ]


def test_config_save_and_load(tmp_path, word_tokenizer):
    config = json.loads(json.dumps(word_tokenizer.get_config()))
    assert config["kind"] == "word"
    vocab_path = word_tokenizer.save(str(tmp_path))
    for restored in (
        tokenizer_from_config(config),
        WordTokenizer.load(str(tmp_path)),
        tokenizer_from_config({"kind": "word", "vocab_file": vocab_path, "lowercase": True}),
    ):
        assert isinstance(restored, WordTokenizer)
        assert restored.vocab == word_tokenizer.vocab
        assert round_trip(restored, ["the cat"]) == ["the cat"]
    with pytest.raises(ValueError, match="kind"):
        WordTokenizer.from_config({**config, "kind": "wordpiece"})
