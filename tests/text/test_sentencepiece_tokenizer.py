"""SentencePieceTokenizer: exact round trips of real text, reserved ids, config, SavedModel."""

import json
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from tests.text.conftest import GERMAN_SENTENCES, make_corpus
from zoo.text import (
    END_TOKEN,
    NUM_RESERVED,
    RESERVED_TOKENS,
    UNK_ID,
    SentencePieceTokenizer,
    tokenizer_from_config,
)

REAL = [
    "I'm sure.",
    "Je veux quelque chose à boire.",
    "Das Mädchen läuft über die Brücke.",
    "Où est-ce que tu l'as mis ?",
    "It costs $12.50, isn't it?",
]


@pytest.fixture(scope="module")
def tokenizer():
    texts = make_corpus(400) + REAL * 20
    return SentencePieceTokenizer.build(texts, 300)


def test_round_trip_is_exact_with_case_accents_and_punctuation(tokenizer):
    ids = tokenizer.tokenize(tf.constant(REAL + GERMAN_SENTENCES))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    text = [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]
    assert text == REAL + GERMAN_SENTENCES


def test_reserved_ids_are_the_packages(tokenizer):
    assert tuple(tokenizer.vocab[:NUM_RESERVED]) == RESERVED_TOKENS
    flat = tokenizer.tokenize(tf.constant(REAL)).flat_values.numpy()
    assert flat.min() >= NUM_RESERVED  # no start/end/pad added, nothing unknown here
    assert tokenizer.id_to_token(tf.constant([3])).numpy().tolist() == [END_TOKEN.encode()]


def test_unseen_characters_are_unk_and_dropped_on_detokenize(tokenizer):
    ids = tokenizer.tokenize(tf.constant(["I'm ωmega."]))
    assert UNK_ID in ids.flat_values.numpy().tolist()
    assert tokenizer.detokenize(ids).numpy()[0].decode() == "I'm mega."


def test_special_ids_are_dropped_by_detokenize(tokenizer):
    ids = tokenizer.tokenize(tf.constant(["I'm sure."])).to_list()[0]
    padded = tf.constant([[2, *ids, 3, 0, 0]])
    assert tokenizer.detokenize(padded).numpy()[0].decode() == "I'm sure."


def test_vocab_size_is_a_maximum():
    small = SentencePieceTokenizer.build(["I'm sure.", "Are you sure?"] * 20, 5000)
    assert NUM_RESERVED < small.vocab_size < 100
    assert small.detokenize(small.tokenize(tf.constant(["I'm sure."]))).numpy()[0] == b"I'm sure."


def test_build_is_deterministic_and_order_free():
    texts = make_corpus(200, seed=3)
    a = SentencePieceTokenizer.build(texts, 150)
    b = SentencePieceTokenizer.build(list(reversed(texts)), 150)
    assert a.model == b.model


def test_lowercase_folds_case_on_both_sides():
    texts = make_corpus(300)
    folded = SentencePieceTokenizer.build(texts, 200, lowercase=True)
    out = folded.detokenize(folded.tokenize(tf.constant(["Das Mädchen läuft."]))).numpy()[0]
    assert out.decode() == "das mädchen läuft."


def test_config_round_trip_is_json_and_the_same_model(tokenizer, tmp_path):
    config = json.loads(json.dumps(tokenizer.get_config()))
    again = tokenizer_from_config(config)
    assert again.model == tokenizer.model and again.vocab == tokenizer.vocab
    tokenizer.save(str(tmp_path))
    loaded = SentencePieceTokenizer.load(str(tmp_path))
    assert loaded.model == tokenizer.model
    ids = tokenizer.tokenize(tf.constant(REAL))
    assert loaded.tokenize(tf.constant(REAL)).to_list() == ids.to_list()


def test_a_model_without_the_reserved_pieces_is_refused():
    import io

    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(make_corpus(200)),
        model_writer=buffer,
        vocab_size=60,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    with pytest.raises(ValueError, match=r"pieces 0-3"):
        SentencePieceTokenizer(buffer.getvalue())


def test_it_keeps_working_after_the_random_seed_is_set(tokenizer):
    """`tf.random.set_seed` empties the eager kernel cache, which held tensorflow_text's model."""
    import keras

    traced = tf.function(lambda text: tokenizer.tokenize(text).to_tensor())
    before = traced(tf.constant(REAL)).numpy().tolist()
    fresh = SentencePieceTokenizer.from_config(tokenizer.get_config())
    keras.utils.set_random_seed(123)
    assert traced(tf.constant(REAL)).numpy().tolist() == before
    assert tokenizer.tokenize(tf.constant(REAL)).to_tensor().numpy().tolist() == before
    assert fresh.detokenize(fresh.tokenize(tf.constant(REAL))).numpy()[0].decode() == REAL[0]


def test_rank_2_input_is_refused(tokenizer):
    with pytest.raises(ValueError, match="1-D batch"):
        tokenizer.tokenize(tf.constant([["a"]]))


CHILD = textwrap.dedent(
    """
    import json, sys
    sys.modules["zoo"] = None
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    loaded = tf.saved_model.load(sys.argv[1])
    out = loaded.round_trip(tf.constant(json.loads(sys.argv[2])))
    print(json.dumps([t.decode("utf-8") for t in out.numpy()]))
    """
)


def test_savedmodel_round_trip_without_zoo_and_without_assets(tokenizer, tmp_path):
    class Module(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def round_trip(self, text):
            return self.tokenizer.detokenize(self.tokenizer.tokenize(text))

    path = tmp_path / "saved"
    tf.saved_model.save(Module(tokenizer), str(path))
    assert not any((path / "assets").iterdir()) if (path / "assets").exists() else True
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(REAL)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == REAL


CHILD_TWO = textwrap.dedent(
    """
    import json, sys
    sys.modules["zoo"] = None
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    loaded = tf.saved_model.load(sys.argv[1])
    text = tf.constant(json.loads(sys.argv[2]))
    print(json.dumps({
        "english": loaded.english(text).numpy().tolist(),
        "french": loaded.french(text).numpy().tolist(),
    }))
    """
)


def test_two_models_in_one_savedmodel_stay_apart_when_reloaded(tmp_path):
    """A translation export holds a source and a target model: each must keep its own."""
    english = SentencePieceTokenizer.build(make_corpus(300) + REAL[:1] * 30, 120)
    french = SentencePieceTokenizer.build([REAL[1], REAL[3]] * 60 + ["Tu es là."] * 30, 60)
    assert english.model != french.model

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.source, self.target = english, french

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def english(self, text):
            return self.source.tokenize(text).to_tensor(-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def french(self, text):
            return self.target.tokenize(text).to_tensor(-1)

    path = tmp_path / "two"
    tf.saved_model.save(Module(), str(path))
    out = subprocess.run(
        [sys.executable, "-c", CHILD_TWO, str(path), json.dumps(REAL)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    text = tf.constant(REAL)
    assert got["english"] == english.tokenize(text).to_tensor(-1).numpy().tolist()
    assert got["french"] == french.tokenize(text).to_tensor(-1).numpy().tolist()
    assert got["english"] != got["french"]
