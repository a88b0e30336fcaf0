import math
import shutil

import numpy as np
import pytest

from zoo.data.synthetic_scenes import generate_scenes
from zoo.metrics.caption_metrics import (
    PointingCounts,
    caption_scores,
    corpus_pointing_accuracy,
    pointing_accuracy,
    tokenize_caption,
)

# The COCO scorers add 1e-15 / 1e-9 to BLEU's counts; 1e-6 hides that.
approx = lambda x: pytest.approx(x, rel=1e-6, abs=1e-6)  # noqa: E731


# --- tokenisation -------------------------------------------------------------------


def test_tokenisation_lowercases_and_drops_punctuation():
    assert tokenize_caption("A Dog, running!") == "a dog running"
    assert tokenize_caption("  two\tcats ... on a t-shirt.\n") == "two cats on a t shirt"
    assert tokenize_caption("L'été — «café»") == "l été café"
    assert tokenize_caption("") == ""


def test_scores_ignore_case_and_punctuation():
    scores = caption_scores(
        [["A red circle, left of a BLUE square."]], ["a red circle left of a blue square"]
    )
    assert scores["bleu_4"] == approx(1.0)
    assert scores["rouge_l"] == approx(1.0)


# --- BLEU ---------------------------------------------------------------------------


def test_bleu_precisions_and_brevity_penalty_worked_by_hand():
    # Hypothesis 5 words, reference 6. Matches: unigrams 5/5, bigrams 3/4
    # ("on mat" is not in the reference), trigrams 2/3, 4-grams 1/2.
    scores = caption_scores([["the cat sat on the mat"]], ["the cat sat on mat"])
    penalty = math.exp(1 - 6 / 5)
    assert scores["bleu_1"] == approx(penalty)
    assert scores["bleu_2"] == approx(penalty * (1 * 3 / 4) ** (1 / 2))
    assert scores["bleu_3"] == approx(penalty * (1 * 3 / 4 * 2 / 3) ** (1 / 3))
    assert scores["bleu_4"] == approx(penalty * (1 * 3 / 4 * 2 / 3 * 1 / 2) ** (1 / 4))


def test_bleu_counts_are_summed_over_the_corpus():
    # Precisions 9/10, 7/8, 5/6, 3/4 over both sentences, equal lengths.
    scores = caption_scores([["a b c d e"], ["a b c d e"]], ["a b c d e", "a b c d x"])
    assert scores["bleu_4"] == approx((9 / 10 * 7 / 8 * 5 / 6 * 3 / 4) ** (1 / 4))
    assert scores["bleu_1"] == approx(9 / 10)


def test_bleu_clips_counts_by_the_most_in_any_one_reference():
    # "a" occurs 3 times in the hypothesis, at most twice in one reference.
    scores = caption_scores([["a a b", "a c"]], ["a a a"])
    assert scores["bleu_1"] == approx(2 / 3)


def test_bleu_brevity_penalty_uses_the_closest_reference_the_shorter_on_ties():
    # Hypothesis 4 words; references 3 and 5 are equally close: 3 is taken, no penalty.
    scores = caption_scores([["a b c", "a b c d e"]], ["a b c d"])
    assert scores["bleu_4"] == approx(1.0)
    # Closest is 5 (not the shortest, 2): penalty exp(1 - 5/4).
    scores = caption_scores([["a b", "a b c d e"]], ["a b c d"])
    assert scores["bleu_1"] == approx(math.exp(1 - 5 / 4))


def test_bleu_of_disjoint_captions_is_close_to_zero():
    scores = caption_scores([["a b c d"], ["e f g h"]], ["w x y z", "q r s t"])
    for n in (1, 2, 3, 4):
        assert scores[f"bleu_{n}"] < 1e-5


# --- ROUGE-L ------------------------------------------------------------------------


def test_rouge_l_from_a_known_lcs():
    # LCS("a b c d", "a x b y d") = "a b d": precision 3/4, recall 3/5, beta 1.2.
    p, r, beta2 = 3 / 4, 3 / 5, 1.2**2
    scores = caption_scores([["a x b y d"]], ["a b c d"])
    assert scores["rouge_l"] == approx((1 + beta2) * p * r / (r + beta2 * p))


