import numpy as np
import pytest

from zoo.metrics.object_pointing import CATEGORY_WORDS, ObjectPointing, object_pointing


def _peaks(grid, *cells):
    """Attention `(len(cells), grid, grid)` with each step's peak on its `(row, column)`."""
    attention = np.full((len(cells), grid, grid), 0.01)
    for step, (row, column) in enumerate(cells):
        attention[step, row, column] = 0.5
    return attention


def test_words_are_scored_on_the_cells_their_category_covers():
    # A 100 x 50 (width x height) image on a 2 x 4 grid: cells of 25 x 25 pixels.
    boxes = [("person", (0, 0, 30, 20)), ("dog", (80, 30, 100, 50)), ("person", (60, 0, 70, 10))]
    words = ["a", "Man", "and", "his", "dog", "and", "a", "cat"]
    # Man -> row 0, column 1 (x 25-50): overlaps the first person (x < 30). dog -> row 0,
    # column 3: the dog is in row 1 only. cat: no cat box, not scored.
    attention = np.zeros((8, 2, 4))
    attention[:, 0, 0] = 1.0
    attention[1] = 0
    attention[1, 0, 1] = 1.0
    attention[4] = 0
    attention[4, 0, 3] = 1.0
    counts = object_pointing(words, attention, boxes, (100, 50))
    assert (counts.hits, counts.total, counts.unboxed) == (1, 2, 1)
    assert counts.by_category == {"person": [1, 1], "dog": [0, 1]}
    # The centre cell of a 2 x 4 grid is (1, 2): x 50-75, y 25-50. No person there, no dog.
    assert counts.centre_hits == 0
    # person covers cells (0, 0), (0, 1), (0, 2) (x 60-70): 3 of 8; dog covers (1, 3): 1 of 8.
    assert counts.uniform_hits == pytest.approx(3 / 8 + 1 / 8)
    assert counts.accuracy == 0.5 and counts.uniform_accuracy == pytest.approx(0.25)


def test_a_box_touching_a_cell_edge_does_not_overlap_it():
    boxes = [("dog", (0, 0, 50, 50))]  # exactly the top-left cell of a 2 x 2 grid on 100 px
    hit = object_pointing(["dog"], _peaks(2, (0, 0)), boxes, (100, 100))
    beside = object_pointing(["dog"], _peaks(2, (0, 1)), boxes, (100, 100))
    assert (hit.hits, beside.hits) == (1, 0)
    assert hit.uniform_hits == 0.25


def test_the_first_maximum_is_the_peak_and_the_centre_of_an_odd_grid_is_its_middle():
    boxes = [("cat", (40, 40, 60, 60))]  # the middle cell of a 3 x 3 grid on 100 px
    tie = np.zeros((1, 3, 3))
    tie[0, 1, 1] = tie[0, 2, 2] = 1.0
    counts = object_pointing(["kitten"], tie, boxes, (100, 100))
    assert (counts.hits, counts.centre_hits) == (1, 1)


def test_corpus_counts_add_up():
    total = ObjectPointing()
    boxes = [("person", (0, 0, 10, 10))]
    for cell in [(0, 0), (1, 1), (0, 0)]:
        total.add(object_pointing(["woman"], _peaks(2, cell), boxes, (20, 20)))
    assert (total.hits, total.total) == (2, 3)
    assert total.by_category == {"person": [2, 3]}
    assert ObjectPointing().accuracy == 0.0  # no word scored


def test_the_word_table_covers_coco_and_maps_the_words_captions_use():
    assert {CATEGORY_WORDS[w] for w in ("man", "women", "people", "boy", "kids")} == {"person"}
    assert CATEGORY_WORDS["puppy"] == "dog" and CATEGORY_WORDS["hydrant"] == "fire hydrant"
    assert "orange" not in CATEGORY_WORDS  # the colour, more often than the fruit
    assert len(set(CATEGORY_WORDS.values())) == 79


def test_attention_with_fewer_steps_than_words_is_refused():
    with pytest.raises(ValueError, match=r"a step per word. Received: shape=\(1, 2, 2\) for 2"):
        object_pointing(["a", "dog"], np.ones((1, 2, 2)), [], (10, 10))
