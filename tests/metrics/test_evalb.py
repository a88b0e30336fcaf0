from collections import Counter

import pytest

from zoo.metrics.evalb import BracketScore, evalb, labelled_brackets, parse_bracketed

DOG = "(TOP (S (NP (DT the) (NN dog)) (VP (VBD barked))))"

# "I saw the man with a telescope": I0 saw1 the2 man3 with4 a5 telescope6.
PP_GOLD = (
    "(S (NP (PRP I)) (VP (VBD saw) (NP (DT the) (NN man))"
    " (PP (IN with) (NP (DT a) (NN telescope)))))"
)
PP_PREDICTED = (
    "(S (NP (PRP I)) (VP (VBD saw) (NP (NP (DT the) (NN man))"
    " (PP (IN with) (NP (DT a) (NN telescope))))))"
)

# "dogs bark" with a unary NP over NP in gold only.
UNARY_GOLD = "(S (NP (NP (NNS dogs))) (VP (VBP bark)))"
UNARY_PREDICTED = "(S (NP (NNS dogs)) (VP (VBP bark)))"


def counts(score):
    return score.matched, score.gold, score.predicted


def test_parse_bracketed_reads_nested_tuples():
    assert parse_bracketed("(S (NP (DT the) (NN dog)) (VP (VBD barked)))") == (
        "S",
        (("NP", (("DT", "the"), ("NN", "dog"))), ("VP", (("VBD", "barked"),))),
    )
    assert parse_bracketed("( (NN dog))") == ("", (("NN", "dog"),))


@pytest.mark.parametrize(
    "text", ["", "(S (NP (DT the))", "(S (NN dog)) (S (NN cat))", "(S)", "(S (NN a b))", "NN dog"]
)
def test_parse_bracketed_rejects_malformed_trees(text):
    with pytest.raises(ValueError):
        parse_bracketed(text)


def test_identical_trees_score_100():
    # S(0,3) NP(0,2) VP(2,3): 3 matched of 3 gold and 3 predicted.
    score = evalb([DOG], [DOG])
    assert counts(score) == (3, 3, 3)
    assert (score.precision, score.recall, score.f1) == (100.0, 100.0, 100.0)
    assert (score.sentences, score.exact_match, score.length_mismatch) == (1, 1, 0)


def test_pp_attachment_error():
    # Gold: S(0,7) NP(0,1) VP(1,7) NP(2,4) PP(4,7) NP(5,7) = 6.
    # Predicted adds NP(2,7) for "the man with a telescope": 7, all 6 gold matched.
    # P = 6/7, R = 6/6, F1 = 2*6/(6+7) = 12/13.
    score = evalb([PP_GOLD], [PP_PREDICTED])
    assert counts(score) == (6, 6, 7)
    assert score.precision == pytest.approx(100 * 6 / 7)
    assert score.recall == pytest.approx(100.0)
    assert score.f1 == pytest.approx(100 * 12 / 13)
    assert score.exact_match == 0


def test_comma_inside_np_is_not_a_word():
    # "Paris , Texas is hot ." -> kept words Paris0 Texas1 is2 hot3: the comma
    # does not split the NP and the final period does not stretch S.
    tree = "(TOP (S (NP (NNP Paris) (, ,) (NNP Texas)) (VP (VBZ is) (ADJP (JJ hot))) (. .)))"
    assert labelled_brackets(tree) == Counter(
        {("S", 0, 4): 1, ("NP", 0, 2): 1, ("VP", 2, 4): 1, ("ADJP", 3, 4): 1}
    )


def test_final_period_does_not_change_the_sentence_span():
    # "He left ." -> He0 left1: S(0,2), not S(0,3).
    assert labelled_brackets("(S (NP (PRP He)) (VP (VBD left)) (. .))") == Counter(
        {("S", 0, 2): 1, ("NP", 0, 1): 1, ("VP", 1, 2): 1}
    )


def test_attaching_punctuation_elsewhere_is_not_penalised():
    # Gold: S(0,2) NP(0,1) VP(1,2). The predicted VP takes the period: VP over
    # "left ." is VP(1,2) once the period is deleted, so 3 of 3 and 3.
    gold = "(S (NP (PRP He)) (VP (VBD left)) (. .))"
    predicted = "(S (NP (PRP He)) (VP (VBD left) (. .)))"
    assert counts(evalb([gold], [predicted])) == (3, 3, 3)
    # Commas: gold puts the comma between the conjuncts, the prediction inside
    # the first; both give S(0,3) NP(0,2) NP(0,1) NP(1,2) VP(2,3) over
    # Smith0 Jones1 left2: 5 of 5 and 5.
    gold = "(S (NP (NP (NNP Smith)) (, ,) (NP (NNP Jones))) (VP (VBD left)))"
    predicted = "(S (NP (NP (NNP Smith) (, ,)) (NP (NNP Jones))) (VP (VBD left)))"
    assert counts(evalb([gold], [predicted])) == (5, 5, 5)