def test_rouge_l_takes_best_precision_and_best_recall_over_references_separately():
    # As the COCO evaluation does: precision 1 from the long reference, recall
    # 1 from the short one, so F = 1 although neither reference matches.
    scores = caption_scores([["a b", "a b c d e f g h"]], ["a b c d"])
    assert scores["rouge_l"] == approx(1.0)


def test_rouge_l_is_the_mean_over_images():
    scores = caption_scores([["a b"], ["c d"]], ["a b", "x y"])
    assert scores["rouge_l"] == approx(0.5)


# --- CIDEr-D ------------------------------------------------------------------------


def test_cider_of_captions_equal_to_their_references():
    # Every n-gram is in one image's references of two: idf = log 2 for all,
    # every cosine is 1, no length penalty. Two-word captions have no 3- and
    # 4-grams: CIDEr-D = 10 * mean(1, 1, 0, 0) = 5; four-word ones give 10.
    assert caption_scores([["a b"], ["c d"]], ["a b", "c d"])["cider"] == approx(5.0)
    captions = ["a b c d", "e f g h"]
    assert caption_scores([[c] for c in captions], captions)["cider"] == approx(10.0)


def test_cider_of_disjoint_captions_is_zero():
    assert caption_scores([["a b c d"], ["e f g h"]], ["w x y z", "q r s t"])["cider"] == 0.0


def test_cider_gives_no_weight_to_ngrams_in_every_image():
    # "a" is in the references of both images: idf log(2/2) = 0. Image 1's
    # hypothesis shares only "a" with its reference and scores 0; image 2's
    # equals its reference and scores 10 * mean(1, 1, 0, 0) = 5.
    scores = caption_scores([["a b"], ["a c"]], ["a e", "a c"])
    assert scores["cider"] == approx((0 + 5) / 2)


def test_cider_clips_counts_and_penalises_length_worked_by_hand():
    # Image 1: reference "a b", hypothesis "a b a b"; every n-gram weighs
    # w = log 2 (its count times idf). Unigrams: hypothesis (2w, 2w), reference
    # (w, w): clipped dot 2w^2 over norms sqrt(8)w * sqrt(2)w -> 1/2.
    # Bigrams: hypothesis ab: 2w, ba: w; reference ab: w -> w^2 / (sqrt(5)w * w).
    # No 3- or 4-grams in the reference -> 0. Lengths differ by 2 ->
    # exp(-2^2 / (2 * 6^2)). Image 2 equals its reference: 5.
    image_1 = 10 * (1 / 2 + 1 / math.sqrt(5)) / 4 * math.exp(-4 / 72)
    scores = caption_scores([["a b"], ["c d"]], ["a b a b", "c d"])
    assert scores["cider"] == approx((image_1 + 5) / 2)


def test_cider_averages_over_references():
    # Image 1 has two references; the hypothesis equals one and shares nothing
    # weighted with the other: (5 + 0) / 2.
    scores = caption_scores([["a b", "x y"], ["c d"]], ["a b", "c d"])
    assert scores["cider"] == approx((2.5 + 5) / 2)


def test_cider_of_a_single_image_is_zero():
    # idf = log(1 / df) = 0 for every n-gram of a one-image corpus.
    assert caption_scores([["a b c d"]], ["a b c d"])["cider"] == 0.0


# --- arguments ----------------------------------------------------------------------


