"""Hostile inputs: outputs cut at max_length warn (`zoo.TruncationWarning`), evaluation counts them."""

import warnings

import pytest
import tensorflow as tf

import zoo
from zoo.data.treebank import is_well_formed

LONG = ("the old dog saw a red cat near the house and " * 60).split()  # 660 words


def test_truncation_warning_is_exported():
    assert issubclass(zoo.TruncationWarning, UserWarning)
    assert "cut" in zoo.TruncationWarning.__doc__


# --- parsing ----------------------------------------------------------------------------------
def test_a_sentence_too_long_for_max_length_is_parsed_in_part_with_a_warning(trained_parsing):
    _, result, _ = trained_parsing
    model = zoo.load(result["export_dir"])
    # decode.max_length 500 holds no tree over 660 words: the first
    # (500 - 8) / 4 = 123 get a tree, the others hang under the root.
    with pytest.warns(zoo.TruncationWarning, match=r"sentence 1 \(660 words") as w:
        parse = model.parse(" ".join(LONG), beam_size=1)
    assert "'the old dog saw a red ...'" in str(w[0].message)
    assert "covers words 1-123, words 124-660 are attached flat" in str(w[0].message)
    assert parse.parsed_words == 123
    assert is_well_formed(parse.tokens, len(LONG)) and parse.to_tree().leaves() == LONG
    assert parse.tree.split()[-1] == "and)"  # the last word, in the tree
    assert parse.linearized == " ".join(parse.tokens)
    assert parse.attention.shape == (len(parse.tokens), len(LONG) + 1)
    assert not parse.attention[-(660 - 123) - 1 : -1].any()  # no decoding step wrote these


def test_a_short_max_length_parses_the_first_words_and_names_the_sentence(trained_parsing):
    _, result, _ = trained_parsing
    model = zoo.load(result["export_dir"])
    sentences = ["birds sing .", "the dog saw a cat near the house ."]
    with pytest.warns(zoo.TruncationWarning) as w:
        first, second = model.parse(sentences, beam_size=1, max_length=8)
    assert len(w) == 1 and str(w[0].message).startswith("sentence 2 (9 words")
    assert w[0].filename == __file__  # the warning points at the call
    assert first.parsed_words == 3 and is_well_formed(first.tokens, 3)
    assert second.parsed_words == 5 and second.to_tree().leaves() == sentences[1].split()
    # No tree fits in 3 symbols: the tree is empty, and the warning says so.
    with pytest.warns(zoo.TruncationWarning, match="no tree fits; the tree is empty"):
        empty = model.parse("birds sing .", beam_size=1, max_length=3)
    assert empty.tree == "" and empty.tokens == [] and empty.parsed_words == 0


