import hashlib
import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from zoo.data.synthetic_scenes import (
    COLOURS,
    SHAPES,
    SIZES,
    VOCABULARY,
    Scene,
    generate_scenes,
    split_scenes,
)

IMAGE_SIZE = 96


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return generate_scenes(600, seed=11)


def pixels(scene: Scene) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(scene.image)).convert("RGB")).astype(int)


def saturated(image: np.ndarray) -> np.ndarray:
    # The background is grey with a tint of +-6 a channel; every colour spreads far more.
    return image.max(axis=-1) - image.min(axis=-1) > 50


def centre(box):
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2


def test_same_seed_same_bytes_and_different_seed_different_scenes():
    first, again = generate_scenes(20, seed=5), generate_scenes(20, seed=5)
    assert first == again
    other = generate_scenes(20, seed=6)
    assert [s.image for s in other] != [s.image for s in first]
    assert [s.caption for s in other] != [s.caption for s in first]


def test_a_smaller_set_is_a_prefix_of_a_larger_one():
    assert generate_scenes(4, seed=2) == generate_scenes(9, seed=2)[:4]


def test_pixels_are_pinned_independent_of_the_png_encoder():
    # Pixels come from `random.random()` and integer rasterisation only, so
    # they are the same on every machine; PNG bytes may differ with zlib.
    scene = generate_scenes(1, seed=0)[0]
    assert (
        scene.caption
        == "a large yellow triangle above a large orange cross above a small red triangle"
    )
    digest = hashlib.sha256(pixels(scene).astype(np.uint8).tobytes()).hexdigest()
    assert digest == PIXELS_SHA256


PIXELS_SHA256 = "86fd3ce9a498ab9a94868f41fbfb853a3cbf26b7e7321c08a1543ae88e9ab53b"


def test_captions_and_layouts_do_not_depend_on_image_size():
    small, large = generate_scenes(30, seed=4, image_size=64), generate_scenes(30, seed=4)
    assert [s.caption for s in small] == [s.caption for s in large]
    for a, b in zip(small, large, strict=True):
        for box_a, box_b in zip(a.boxes, b.boxes, strict=True):
            # Same cell, scaled: centres agree to within the jitter of a cell.
            assert abs(centre(box_a)[0] * 96 / 64 - centre(box_b)[0]) < 32
            assert abs(centre(box_a)[1] * 96 / 64 - centre(box_b)[1]) < 32


def test_images_decode_as_rgb_png_of_the_requested_size():
    for image_size in (48, 64, 96, 128):
        scene = generate_scenes(1, seed=1, image_size=image_size)[0]
        image = Image.open(io.BytesIO(scene.image))
        assert image.format == "PNG"
        assert image.mode == "RGB"
        assert image.size == (image_size, image_size)


def test_boxes_are_inside_the_image_disjoint_and_clearly_apart(scenes):
    for scene in scenes:
        for x0, y0, x1, y1 in scene.boxes:
            assert 0 <= x0 < x1 <= IMAGE_SIZE and 0 <= y0 < y1 <= IMAGE_SIZE
        for i, a in enumerate(scene.boxes):
            for b in scene.boxes[i + 1 :]:
                gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])
                assert gap >= 6, (scene.caption, scene.boxes)


def test_sizes_differ_clearly(scenes):
    sides = {(o.size, o.box[2] - o.box[0], o.box[3] - o.box[1]) for s in scenes for o in s.objects}
    assert sides == {("small", 11, 11), ("large", 22, 22)}


def test_object_count_is_uniform_between_the_limits(scenes):
    counts = Counter(len(s.objects) for s in scenes)
    assert set(counts) == {1, 2, 3}
    assert min(counts.values()) > 150
    assert {len(s.objects) for s in generate_scenes(20, seed=1, min_objects=3)} == {3}
    assert {len(s.objects) for s in generate_scenes(20, seed=1, max_objects=1)} == {1}


def test_word_objects_name_the_objects_in_caption_order(scenes):
    for scene in scenes:
        words = scene.caption.split()
        assert len(words) == len(scene.word_objects)
        named = [k for k in scene.word_objects if k >= 0]
        # Each object is named by three words in a row, objects in order.
        assert named == [k for k in range(len(scene.objects)) for _ in range(3)]
        for k, obj in enumerate(scene.objects):
            start = scene.word_objects.index(k)
            assert words[start - 1] == "a" and scene.word_objects[start - 1] == -1
            assert words[start : start + 3] == [obj.size, obj.colour, obj.shape]
        for word, k in zip(words, scene.word_objects, strict=True):
            if k == -1:
                assert word not in SIZES and word not in COLOURS and word not in SHAPES


def test_vocabulary_has_26_words_and_all_of_them_are_used(scenes):
    assert len(VOCABULARY) == len(set(VOCABULARY)) == 26
    used = {w for s in scenes for w in s.caption.split()}
    assert used == set(VOCABULARY)
    lengths = [len(s.caption.split()) for s in scenes]
    assert min(lengths) == 7 and max(lengths) == 16


