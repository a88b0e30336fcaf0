import re
import statistics
from collections import Counter

import pytest

from zoo.data.synthetic_translation import (
    TranslationExample,
    generate_source_trees,
    generate_translation_pairs,
    split_examples,
    synthetic_lexicon,
)


@pytest.fixture(scope="module")
def examples():
    return generate_translation_pairs(20_000, seed=0)


@pytest.fixture(scope="module")
def glosses():
    """Target word -> an English gloss, to check word order by name."""
    lexicon = synthetic_lexicon(0)
    gloss = {".": ".", ",": ","}
    for singular, _, stem, definite in lexicon["nouns"]:
        gloss[stem], gloss[definite] = singular, singular + "-DEF"
    for base, _, _, word in lexicon["verbs"]:
        gloss[word] = base
    for kind in ("adjectives", "adverbs", "prepositions", "numbers", "subordinators"):
        for english, word in lexicon[kind]:
            gloss[word] = english
    for name, word in lexicon["function_words"].items():
        gloss[word] = name
    return gloss


def crosses(alignment):
    return any(s1 < s2 and t1 > t2 for s1, t1 in alignment for s2, t2 in alignment)


def test_same_seed_gives_the_same_examples():
    first = generate_translation_pairs(300, seed=3)
    assert first == generate_translation_pairs(300, seed=3)
    assert all(isinstance(x, TranslationExample) for x in first)
    other = generate_translation_pairs(300, seed=4)
    assert [x.source for x in first] != [x.source for x in other]


def test_vocabulary_seed_changes_target_words_only():
    a = generate_translation_pairs(200, seed=1, vocabulary_seed=0)
    b = generate_translation_pairs(200, seed=1, vocabulary_seed=1)
    assert [x.source for x in a] == [x.source for x in b]
    assert [x.alignment for x in a] == [x.alignment for x in b]
    assert [len(x.target.split()) for x in a] == [len(x.target.split()) for x in b]
    assert [x.target for x in a] != [x.target for x in b]


def test_translation_is_a_function_of_the_source(examples):
    target_of: dict[str, str] = {}
    for x in examples:
        assert target_of.setdefault(x.source, x.target) == x.target, x.source
    # Short sentences repeat, so the check above did compare translations.
    assert len(target_of) < len(examples)


def leaves(tree: str) -> str:
    return " ".join(re.findall(r"\(\S+ ([^()\s]+)\)", tree))


def test_tree_is_a_function_of_the_source():
    tree_of: dict[str, str] = {}
    trees = generate_source_trees(10_000, seed=5, max_words=16)
    for tree in trees:
        assert tree_of.setdefault(leaves(tree), tree) == tree, tree
    assert len(tree_of) < len(trees)


def test_each_side_has_more_than_300_word_types(examples):
    source_types = {w for x in examples for w in x.source.split()}
    target_types = {w for x in examples for w in x.target.split()}
    assert len(source_types) > 300
    assert len(target_types) > 300
    lexicon = synthetic_lexicon(0)
    assert source_types <= set(lexicon["source_words"])
    assert target_types <= set(lexicon["target_words"])


def test_target_words_are_invented_and_distinct():
    lexicon = synthetic_lexicon(0)
    punctuation = {".", ","}
    target = set(lexicon["target_words"]) - punctuation
    assert not target & set(lexicon["source_words"])
    for word in target:
        assert re.fullmatch(r"[a-z]+", word), word
        assert 2 <= len(re.findall(r"[aeiou]", word)) <= 4, word
    stems = [stem for _, _, stem, _ in lexicon["nouns"]]
    definites = [definite for _, _, _, definite in lexicon["nouns"]]
    others = [w for kind in ("adjectives", "adverbs", "prepositions") for _, w in lexicon[kind]]
    others += [w for *_, w in lexicon["verbs"]]
    everything = stems + definites + others
    assert len(everything) == len(set(everything))
    suffix = lexicon["function_words"]["DEF"]
    assert all(d == s + suffix for s, d in zip(stems, definites, strict=True))
    assert synthetic_lexicon(0) == lexicon
    assert synthetic_lexicon(1)["nouns"] != lexicon["nouns"]


def test_sentence_lengths_have_a_realistic_spread(examples):
    lengths = [len(x.source.split()) for x in examples]
    assert min(lengths) == 3
    assert 50 < max(lengths) <= 60
    assert 8 <= statistics.median(lengths) <= 25
    assert sum(5 <= n <= 25 for n in lengths) / len(lengths) > 0.6
    assert 0.005 < sum(n > 40 for n in lengths) / len(lengths) < 0.1


def test_length_filters():
    chosen = generate_translation_pairs(300, seed=2, min_words=20, max_words=30)
    assert len(chosen) == 300
    assert all(20 <= len(x.source.split()) <= 30 for x in chosen)
    short = generate_translation_pairs(100, seed=2, max_words=5)
    assert all(len(x.source.split()) <= 5 for x in short)


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="min_words=9, max_words=8"):
        generate_translation_pairs(10, min_words=9, max_words=8)
    with pytest.raises(ValueError, match="size=-1"):
        generate_translation_pairs(-1)
    with pytest.raises(ValueError, match="max_words=2"):
        generate_translation_pairs(10, max_words=2)
    with pytest.raises(ValueError, match="widen the range"):
        generate_translation_pairs(1, min_words=200, max_words=300)