def test_scores_are_floats_with_the_expected_keys():
    scores = caption_scores([["a b c"], ["d e f"]], ["a b c", ""])
    assert set(scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l"}
    assert all(type(v) is float for v in scores.values())


@pytest.mark.parametrize(
    ("references", "hypotheses", "error", "message"),
    [
        ([["a"]], ["a", "b"], ValueError, "2 hypotheses and 1 lists"),
        ([], [], ValueError, "empty corpus"),
        ([[]], ["a"], ValueError, r"references\[0\]=\[\]"),
        (["a b"], ["a"], ValueError, r"references\[0\]='a b'"),
        ([["..."]], ["a"], ValueError, "at least one word"),
        ([["a"]], [None], TypeError, "None"),
    ],
)
def test_bad_corpora_are_rejected(references, hypotheses, error, message):
    with pytest.raises(error, match=message):
        caption_scores(references, hypotheses)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_runs_when_asked():
    scores = caption_scores(
        [["a red circle"], ["a blue square"]], ["a red circle", "a blue square"], meteor=True
    )
    assert scores["meteor"] == approx(1.0)


# --- pointing accuracy --------------------------------------------------------------


def peaked(grid_shape, *cells, steps=None):
    """An attention array with one peak per step at the given (row, column) cells."""
    attention = np.full((steps or len(cells), *grid_shape), 0.01)
    for step, (row, column) in enumerate(cells):
        attention[step, row, column] = 0.5
    return attention


def test_hit_and_miss_on_a_2x2_grid():
    # 96 px, 2 x 2 grid: cell (0, 1) is x in [48, 96), y in [0, 48).
    attention = peaked((2, 2), (0, 1), (0, 1))
    boxes = [(60, 10, 70, 20), (0, 0, 10, 10)]
    assert pointing_accuracy(attention, [0, 1], boxes, 96) == PointingCounts(1, 2)


def test_a_box_that_only_touches_the_cell_edge_is_a_miss():
    attention = peaked((2, 2), (0, 1))
    # End exclusive: x1 = 48 covers pixels up to 47, the cell starts at 48.
    assert pointing_accuracy(attention, [0], [(40, 0, 48, 10)], 96).hits == 0
    assert pointing_accuracy(attention, [0], [(40, 0, 49, 10)], 96).hits == 1
    # Below the cell: y0 = 48 is where the cell ends.
    assert pointing_accuracy(attention, [0], [(60, 48, 70, 60)], 96).hits == 0
    assert pointing_accuracy(attention, [0], [(60, 47, 70, 60)], 96).hits == 1


def test_cells_with_fractional_edges():
    # 96 px over 7 columns: column 1 spans x in [13.71, 27.43).
    attention = peaked((7, 7), (0, 1))
    assert pointing_accuracy(attention, [0], [(0, 0, 14, 5)], 96).hits == 1  # pixel 13 overlaps
    assert pointing_accuracy(attention, [0], [(0, 0, 13, 5)], 96).hits == 0


def test_a_cell_larger_than_a_small_object_counts_when_it_holds_it():
    # 6 x 6 cells of 16 px; an 11-px object spans two cells, either one is a hit
    # although neither cell's centre lies in the box.
    boxes = [(20, 20, 31, 31)]  # cells (1, 1) only
    assert pointing_accuracy(peaked((6, 6), (1, 1)), [0], boxes, 96).hits == 1
    boxes = [(26, 26, 37, 37)]  # cells (1, 1), (1, 2), (2, 1), (2, 2)
    for cell in [(1, 1), (1, 2), (2, 1), (2, 2)]:
        assert pointing_accuracy(peaked((6, 6), cell), [0], boxes, 96).hits == 1
    assert pointing_accuracy(peaked((6, 6), (0, 0)), [0], boxes, 96).hits == 0


def test_only_words_naming_objects_count_and_extra_steps_are_ignored():
    # "a small red circle <end>": "a" names nothing; the end step has no word.
    attention = peaked((2, 2), (1, 1), (0, 0), (0, 0), (1, 1), (1, 1))
    counts = pointing_accuracy(attention, [-1, 0, 0, 0], [(0, 0, 10, 10)], 96)
    assert counts == PointingCounts(2, 3)
    assert counts.accuracy == pytest.approx(2 / 3)


def test_flat_attention_is_read_in_row_major_order():
    attention = peaked((2, 3), (1, 0)).reshape(1, 6)  # flat index 3
    boxes = [(0, 50, 10, 60)]  # bottom left of a 96 x 96 image
    assert pointing_accuracy(attention, [0], boxes, 96, grid_shape=(2, 3)).hits == 1
    square = peaked((3, 3), (2, 0)).reshape(1, 9)
    assert pointing_accuracy(square, [0], [(0, 70, 10, 80)], 96).hits == 1


def test_ties_go_to_the_first_cell_in_row_major_order():
    uniform = np.full((1, 3, 3), 1 / 9)
    assert pointing_accuracy(uniform, [0], [(0, 0, 5, 5)], 96).hits == 1
    assert pointing_accuracy(uniform, [0], [(90, 90, 96, 96)], 96).hits == 0


def test_non_square_images():
    # 60 high, 120 wide, 2 x 2 grid: cell (1, 1) is x in [60, 120), y in [30, 60).
    attention = peaked((2, 2), (1, 1))
    assert pointing_accuracy(attention, [0], [(100, 40, 110, 50)], (60, 120)).hits == 1
    assert pointing_accuracy(attention, [0], [(100, 10, 110, 20)], (60, 120)).hits == 0


def test_no_object_words_gives_zero_of_zero():
    counts = pointing_accuracy(peaked((2, 2), (0, 0)), [-1], [], 96)
    assert counts == PointingCounts(0, 0)
    assert counts.accuracy == 0.0


def test_corpus_pointing_sums_counts_over_captions():
    attentions = [peaked((2, 2), (0, 0), (1, 1)), peaked((2, 2), (0, 0), (0, 0), (0, 0))]
    word_objects = [[0, 0], [-1, 0, 0]]
    boxes = [[(0, 0, 10, 10)], [(0, 0, 10, 10)]]
    counts = corpus_pointing_accuracy(attentions, word_objects, boxes, 96)
    assert counts == PointingCounts(3, 4)
    # A padded batch works too.
    batch = np.stack([np.pad(attentions[0], ((0, 1), (0, 0), (0, 0))), attentions[1]])
    assert corpus_pointing_accuracy(batch, word_objects, boxes, 96) == counts


def test_attention_on_the_named_objects_of_synthetic_scenes_scores_one():
    grid = 6
    attentions, word_objects, boxes = [], [], []
    for scene in generate_scenes(20, seed=0):
        cells = []
        for k in scene.word_objects:
            x0, y0, x1, y1 = scene.boxes[max(k, 0)]
            cells.append((((y0 + y1) // 2) * grid // 96, ((x0 + x1) // 2) * grid // 96))
        attentions.append(peaked((grid, grid), *cells).reshape(len(cells), grid * grid))
        word_objects.append(scene.word_objects)
        boxes.append(scene.boxes)
    counts = corpus_pointing_accuracy(attentions, word_objects, boxes, 96)
    assert counts.total == sum(3 * len(b) for b in boxes)
    assert counts.accuracy == 1.0


@pytest.mark.parametrize(
    ("attention", "word_objects", "kwargs", "message"),
    [
        (np.zeros((1, 2, 2)), [0, 0], {}, "2 words and 1 steps"),
        (np.zeros((2, 2, 2)), [0, 1], {}, r"\[-1, 1\)"),
        (np.zeros((1, 6)), [0], {}, "not square"),
        (np.zeros((1, 6)), [0], {"grid_shape": (4, 2)}, "with 6 cells"),
        (np.zeros((1, 2, 2)), [0], {"grid_shape": (1, 4)}, "match"),
        (np.zeros((2,)), [0], {}, r"shape=\(2,\)"),
        (np.zeros((1, 2, 2)), [0], {"image_size": 0}, "image_size=0"),
        (np.zeros((1, 2, 2)), [0], {"image_size": (1, 2, 3)}, "image_size"),
    ],
)
def test_bad_pointing_arguments_are_named(attention, word_objects, kwargs, message):
    kwargs = {"image_size": 96, **kwargs}
    with pytest.raises(ValueError, match=message):
        pointing_accuracy(attention, word_objects, [(0, 0, 1, 1)], **kwargs)


def test_corpus_pointing_needs_aligned_lists():
    with pytest.raises(ValueError, match="1, 2 and 1"):
        corpus_pointing_accuracy([np.zeros((1, 2, 2))], [[0], [0]], [[(0, 0, 1, 1)]], 96)
