import math

import pytest

from zoo.metrics.bleu import bleu_by_length, corpus_bleu, corpus_chrf


def test_identical_corpus_scores_100():
    sentences = ["the cat sat on the mat", "a dog barked at the postman today"]
    assert corpus_bleu(sentences, sentences) == pytest.approx(100.0)
    assert corpus_chrf(sentences, sentences) == pytest.approx(100.0)


def test_disjoint_corpus_scores_0():
    assert corpus_bleu(["x y z w"], ["a b c d"]) == 0.0
    assert corpus_chrf(["x y z w"], ["a b c d"]) == 0.0


def test_brevity_penalty_worked_by_hand():
    # Every n-gram of the hypothesis matches (precisions 5/5, 4/4, 3/3, 2/2),
    # hypothesis 5 words, reference 6: BLEU = 100 * exp(1 - 6/5).
    assert corpus_bleu(["a b c d e"], ["a b c d e f"]) == pytest.approx(100 * math.exp(-0.2))


def test_ngram_precisions_worked_by_hand():
    # One wrong last word: precisions 4/5, 3/4, 2/3, 1/2, equal lengths (no
    # penalty): BLEU = 100 * (4/5 * 3/4 * 2/3 * 1/2) ** (1/4).
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert corpus_bleu(["a b c d x"], ["a b c d e"]) == pytest.approx(expected)


def test_bleu_is_computed_on_detokenized_text_with_13a():
    # 13a splits the final period off, so both spellings are the same tokens.
    assert corpus_bleu(["The dog bit the man."], ["The dog bit the man ."]) == pytest.approx(100)


def test_bleu_is_a_corpus_statistic_not_a_mean_of_sentences():
    hypotheses = ["a b c d e", "a b c d x"]
    references = ["a b c d e", "a b c d e"]
    # Corpus counts: precisions 9/10, 7/8, 5/6, 3/4.
    expected = 100 * (9 / 10 * 7 / 8 * 5 / 6 * 3 / 4) ** 0.25
    assert corpus_bleu(hypotheses, references) == pytest.approx(expected)


def test_mismatched_or_empty_corpus():
    with pytest.raises(ValueError, match="2 hypotheses and 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_chrf([], [])
    with pytest.raises(TypeError, match=r"hypotheses\[0\]"):
        corpus_bleu([["a", "b"]], ["a b"])


def sentence(words):
    return " ".join(f"w{i}" for i in range(words))


def test_bleu_by_length_assigns_buckets_by_source_words():
    lengths = [1, 10, 11, 20, 35, 51, 80]
    sources = [sentence(n) for n in lengths]
    rows = bleu_by_length(sources, sources, sources)
    assert [row["bucket"] for row in rows] == ["1-10", "11-20", "21-30", "31-40", "41-50", "51+"]
    assert [row["count"] for row in rows] == [2, 2, 0, 1, 0, 2]
    assert rows[2]["bleu"] is None and rows[4]["bleu"] is None
    assert rows[0]["bleu"] == pytest.approx(100)


def test_bleu_by_length_scores_each_bucket_on_its_own():
    sources = ["one two", "one two three four five six seven eight nine ten eleven"]
    hypotheses = ["a b c d e", "x y z w"]
    references = ["a b c d e", "a b c d"]
    rows = bleu_by_length(sources, hypotheses, references, boundaries=[10])
    assert rows == [
        {"bucket": "1-10", "count": 1, "bleu": pytest.approx(100)},
        {"bucket": "11+", "count": 1, "bleu": 0.0},
    ]


def test_bleu_by_length_rejects_bad_boundaries_and_lengths():
    with pytest.raises(ValueError, match="boundaries=\\[20, 10\\]"):
        bleu_by_length(["a"], ["a"], ["a"], boundaries=[20, 10])
    with pytest.raises(ValueError, match="2 sources, 1 hypotheses"):
        bleu_by_length(["a", "b"], ["a"], ["a"])