def test_constituent_over_punctuation_only_is_dropped():
    # The predicted FRAG covers only the deleted period: no bracket. 3, 3, 3.
    gold = "(S (NP (PRP He)) (VP (VBD left)) (. .))"
    predicted = "(S (NP (PRP He)) (VP (VBD left)) (FRAG (. .)))"
    assert counts(evalb([gold], [predicted])) == (3, 3, 3)


def test_predicted_xx_tags_are_scored_with_gold_tags():
    # The predicted tree has no real tags, so by its own tags nothing is
    # punctuation: S(0,3) and FRAG(2,3) would be wrong. With the gold tags the
    # period goes: S(0,2) NP(0,1) VP(1,2), 3 of 3 and 3.
    gold = "(TOP (S (NP (PRP He)) (VP (VBD left)) (. .)))"
    predicted = "(S (NP (XX He)) (VP (XX left)) (FRAG (XX .)))"
    assert labelled_brackets(predicted) == Counter(
        {("S", 0, 3): 1, ("NP", 0, 1): 1, ("VP", 1, 2): 1, ("FRAG", 2, 3): 1}
    )
    assert labelled_brackets(predicted, ["PRP", "VBD", "."]) == labelled_brackets(gold)
    score = evalb([gold], [predicted])
    assert counts(score) == (3, 3, 3)
    assert score.length_mismatch == 0


def test_pos_tags_for_deletion_must_match_the_words():
    with pytest.raises(ValueError, match="2 tags for 3 words"):
        labelled_brackets("(S (NP (PRP He)) (VP (VBD left)) (. .))", ["PRP", "VBD"])


def test_advp_and_prt_are_one_label():
    # Gold S(0,3) NP(0,1) VP(1,3) PRT(2,3); the prediction says ADVP(2,3): 4, 4, 4.
    gold = "(S (NP (PRP He)) (VP (VBD gave) (PRT (RP up))))"
    predicted = "(S (NP (PRP He)) (VP (VBD gave) (ADVP (RB up))))"
    assert counts(evalb([gold], [predicted])) == (4, 4, 4)
    # Other labels stay distinct: PP(2,3) does not match PRT(2,3). 3, 4, 4.
    predicted = "(S (NP (PRP He)) (VP (VBD gave) (PP (RB up))))"
    assert counts(evalb([gold], [predicted])) == (3, 4, 4)


def test_function_tags_are_cut():
    # NP-SBJ-1 -> NP, PP-LOC=2 -> PP: S(0,4) NP(0,1) VP(1,4) PP(2,4) NP(3,4)
    # on both sides, 5 of 5 and 5.
    gold = "(S (NP-SBJ-1 (PRP He)) (VP (VBD sat) (PP-LOC=2 (IN on) (NP (PRP it)))))"
    predicted = "(S (NP (XX He)) (VP (XX sat) (PP (XX on) (NP (XX it)))))"
    assert counts(evalb([gold], [predicted])) == (5, 5, 5)


def test_traces_and_what_they_alone_fill_are_removed():
    # (NP-SBJ (-NONE- *)) dominates only a trace: it goes, and "Go" is word 0.
    # Left: S(0,1) VP(0,1). The prediction has no trace and the same length.
    gold = "( (S (NP-SBJ (-NONE- *)) (VP (VB Go)) (. .)))"
    assert labelled_brackets(gold) == Counter({("S", 0, 1): 1, ("VP", 0, 1): 1})
    score = evalb([gold], ["(S (VP (XX Go)) (XX .))"])
    assert counts(score) == (2, 2, 2)
    assert score.length_mismatch == 0


def test_top_root_and_unlabelled_root_are_not_counted():
    # S(0,3) NP(0,2) VP(2,3) whatever the root is called.
    bare = "(S (NP (DT the) (NN dog)) (VP (VBD barked)))"
    expected = Counter({("S", 0, 3): 1, ("NP", 0, 2): 1, ("VP", 2, 3): 1})
    for tree in (bare, f"(TOP {bare})", f"(ROOT {bare})", f"( {bare})"):
        assert labelled_brackets(tree) == expected
    assert counts(evalb([f"(TOP {bare})"], [f"(ROOT {bare})"])) == (3, 3, 3)


