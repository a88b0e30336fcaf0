"""The in-graph Translator: source encoding, reversal and attention in reading order."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.config import resolve_recipe
from zoo.data.seq2seq_dataset import END_ID
from zoo.tasks.translation import Translator, build_model
from zoo.text.word_tokenizer import WordTokenizer

SENTENCES = ["the dog saw a cat .", "a cat sleeps .", "the old dog ."]


def _translator(reverse: bool, beam_size: int = 1):
    recipe = resolve_recipe(
        {
            "task": "translation",
            "model": {
                "embedding_dim": 8,
                "reverse_source": reverse,
                "encoder": {"units": 8},
                "attention": {"kind": "additive", "units": 8},
                "decoder": {"units": 8},
            },
            "decode": {"beam_size": beam_size, "max_length": 6},
        }
    )
    source = WordTokenizer.build(SENTENCES, 50)
    target = WordTokenizer.build(["x y z", "y z"], 50)
    model = build_model(recipe["model"], source.vocab_size, target.vocab_size)
    return Translator(model, source, target, recipe)


def test_encode_text_appends_end_and_reverses_only_the_words():
    plain, _, _, _ = _translator(False).encode_text(tf.constant(["the dog saw", "a"]))
    reversed_, lengths, pieces, words = _translator(True).encode_text(
        tf.constant(["the dog saw", "a"])
    )
    plain, reversed_ = plain.numpy(), reversed_.numpy()
    assert list(lengths.numpy()) == [4, 2] and list(words.numpy()) == [3, 1]
    assert plain[0, 3] == END_ID and reversed_[0, 3] == END_ID
    assert list(reversed_[0, :3]) == list(plain[0, :3][::-1])
    assert list(reversed_[1, :2]) == list(plain[1, :2]) and reversed_[1, 2:].sum() == 0
    assert [p.decode() for p in pieces.to_list()[0]] == ["the", "dog", "saw"]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_reversed_source_attention_is_reported_in_reading_order(beam_size):
    translator = _translator(True, beam_size)
    text = tf.constant(["the dog saw a cat ."])
    out = translator.translate_text(text)
    source, lengths, _, _ = translator.encode_text(text)
    result = translator.decode_ids(source, beam_size, 6)
    steps = int(out["length"][0])
    raw = result["attention"].numpy()[0, :steps, : int(lengths[0])]
    words = int(lengths[0]) - 1
    expected = np.concatenate([raw[:, :words][:, ::-1], raw[:, words:]], axis=1)
    np.testing.assert_allclose(
        out["attention"].numpy()[0, :steps, : words + 1], expected, rtol=1e-6
    )
    assert [t.decode() for t in out["source_tokens"].numpy()[0]] == [
        "the",
        "dog",
        "saw",
        "a",
        "cat",
        ".",
        "[END]",
    ]