def test_a_sentence_that_fits_parses_without_warning(trained_parsing):
    _, result, _ = trained_parsing
    model = zoo.load(result["export_dir"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", zoo.TruncationWarning)
        parse = model.parse("the dog saw a cat .")
    assert parse.parsed_words == 6 and is_well_formed(parse.tokens, 6)


def test_parsing_evaluation_counts_long_and_cut_sentences(trained_parsing):
    from zoo.data.synthetic_parsing import generate_parse_examples
    from zoo.tasks import get_task
    from zoo.tasks.parsing import evaluate

    recipe, result, _ = trained_parsing
    model = zoo.load(result["export_dir"])
    signature = model.saved_model.signatures["parse_options"]

    def parse(sentences):
        return signature(sentence=sentences, beam_size=tf.constant(1), max_length=tf.constant(12))

    examples = generate_parse_examples(6, seed=5, min_words=3, max_words=20)
    lengths = [len(e.words) for e in examples]
    config = {**recipe["evaluate"], "max_examples": None}
    metrics = evaluate(examples, parse, config, max_words=8, max_length=12)
    assert metrics["examples"] == 6 and metrics["well_formed"] == 100.0
    assert metrics["over_long"] == sum(n > 8 for n in lengths) > 0
    assert metrics["cut"] == sum(n + 3 > 12 for n in lengths) > 0
    lines = get_task("parsing").format_metrics(metrics)
    assert f"test: {metrics['over_long']} sentences longer than 8 words" in lines
    assert f"test: {metrics['cut']} trees could not cover every word" in lines


# --- translation ------------------------------------------------------------------------------
def test_a_translation_cut_at_max_length_warns(trained_translation):
    _, result, _ = trained_translation
    model = zoo.load(result["export_dir"])
    sentences = ["", "the old dog saw a red cat near the house ."]
    with pytest.warns(zoo.TruncationWarning) as w:
        empty, cut = model.translate(sentences, beam_size=1, max_length=2)
    messages = [str(x.message) for x in w]
    assert len(messages) == 1 and messages[0].startswith("input 2 (11 words")
    assert "'the old dog saw a red ...'" in messages[0] and "hit max_length" in messages[0]
    assert cut.truncated and len(cut.tokens) == 2
    assert not empty.truncated and empty.text == ""


def test_only_the_translations_that_hit_max_length_warn(trained_translation):
    _, result, _ = trained_translation
    model = zoo.load(result["export_dir"])
    sources = ["the dog sleeps .", "a", "dog", "the old king sleeps .", "the"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model.translate(sources, beam_size=4, max_length=40)
    cut = [str(w.message) for w in caught if issubclass(w.category, zoo.TruncationWarning)]
    quoted = sorted(message.split("'")[1] for message in cut)  # the sources' first words
    assert quoted == sorted(r.source for r in out if r.truncated)
    assert all(len(r.tokens) == 40 for r in out if r.truncated)
    assert all(len(r.tokens) < 40 for r in out if not r.truncated)
    assert len(cut) < len(sources)  # some ended (an undertrained model loops on others)


def test_translation_results_warn_from_the_truncated_output():
    import numpy as np

    from zoo.tasks.translation.results import TranslationResult

    def outputs(truncated):
        out = {
            "translation": np.array([b"a b", b"a"]),
            "tokens": np.array([[b"a", b"b"], [b"a", b""]]),
            "source_tokens": np.array([[b"x", b"[END]"], [b"y", b"[END]"]]),
            "attention": np.zeros((2, 2, 2), np.float32),
            "score": np.zeros(2, np.float32),
        }
        if truncated is not None:
            out["truncated"] = np.array(truncated)
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("error", zoo.TruncationWarning)
        ended = TranslationResult.from_outputs(["x", "y"], outputs([False, False]))
        old_export = TranslationResult.from_outputs(["x", "y"], outputs(None))
    assert not any(r.truncated for r in ended + old_export)
    with pytest.warns(zoo.TruncationWarning, match=r"input 0 of the batch \(1 word, 'x'\)"):
        cut = TranslationResult.from_outputs(["x", "y"], outputs([True, False]))
    assert [r.truncated for r in cut] == [True, False]


def test_translation_evaluation_counts_long_and_cut_sources(trained_translation):
    from zoo.tasks import get_task
    from zoo.tasks.translation import Pair, evaluate

    recipe, result, _ = trained_translation
    model = zoo.load(result["export_dir"])
    signature = model.saved_model.signatures["translate_options"]

    def translate(texts):
        return signature(text=texts, beam_size=tf.constant(1), max_length=tf.constant(3))

    pairs = [
        Pair("the dog sleeps .", "x"),
        Pair("the old dog saw a red cat near the house .", "x"),
        Pair(" ".join(LONG[:40]), "x"),
    ]
    config = {**recipe["evaluate"], "alignment": False, "max_examples": None}
    metrics = evaluate(None, None, pairs, config, translate, max_source_tokens=8, max_length=3)
    assert metrics["examples"] == 3  # nothing dropped from the score
    assert metrics["over_long"] == 2
    assert 1 <= metrics["cut"] <= 3
    lines = get_task("translation").format_metrics(metrics)
    assert "test: 2 sources longer than 8 tokens (data.max_source_tokens" in lines
    assert f"test: {metrics['cut']} translations hit decode.max_length (3)" in lines