def test_duplicated_unary_is_a_multiset():
    # Gold S(0,2) NP(0,1) NP(0,1) VP(1,2) = 4; predicted S NP VP = 3. Only one
    # NP(0,1) can match: 3 matched. Gold side: P = 3/3, R = 3/4.
    assert labelled_brackets(UNARY_GOLD)[("NP", 0, 1)] == 2
    score = evalb([UNARY_GOLD], [UNARY_PREDICTED])
    assert counts(score) == (3, 4, 3)
    assert (score.precision, score.recall) == (100.0, 75.0)
    # The other way round: P = 3/4, R = 3/3.
    score = evalb([UNARY_PREDICTED], [UNARY_GOLD])
    assert counts(score) == (3, 3, 4)
    assert (score.precision, score.recall) == (75.0, 100.0)


def test_scores_are_corpus_totals_not_a_mean_of_sentences():
    # Sentences: identical (3, 3, 3), PP error (6, 6, 7), unary (3, 4, 3).
    # Totals 12 matched, 13 gold, 13 predicted: P = R = F1 = 12/13.
    # The mean of the sentence F1s would be (1 + 12/13 + 6/7) / 3 instead.
    score = evalb([DOG, PP_GOLD, UNARY_GOLD], [DOG, PP_PREDICTED, UNARY_PREDICTED])
    assert counts(score) == (12, 13, 13)
    assert score.precision == pytest.approx(100 * 12 / 13)
    assert score.recall == pytest.approx(100 * 12 / 13)
    assert score.f1 == pytest.approx(100 * 12 / 13)
    assert score.f1 != pytest.approx(100 * (1 + 12 / 13 + 6 / 7) / 3)
    assert (score.sentences, score.exact_match, score.length_mismatch) == (3, 1, 0)


def test_length_mismatch_is_counted_and_skipped():
    # The second pair has 3 gold words and 2 predicted: skipped, so only the
    # first sentence's 3, 3, 3 counts.
    predicted_short = "(S (NP (NN dog)) (VP (VBD barked)))"
    score = evalb([DOG, DOG], [DOG, predicted_short])
    assert counts(score) == (3, 3, 3)
    assert (score.sentences, score.length_mismatch, score.valid_sentences) == (2, 1, 1)
    assert score.f1 == 100.0
    # Punctuation counts as words for alignment: a prediction that drops the
    # final period is a mismatch too.
    gold = "(S (NP (PRP He)) (VP (VBD left)) (. .))"
    assert evalb([gold], ["(S (NP (XX He)) (VP (XX left)))"]).length_mismatch == 1


def test_undefined_scores_are_zero():
    # A one-word sentence under TOP has no bracket to count on either side.
    score = evalb(["(TOP (UH hello))"], ["(TOP (XX hello))"])
    assert counts(score) == (0, 0, 0)
    assert (score.precision, score.recall, score.f1) == (0.0, 0.0, 0.0)
    assert evalb([], []) == BracketScore.from_counts(0, 0, 0, 0, 0, 0)
    # Nothing matched: P and R are 0, so F1 is 0 rather than undefined.
    score = evalb(["(S (NP (DT a)) (VP (VB b)))"], ["(X (Y (DT a)) (Z (VB b)))"])
    assert counts(score) == (0, 3, 3)
    assert score.f1 == 0.0


def test_tuples_are_accepted_like_strings():
    gold = parse_bracketed(PP_GOLD)
    predicted = parse_bracketed(PP_PREDICTED)
    assert evalb([gold], [predicted]) == evalb([PP_GOLD], [PP_PREDICTED])
    with pytest.raises(TypeError):
        evalb([["S", []]], [DOG])


def test_corpora_must_have_the_same_length():
    with pytest.raises(ValueError, match="1 gold and 2 predicted"):
        evalb([DOG], [DOG, DOG])


def test_summary_reports_the_totals():
    summary = evalb([DOG, PP_GOLD], [DOG, PP_PREDICTED]).summary()
    assert "Bracketing Recall         = 100.00 (9/9)" in summary
    assert "Bracketing Precision      =  90.00 (9/10)" in summary
    assert "Bracketing FMeasure       =  94.74" in summary
    assert "Complete match            =  50.00 (1/2)" in summary