def test_objects_are_described_left_to_right_then_top_to_bottom(scenes):
    for scene in scenes:
        for a, b in zip(scene.boxes, scene.boxes[1:], strict=False):
            # Either b is wholly right of a, or in the same column wholly below it.
            assert a[2] <= b[0] or (a[3] <= b[1] and abs(centre(a)[0] - centre(b)[0]) < 16)


def test_relation_words_match_the_boxes(scenes):
    seen = Counter()
    for scene in scenes:
        words = scene.caption.split()
        starts = [scene.word_objects.index(k) for k in range(len(scene.objects))]
        for k in range(1, len(scene.objects)):
            relation = " ".join(words[starts[k - 1] + 3 : starts[k] - 1])
            (ax, ay), (bx, by) = centre(scene.boxes[k - 1]), centre(scene.boxes[k])
            dx, dy = bx - ax, by - ay
            expected = {
                "left of": dx > abs(dy),
                "above": dy > abs(dx),
                "below": -dy > abs(dx),
            }
            assert expected.get(relation), (scene.caption, scene.boxes)
            seen[relation] += 1
    assert set(seen) == {"left of", "above", "below"}


def test_a_lone_object_is_placed_by_thirds_of_the_image(scenes):
    rows = {"top": 0, "bottom": 2}
    columns = {"left": 0, "right": 2}
    for scene in scenes:
        if len(scene.objects) != 1:
            continue
        place = scene.caption.split()[4:]
        x, y = centre(scene.boxes[0])
        row, column = int(y * 3 // IMAGE_SIZE), int(x * 3 // IMAGE_SIZE)
        if place == ["in", "the", "middle"]:
            assert (row, column) == (1, 1)
        elif place[0] == "on":
            assert row == 1 and column == columns[place[2]]
        else:
            assert place[:2] == ["at", "the"]
            assert row == rows[place[2]]
            assert column == (columns[place[3]] if len(place) == 4 else 1)


def test_objects_are_drawn_in_their_colour_inside_their_box_only(scenes):
    for scene in scenes[:100]:
        image = pixels(scene)
        background = np.ones(image.shape[:2], dtype=bool)
        for x0, y0, x1, y1 in scene.boxes:
            background[y0:y1, x0:x1] = False
        # A light, nearly grey background (no uint8 wrap-around of the gradient).
        assert 190 <= image[background].min() and image[background].max() <= 254
        outside = saturated(image)
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            inside = saturated(image[y0:y1, x0:x1])
            mean = image[y0:y1, x0:x1][inside].mean(axis=0)
            nearest = min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum())
            assert nearest == obj.colour
            outside[y0:y1, x0:x1] = False
        assert not outside.any(), scene.caption


def test_shapes_touch_their_box_and_have_their_shape():
    drawn = {}
    for scene in generate_scenes(200, seed=3, max_objects=1):
        obj = scene.objects[0]
        x0, y0, x1, y1 = obj.box
        drawn.setdefault((obj.shape, obj.size), saturated(pixels(scene)[y0:y1, x0:x1]))
    assert len(drawn) == 10
    for (shape, _), mask in drawn.items():
        side, middle = len(mask), len(mask) // 2
        assert mask[:, middle].all(), shape  # touches the top and the bottom
        if shape != "triangle":
            assert mask[middle].all(), shape  # and the left and the right
        corners = mask[[0, 0, -1, -1], [0, -1, 0, -1]]
        if shape == "square":
            assert mask.all()
        elif shape == "triangle":
            assert mask[-1].all() and 1 <= mask[0].sum() <= 2  # base at the bottom, apex up
            assert mask.sum() == pytest.approx(side * side / 2, rel=0.2)
        else:
            assert not corners.any(), shape
        if shape == "circle":
            assert mask.sum() == pytest.approx(np.pi * side * side / 4, rel=0.1)
        if shape == "diamond":
            assert mask.sum() == pytest.approx(side * side / 2, rel=0.2)


def test_split_is_disjoint_complete_ordered_and_seeded():
    items = list(range(50))
    train, validation, test = split_scenes(items, 10, 5, seed=1)
    assert (len(train), len(validation), len(test)) == (35, 10, 5)
    assert sorted(train + validation + test) == items
    for part in (train, validation, test):
        assert part == sorted(part)
    assert split_scenes(items, 10, 5, seed=1) == (train, validation, test)
    assert split_scenes(items, 10, 5, seed=2) != (train, validation, test)
    assert split_scenes(items, 0, 0) == (items, [], [])


def test_split_of_scenes_keeps_the_scenes(scenes):
    train, validation, test = split_scenes(scenes[:30], 5, 5, seed=0)
    assert len({s.image for s in train + validation + test}) == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "size=-1"),
        ({"size": 2, "image_size": 32}, "image_size=32"),
        ({"size": 2, "min_objects": 0}, "min_objects=0"),
        ({"size": 2, "max_objects": 4}, "max_objects=4"),
        ({"size": 2, "min_objects": 3, "max_objects": 2}, "max_objects=2"),
        ({"size": 2, "seed": 1.5}, "seed=1.5"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_scenes(**kwargs)


def test_split_larger_than_the_data_is_an_error():
    with pytest.raises(ValueError, match="validation_size=3, test_size=3"):
        split_scenes(list(range(5)), 3, 3)
