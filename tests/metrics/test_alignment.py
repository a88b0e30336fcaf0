import numpy as np
import pytest

from zoo.metrics.alignment import (
    alignment_error_rate,
    attention_to_alignment,
    word_ids_from_wordpieces,
)

GOLD = [{(0, 0), (1, 1), (2, 2)}]


def test_perfect_alignment_has_aer_0():
    assert alignment_error_rate(GOLD, GOLD) == 0.0


def test_disjoint_alignment_has_aer_1():
    assert alignment_error_rate([{(0, 1), (1, 0)}], GOLD) == 1.0


def test_partial_alignment_worked_by_hand():
    # A = {(0,0), (1,2)}: |A & S| = 1, |A| = 2, |S| = 3 -> 1 - (1 + 1) / (2 + 3).
    assert alignment_error_rate([{(0, 0), (1, 2)}], GOLD) == pytest.approx(0.6)


def test_possible_links_count_only_in_the_numerator():
    # (1,2) is possible: |A & P| = 2 -> 1 - (1 + 2) / (2 + 3).
    aer = alignment_error_rate([{(0, 0), (1, 2)}], GOLD, possible=[{(1, 2)}])
    assert aer == pytest.approx(0.4)


def test_aer_sums_counts_over_the_corpus():
    predicted = [{(0, 0), (1, 1)}, {(0, 0), (1, 2)}]
    gold = [{(0, 0), (1, 1)}, {(0, 0), (1, 1), (2, 2)}]
    # Sentence AERs are 0 and 0.6 (mean 0.3); corpus: 1 - (3 + 3) / (4 + 5).
    assert alignment_error_rate(predicted, gold) == pytest.approx(1 / 3)


def test_aer_edge_cases():
    assert alignment_error_rate([set()], [set()]) == 0.0
    with pytest.raises(ValueError, match="2 predicted, 1 gold"):
        alignment_error_rate([set(), set()], [set()])


def test_word_ids_from_wordpieces():
    pieces = ["[START]", "the", "hou", "##se", "is", "[UNK]", "##s", "[END]", "[PAD]", ""]
    assert word_ids_from_wordpieces(pieces) == [-1, 0, 1, 1, 2, 3, 3, -1, -1, -1]
    assert word_ids_from_wordpieces([b"[START]", b"ha", b"##us"]) == [-1, 0, 0]
    assert word_ids_from_wordpieces(["##x", "y"]) == [0, 1]  # no word to continue


def test_attention_to_alignment_sums_subwords_and_ignores_specials():
    source = ["[START]", "the", "hou", "##se", "[END]"]
    target = ["[START]", "das", "ha", "##us", "[END]"]
    attention = np.array(
        [
            # [START] the   hou   ##se  [END]
            [0.90, 0.05, 0.03, 0.02, 0.00],  # [START]: ignored
            [0.50, 0.30, 0.10, 0.10, 0.00],  # das: [START] is heaviest, ignored -> the
            [0.00, 0.40, 0.30, 0.30, 0.00],  # ha: token argmax is 'the', word sum 'house'
            [0.00, 0.20, 0.10, 0.10, 0.60],  # ##us: [END] ignored
            [0.00, 0.00, 0.00, 0.00, 1.00],  # [END]: ignored
        ]
    )
    links = attention_to_alignment(
        attention, word_ids_from_wordpieces(source), word_ids_from_wordpieces(target)
    )
    # 'haus' averages its two rows: the = (0.4 + 0.2) / 2 = 0.3, house = (0.6 + 0.2) / 2 = 0.4.
    assert links == {(0, 0), (1, 1)}
    assert all(isinstance(i, int) for link in links for i in link)


def test_attention_to_alignment_averages_target_pieces():
    attention = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    # One target word of three pieces: mean weights 0.467 vs 0.533 -> source word 1.
    assert attention_to_alignment(attention, [0, 1], [0, 0, 0]) == {(1, 0)}


def test_attention_to_alignment_trims_padding_and_checks_shapes():
    attention = np.zeros((6, 7))
    attention[0, 1] = 1.0
    attention[1, 0] = 1.0
    assert attention_to_alignment(attention, [0, 1], [0, 1]) == {(1, 0), (0, 1)}
    with pytest.raises(ValueError, match=r"\(3, 2\).*attention.shape=\(2, 2\)"):
        attention_to_alignment(np.ones((2, 2)), [0, 1], [0, 1, 2])
    assert attention_to_alignment(np.ones((1, 2)), [-1, -1], [0]) == set()