def test_alignment_indices_are_in_range_and_cover_every_word(examples):
    for x in examples:
        n_source, n_target = len(x.source.split()), len(x.target.split())
        assert list(x.alignment) == sorted(set(x.alignment))
        assert all(0 <= s < n_source and 0 <= t < n_target for s, t in x.alignment)
        assert {t for _, t in x.alignment} == set(range(n_target)), x
        assert {s for s, _ in x.alignment} == set(range(n_source)), x


def test_word_order_changes(examples):
    crossing = sum(crosses(x.alignment) for x in examples[:3000])
    assert crossing / 3000 > 0.3


def test_many_to_one_and_one_to_many_links_exist(examples):
    many_to_one = one_to_many = 0
    for x in examples[:3000]:
        per_target = Counter(t for _, t in x.alignment)
        per_source = Counter(s for s, _ in x.alignment)
        many_to_one += max(per_target.values()) > 1
        one_to_many += max(per_source.values()) > 1
    assert many_to_one / 3000 > 0.5
    assert one_to_many / 3000 > 0.3


def test_documented_translations(examples, glosses):
    """Checks the grammar of the module docstring on the sentences that show it."""
    lexicon = synthetic_lexicon(0)
    base_of = {form: base for base, third, past, _ in lexicon["verbs"] for form in (third, past)}
    past_of = {past: base for base, _, past, _ in lexicon["verbs"]}
    verb_words = set(base_of) | set(past_of.values()) | {"did", "does", "do", "will"}
    nouns = {singular for singular, *_ in lexicon["nouns"]}
    checked = Counter()
    for x in examples:
        words = x.source.split()
        target = [glosses[w] for w in x.target.split()]
        if words[0] != "the" or words[1] not in nouns:
            continue
        subject = words[1] + "-DEF"
        # "the dog slept ." -> "PST sleep dog-DEF ."
        if len(words) == 4 and words[2] in past_of:
            assert target == ["PST", past_of[words[2]], subject, "."], x
            checked["main clause"] += 1
        # "the dog did not see ..." -> "NEGPST see [adverb] dog-DEF ..."
        if words[2:4] == ["did", "not"]:
            assert target[:2] == ["NEGPST", words[4]] and subject in target[2:4], x
            checked["negation"] += 1
        # "the dog that saw ..." -> "dog-DEF RELS ...", "the dog that the cat saw" -> "... RELO"
        if words[2] == "that":
            relative = "RELS" if words[3] in verb_words else "RELO"
            assert target[target.index(subject) + 1] == relative, x
            checked[relative] += 1
    assert min(checked[k] for k in ("main clause", "negation", "RELS", "RELO")) > 5, checked


def test_articles_agree_with_the_next_word(examples):
    for x in examples[:5000]:
        words = x.source.split()
        for article, following in zip(words, words[1:], strict=False):
            if article == "a":
                assert following[0] not in "aeiou", x.source
            elif article == "an":
                assert following[0] in "aeiou", x.source


def test_source_trees_bracket_the_same_sentences():
    sources = [x.source for x in generate_translation_pairs(300, seed=7, min_words=10)]
    trees = generate_source_trees(300, seed=7, min_words=10)
    assert len(trees) == 300
    for source, tree in zip(sources, trees, strict=True):
        assert tree.startswith("(S ") and tree.endswith("(. .))")
        assert tree.count("(") == tree.count(")")
        assert leaves(tree) == source
    simple = generate_source_trees(300, seed=0, max_words=4)
    assert any(
        re.fullmatch(r"\(S \(NP \(DT the\) \(NN \w+\)\) \(VP \(VBD \w+\)\) \(\. \.\)\)", t)
        for t in simple
    )


def test_split_examples_keeps_held_out_sources_out_of_training(examples):
    data = examples[:5000]
    train, validation, test = split_examples(data, 300, 500, seed=1)
    assert (len(validation), len(test)) == (300, 500)
    train_sources = {x.source for x in train}
    validation_sources = {x.source for x in validation}
    test_sources = {x.source for x in test}
    assert len(validation_sources) == 300 and len(test_sources) == 500
    assert not train_sources & test_sources
    assert not train_sources & validation_sources
    assert not validation_sources & test_sources
    # Nothing lost but the duplicates of held-out sources.
    held_out = validation_sources | test_sources
    assert len(train) == sum(x.source not in held_out for x in data)
    assert split_examples(data, 300, 500, seed=1) == (train, validation, test)
    assert split_examples(data, 300, 500, seed=2)[2] != test
    pairs = [(x.source, x.target) for x in data]
    assert len(split_examples(pairs, 10, 10)[2]) == 10
    with pytest.raises(ValueError, match="distinct"):
        split_examples(data[:20], 10, 20)
