from pathlib import Path

import pytest

from zoo.data.synthetic_parsing import ParseExample, examples_from_trees, generate_parse_examples
from zoo.data.treebank import delinearize, is_well_formed, parse_bracketed, read_treebank

TREEBANK = Path(__file__).resolve().parents[3] / "shared" / "data" / "parsing" / "treebank"


@pytest.fixture(scope="module")
def examples():
    return generate_parse_examples(2000, seed=0)


def test_generation_is_deterministic_and_seeded(examples):
    again = generate_parse_examples(2000, seed=0)
    assert [e.tree for e in examples] == [e.tree for e in again]
    other = generate_parse_examples(200, seed=1)
    assert [e.sentence for e in other] != [e.sentence for e in examples[:200]]


def test_targets_are_well_formed_trees_over_the_words(examples):
    for example in examples:
        tokens = example.linearized.split()
        assert is_well_formed(tokens, len(example.words))
        rebuilt = delinearize(tokens, example.words)
        assert rebuilt.leaves() == example.words
        assert set(example.tree.pos_tags()).isdisjoint({"XX"})


def test_sentences_match_the_translation_grammar_and_length_filters(examples):
    lengths = [len(e.words) for e in examples]
    assert min(lengths) >= 3 and max(lengths) <= 60 and max(lengths) > 30
    labels = {t for e in examples for t in e.linearized.split() if t.startswith("(")}
    assert {"(S", "(NP", "(VP", "(PP", "(SBAR"} <= labels
    short = generate_parse_examples(50, seed=2, max_words=8)
    assert all(len(e.words) <= 8 for e in short)


def test_examples_from_trees_cleans_and_skips_empty_trees():
    raw = parse_bracketed(
        "( (S (NP-SBJ (-NONE- *T*-1)) (VP (VBD slept)) (. .)) ) ( (-NONE- *) )", source="inline"
    )
    examples = examples_from_trees(raw)
    assert len(examples) == 1
    assert isinstance(examples[0], ParseExample)
    assert examples[0].linearized == "(S (VP XX )VP XX )S"
    assert examples[0].sentence == "slept ."


def test_examples_from_the_shared_treebank_sample():
    if not TREEBANK.is_dir():
        pytest.skip(f"../shared/data is absent: no treebank sample at {TREEBANK}")
    trees = [t for file_trees in read_treebank(TREEBANK).values() for t in file_trees]
    examples = examples_from_trees(trees)
    assert len(examples) == 1921
    assert examples[0].sentence.startswith("Pierre Vinken , 61 years old")
    assert examples[0].linearized.startswith(
        "(S (NP (NP XX XX )NP XX (ADJP (NP XX XX )NP XX )ADJP XX )NP"
    )
