"""End to end: a tiny captioning recipe trains, evaluates, exports, reloads and captions."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.tasks.processes import run_zoo
from zoo import runner
from zoo.config import RecipeError, resolve_recipe

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data/captioning"
FLICKR8K = SHARED / "flickr8k"
COCO = SHARED / "coco"

TINY = {
    "task": "captioning",
    "name": "tinycap",
    "data": {"size": 96, "validation_size": 16, "test_size": 24, "image_size": 48},
    "model": {
        "encoder": {"grid_size": 3, "coordinates": True},
        "embedding_dim": 16,
        "units": 32,
        "attention_units": 16,
        "doubly_stochastic": 0.02,
    },
    "train": {"batch_size": 32, "epochs": 1},
    "decode": {"beam_size": 2, "max_length": 12},
}


def _png(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained(trained_captioning):
    return trained_captioning


def test_run_scores_captions_and_pointing_and_exports(trained):
    _, result, logs = trained
    export = Path(result["export_dir"])
    assert export.name == "1" and (export / "saved_model.pb").is_file()
    extra = export / "assets.extra"
    for name in ("recipe.yaml", "model.keras", "metrics.json", "caption_vocab.txt"):
        assert (extra / name).is_file(), name
    metrics = json.loads((extra / "metrics.json").read_text())
    assert metrics["examples"] == 24
    for key in ("bleu_1", "bleu_4", "rouge_l"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["cider"] >= 0.0
    # 24 scenes of 1-3 objects, 3 object words each.
    assert 3 * 24 <= metrics["pointing_words"] <= 9 * 24
    assert 0.0 <= metrics["pointing_accuracy"] <= 1.0
    assert metrics["epochs"] == 1 and metrics["tokens_per_second"] > 0
    vocab = (extra / "caption_vocab.txt").read_text().split()
    assert vocab[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"] and "circle" in vocab
    text = "\n".join(logs)
    assert "test: BLEU-1" in text and "attention pointing accuracy" in text


def test_caption_generator_decodes_like_greedy_search_on_the_model(trained):
    """The exported graph's greedy caption equals a greedy search run by hand on the model."""
    import keras

    import zoo
    from zoo.data.images import decode_image_batch
    from zoo.data.synthetic_scenes import generate_scenes
    from zoo.samplers import greedy_search

    _, result, _ = trained
    loaded = zoo.load(result["export_dir"])
    scene = generate_scenes(1, seed=5, image_size=48)[0]
    got = loaded.caption(scene.image, beam_size=1)
    model = keras.saving.load_model(Path(result["export_dir"]) / "assets.extra/model.keras")
    memory = model.encode(decode_image_batch([scene.image], 48), training=False)
    out = greedy_search(
        model.step,
        model.initial_state(memory),
        memory,
        batch_size=1,
        start_id=2,
        end_id=3,
        max_length=12,
    )
    length = int(out["lengths"][0])
    vocab = (Path(result["export_dir"]) / "assets.extra/caption_vocab.txt").read_text().split()
    assert got.tokens == [vocab[i] for i in np.asarray(out["tokens"][0][:length])]
    np.testing.assert_allclose(
        got.attention.reshape(length, -1), np.asarray(out["attention"][0][:length]), atol=1e-5
    )
    assert got.score == pytest.approx(float(out["scores"][0]), abs=1e-4)


def test_zoo_load_captions_paths_bytes_arrays_and_pil_images(trained, tmp_path):
    from PIL import Image

    import zoo
    from zoo.data.synthetic_scenes import generate_scenes

    _, result, _ = trained
    model = zoo.load(Path(result["export_dir"]).parent)
    assert model.task == "captioning"
    scene = generate_scenes(1, seed=11, image_size=48)[0]
    path = tmp_path / "scene.png"
    path.write_bytes(scene.image)
    pixels = np.asarray(Image.open(io.BytesIO(scene.image)).convert("RGB"))
    results = model.caption([str(path), scene.image, pixels, Image.fromarray(pixels)])
    assert [r.image for r in results] == [str(path), "<bytes>", "<array>", "<PIL image>"]
    # The same picture however it is given (PNG is lossless).
    assert len({r.text for r in results}) == 1
    first = results[0]
    assert first.text == " ".join(first.tokens)
    assert first.attention.shape == (len(first.tokens), 3, 3)
    np.testing.assert_allclose(first.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert first.pixels().shape == (48, 48, 3)
    single = model.caption(path)  # one input in, one result out
    assert single.text == first.text and single.score == pytest.approx(first.score, abs=1e-5)
    assert model(str(path)).text == first.text  # the task-generic call
    short = model.caption(scene.image, beam_size=1, max_length=2)
    assert len(short.tokens) <= 2


def test_a_corrupt_image_in_a_batch_is_named(trained, tmp_path):
    import tensorflow as tf

    import zoo
    from zoo.data.synthetic_scenes import generate_scenes

    _, result, _ = trained
    model = zoo.load(result["export_dir"])
    good = tmp_path / "good.png"
    good.write_bytes(generate_scenes(1, seed=1, image_size=48)[0].image)
    truncated = tmp_path / "broken.jpg"
    jpeg = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(jpeg, format="JPEG")
    truncated.write_bytes(jpeg.getvalue()[:200])
    with pytest.raises(ValueError, match=r"broken\.jpg \(input 2\).*could not be decoded"):
        model.caption([good, truncated, good])
    text = tmp_path / "notes.png"
    text.write_bytes(b"<html>not an image</html>")
    with pytest.raises(ValueError, match=r"notes\.png \(input 1\) is not a JPEG, PNG"):
        model.caption([text, good])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        model.caption([good, tmp_path / "missing.png"])
    # The raw signature names the image by its index in the batch.
    raw = model.saved_model.signatures["caption"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 1 of the batch"):
        raw(image=tf.constant([good.read_bytes(), b""]))


def test_cli_predict_prints_captions_and_draws_the_overlay(trained, tmp_path):
    from PIL import Image

    from zoo.data.synthetic_scenes import generate_scenes

    _, result, _ = trained
    images = []
    for seed in (3, 4):
        path = tmp_path / f"scene{seed}.png"
        path.write_bytes(generate_scenes(1, seed=seed, image_size=48)[0].image)
        images.append(str(path))
    plot = tmp_path / "overlay.png"
    proc = run_zoo(
        "predict", result["export_dir"], *images, "--json", "--plot", str(plot), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["source"] for row in rows] == images
    assert all(row["text"] == " ".join(row["tokens"]) for row in rows)
    for i in range(2):
        drawn = tmp_path / f"overlay_{i}.png"
        if rows[i]["tokens"]:
            assert Image.open(drawn).size[0] > 100
    missing = run_zoo("predict", result["export_dir"], str(tmp_path / "nope.jpg"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such image file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(RecipeError, match=r"data\.path.*Flickr8k\.token\.txt"):
        resolve_recipe({"task": "captioning", "data": {"kind": "flickr8k"}})
    with pytest.raises(RecipeError, match=r"data\.images"):
        resolve_recipe({"task": "captioning", "data": {"kind": "karpathy", "path": __file__}})
    with pytest.raises(RecipeError, match=r"model\.encoder\.weights"):
        resolve_recipe({"task": "captioning", "model": {"encoder": {"weights": "imagenet"}}})
    with pytest.raises(RecipeError, match=r"model\.encoder\.backbone.*resnet50"):
        resolve_recipe({"task": "captioning", "model": {"encoder": {"backbone": "resnet51"}}})
    with pytest.raises(RecipeError, match=r"train\.jit_compile"):
        resolve_recipe({"task": "captioning", "train": {"jit_compile": True}})
    with pytest.raises(RecipeError, match=r"model\.sentinel.*attention_query: current"):
        resolve_recipe({"task": "captioning", "model": {"sentinel": True}})


def test_missing_weights_file_fails_before_training_and_says_how(tmp_path):

    recipe = resolve_recipe(
        TINY,
        [
            f"export.dir={tmp_path / 'saved_models'}",
            f"run.dir={tmp_path / 'runs'}",
            "model.encoder.backbone=mobilenet_v3_small",
            f"model.encoder.weights={tmp_path / 'nowhere.h5'}",
        ],
    )
    with pytest.raises(FileNotFoundError, match=r"nowhere\.h5.*model\.encoder\.weights"):
        runner.train(recipe, log=lambda line: None)
    assert not (tmp_path / "saved_models").exists()


def test_training_batches_pair_each_caption_with_its_image_and_cached_features(tmp_path):
    """Teacher forcing shifts, padding, and feature caching give the encoder's own output."""
    from zoo.data.synthetic_scenes import generate_scenes
    from zoo.tasks import captioning

    scenes = generate_scenes(5, seed=2, image_size=48)
    examples = [
        captioning.CaptionExample(s.image, (s.caption, "a red circle"), f"s{i}", s)
        for i, s in enumerate(scenes)
    ]
    recipe = resolve_recipe(
        {"task": "captioning", "data": {"image_size": 48}, "model": {"encoder": {"grid_size": 2}}}
    )
    tokenizer = captioning.build_tokenizer(examples, recipe["tokenizer"])
    ids = captioning.caption_ids(tokenizer, examples, max_words=6)
    assert ids[0] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert all(len(row) <= 6 for row in ids[1])
    dataset = captioning.make_dataset(
        examples, ids, image_size=48, batch_size=4, shuffle=False, seed=0
    )
    inputs, target = next(iter(dataset))
    assert inputs["image"].shape == (4, 48, 48, 3)
    # Decoded once and kept in memory: the same batches.
    decoded = captioning.decode_all(examples, 48)
    assert decoded.dtype == np.uint8 and decoded.shape == (5, 48, 48, 3)
    in_memory = captioning.make_dataset(
        examples, ids, image_size=48, batch_size=4, shuffle=False, seed=0, images=decoded
    )
    again, again_target = next(iter(in_memory))
    np.testing.assert_array_equal(again["image"].numpy(), inputs["image"].numpy())
    np.testing.assert_array_equal(again["caption_in"].numpy(), inputs["caption_in"].numpy())
    np.testing.assert_array_equal(again_target.numpy(), target.numpy())
    cin, out = inputs["caption_in"].numpy(), target.numpy()
    for row in range(4):
        words = ids[1][row]
        assert list(cin[row, : len(words) + 1]) == [2, *words]
        assert list(out[row, : len(words) + 1]) == [*words, 3]
        assert not cin[row, len(words) + 1 :].any() and not out[row, len(words) + 1 :].any()

    model = captioning.build_model(
        {**recipe["model"], "units": 8, "attention_units": 8, "embedding_dim": 8},
        tokenizer.vocab_size,
        48,
    )
    path = tmp_path / "features.npy"
    features = captioning.cache_features(model, examples, 48, path, log=lambda line: None)
    assert path.is_file() and features.shape == (5, 4, 128)
    from zoo.data.images import decode_image_batch

    direct = np.asarray(model.encoder(decode_image_batch([s.image for s in scenes], 48)))
    np.testing.assert_allclose(features, direct, rtol=2e-3, atol=2e-3)  # stored as float16
    cached = captioning.make_dataset(
        examples, ids, image_size=48, batch_size=4, shuffle=False, seed=0, features=features
    )
    inputs, _ = next(iter(cached))
    np.testing.assert_array_equal(
        inputs["features"].numpy(), np.asarray(features[[0, 0, 1, 1]], np.float32)
    )


@pytest.mark.skipif(not COCO.exists(), reason=f"the shared COCO sample is absent ({COCO})")
def test_coco_and_karpathy_files_split_by_image(tmp_path):
    from zoo.tasks import captioning

    recipe = resolve_recipe(
        {
            "task": "captioning",
            "data": {"kind": "coco", "path": str(COCO / "captions_sample.json")},
        }
    )
    splits = captioning.load_splits(recipe["data"])
    sizes = [len(splits.train), len(splits.validation), len(splits.test)]
    assert sum(sizes) == 40 and sizes[1] == sizes[2] == 8  # a fifth each: 40 is too few for 300
    names = [e.image for part in (splits.train, splits.validation, splits.test) for e in part]
    assert len(set(names)) == 40 and all(Path(n).is_file() for n in names)
    assert all(e.captions for e in splits.test)

    karpathy = {
        "dataset": "flickr8k",
        "images": [
            {
                "filename": e.image.split("/")[-1],
                "split": split,
                "sentences": [{"raw": c, "tokens": c.split()} for c in e.captions],
            }
            for split, part in (("train", splits.train), ("val", splits.validation))
            for e in part
        ]
        + [
            {
                "filename": e.image.split("/")[-1],
                "split": "test",
                "sentences": [{"raw": e.captions[0]}],
            }
            for e in splits.test
        ],
    }
    path = tmp_path / "dataset_coco_sample.json"
    path.write_text(json.dumps(karpathy))
    recipe = resolve_recipe(
        {
            "task": "captioning",
            "data": {"kind": "karpathy", "path": str(path), "images": str(COCO / "images")},
        }
    )
    again = captioning.load_splits(recipe["data"])
    assert [len(again.train), len(again.validation), len(again.test)] == sizes
    assert [e.captions[0] for e in again.test] == [e.captions[0] for e in splits.test]


def test_an_unreadable_training_image_is_named_by_its_file(tmp_path):
    import tensorflow as tf

    from zoo.data.synthetic_scenes import generate_scenes
    from zoo.tasks import captioning

    good = tmp_path / "good.png"
    good.write_bytes(generate_scenes(1, seed=0, image_size=48)[0].image)
    bad = tmp_path / "photo_0042.jpg"
    # Not an image at all (an error page saved under the photo's name). Truncated JPEGs are
    # left out before training by the readers' check (`data.verify_images`, on by default).
    bad.write_bytes(b"<html>Not Found</html>")
    examples = [
        captioning.CaptionExample(str(good), ("a red circle",), "good.png"),
        captioning.CaptionExample(str(bad), ("a blue square",), "photo_0042.jpg"),
    ]
    recipe = resolve_recipe({"task": "captioning"})
    tokenizer = captioning.build_tokenizer(examples, recipe["tokenizer"])
    ids = captioning.caption_ids(tokenizer, examples)
    dataset = captioning.make_dataset(
        examples, ids, image_size=48, batch_size=2, shuffle=False, seed=0
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="photo_0042.jpg"):
        next(iter(dataset))


def test_object_pointing_scores_generated_words_on_the_boxes_of_their_image():
    from zoo.data.coco_instances import ImageObjects
    from zoo.tasks.captioning.data import CaptionExample
    from zoo.tasks.captioning.task import format_metrics, score_object_pointing

    objects = ImageObjects(100.0, 100.0, (("dog", (0.0, 0.0, 40.0, 40.0)),))
    examples = [
        CaptionExample("a.jpg", ("a dog",), "1", objects=objects),
        CaptionExample("b.jpg", ("a cat",), "2"),  # no boxes: not scored
    ]
    attention = np.zeros((3, 2, 2), np.float32)
    attention[1, 0, 0] = 1.0  # "dog" looks at the top-left cell, where the dog is
    attention[2, 1, 1] = 1.0  # "man": no person box in the image
    outputs = [
        {"tokens": np.array([b"a", b"dog", b"man", b""]), "length": 3, "attention": attention},
        {"tokens": np.array([b"dog"]), "length": 1, "attention": attention},
    ]
    metrics = score_object_pointing(examples, outputs)
    assert metrics["object_pointing_accuracy"] == 1.0
    assert metrics["object_pointing_words"] == 1
    assert metrics["object_pointing_unboxed_words"] == 1
    assert metrics["object_pointing_centre_baseline"] == 0.0  # cell (1, 1) misses the dog
    assert metrics["object_pointing_uniform_baseline"] == 0.25
    assert metrics["object_pointing_by_category"] == {"dog": {"hits": 1, "words": 1}}
    text = format_metrics({"examples": 2, "bleu_4": 0.1, "images_per_second": 1.0, **metrics})
    assert "attention on COCO boxes: 1.000 of 1 object words peak on their object" in text


@pytest.mark.skipif(not COCO.exists(), reason=f"the shared COCO sample is absent ({COCO})")
def test_coco_instances_beside_the_captions_are_read_and_can_be_named(tmp_path):
    from zoo.tasks import captioning

    data = resolve_recipe(
        {"task": "captioning", "data": {"kind": "coco", "path": str(COCO / "captions_sample.json")}}
    )["data"]
    examples, report = captioning.read_files(data)
    assert "instances_sample.json: 385 annotations, 40 images with 385 boxes kept" in report
    assert all(e.objects is not None for e in examples)
    elephants = next(e for e in examples if e.name == "54718")
    assert {category for category, _ in elephants.objects.boxes} == {"elephant"}
    # An explicit file; a captions file with no instances beside it has no boxes.
    alone = tmp_path / "captions_alone.json"
    alone.write_text((COCO / "captions_sample.json").read_text())
    data["path"], data["images"] = str(alone), str(COCO / "images")
    assert all(e.objects is None for e in captioning.read_files(data)[0])
    data["instances"] = str(COCO / "instances_sample.json")
    assert all(e.objects is not None for e in captioning.read_files(data)[0])
    with pytest.raises(RecipeError, match=r"data\.instances: only for data\.kind 'coco'"):
        resolve_recipe(
            {
                "task": "captioning",
                "data": {"kind": "flickr8k", "path": str(alone), "instances": str(alone)},
            }
        )


@pytest.mark.skipif(not COCO.exists(), reason=f"the shared COCO sample is absent ({COCO})")
def test_cli_evaluate_on_coco_reports_the_attention_on_its_boxes(trained, tmp_path):
    _, result, _ = trained
    output = tmp_path / "metrics.json"
    proc = run_zoo(
        "evaluate",
        result["export_dir"],
        "--data",
        str(COCO / "captions_sample.json"),
        "--output",
        str(output),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test: attention on COCO boxes:" in proc.stdout
    metrics = json.loads(output.read_text())
    assert metrics["examples"] == 40
    # The tiny synthetic model knows shape words only: none names a COCO category.
    assert metrics["object_pointing_words"] == 0
    assert "object_pointing_centre_baseline" in metrics


def test_reference_pointing_scores_each_reference_on_its_own_image():
    """Every reference caption, read with teacher forcing against its own image's memory."""
    import tensorflow as tf

    from zoo.data.coco_instances import ImageObjects
    from zoo.data.images import decode_image_batch
    from zoo.data.synthetic_scenes import generate_scenes
    from zoo.metrics.object_pointing import ObjectPointing, object_pointing
    from zoo.tasks import captioning
    from zoo.tasks.captioning.task import build_model, reference_attention, score_reference_pointing

    dog = ImageObjects(48.0, 48.0, (("dog", (0.0, 0.0, 20.0, 20.0)),))
    people = ImageObjects(48.0, 48.0, (("person", (24.0, 0.0, 48.0, 48.0)),))
    scenes = generate_scenes(3, seed=4, image_size=48)
    examples = [
        captioning.CaptionExample(
            scenes[0].image, ("a dog runs", "the dog", "dog and man"), "0", objects=dog
        ),
        captioning.CaptionExample(scenes[1].image, ("a cat",), "1"),  # no boxes: left out
        captioning.CaptionExample(
            scenes[2].image, ("a man and a dog", "two people"), "2", objects=people
        ),
    ]
    recipe = resolve_recipe(
        {"task": "captioning", "data": {"image_size": 48}, "model": {"encoder": {"grid_size": 2}}}
    )
    tokenizer = captioning.build_tokenizer(examples, {**recipe["tokenizer"], "min_count": 1})
    model = build_model(recipe["model"], tokenizer.vocab_size, 48)
    metrics = score_reference_pointing(model, tokenizer, examples, 48)
    read = reference_attention(model, tokenizer, examples, 48)
    assert [owner for owner, _, _ in read] == [0, 0, 0, 1, 2, 2]
    # The same attention and counts, one caption at a time through the teacher-forced pass.
    expected = ObjectPointing()
    captions = [(i, c) for i, e in enumerate(examples) for c in e.captions]
    for (owner, caption), (_, ids, attention) in zip(captions, read, strict=True):
        image = decode_image_batch([examples[owner].image_bytes()], 48)
        caption_in = tf.constant([[2, *ids]])
        _, alone = model.forward_with_attention({"image": image, "caption_in": caption_in})
        np.testing.assert_allclose(
            attention, np.asarray(alone)[0, : len(ids)], rtol=1e-5, atol=1e-7
        )
        objects = examples[owner].objects
        if objects is not None:
            expected.add(
                object_pointing(
                    caption.split(),
                    attention.reshape(-1, 2, 2),
                    objects.boxes,
                    (objects.width, objects.height),
                )
            )
    assert expected.total == 5  # image 0: dog x 3 (man: no box); image 2: man, people (dog: no box)
    assert metrics["reference_pointing_words"] == expected.total
    assert metrics["reference_pointing_accuracy"] == pytest.approx(expected.accuracy)
    assert metrics["reference_pointing_centre_baseline"] == pytest.approx(expected.centre_accuracy)


def test_the_attention_scorer_trains_at_its_own_rate():
    from zoo.models.learning_rate_multipliers import LearningRateMultipliers
    from zoo.tasks.captioning.task import build_model, compile_model

    recipe = resolve_recipe(
        {
            "task": "captioning",
            "data": {"image_size": 48},
            "model": {"encoder": {"grid_size": 2}},
            "train": {"attention_learning_rate_multiplier": 10},
        }
    )
    model = build_model(recipe["model"], 20, 48)
    compile_model(model, recipe["train"], 10)
    optimizer = model.optimizer
    assert isinstance(optimizer, LearningRateMultipliers)
    scorer = {v.path for v in model.decoder.attention_layer.trainable_weights}
    assert len(scorer) == 4  # keys (kernel, bias), query, v
    assert optimizer.multipliers == {path: 10.0 for path in scorer}
    # One Adam step: the scorer moves ten times as far as it would at the common rate.
    images = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    caption_in = np.array([[2, 5, 6], [2, 7, 0]], "int32")
    caption_out = np.array([[5, 6, 3], [7, 3, 0]], "int32")
    v, other = model.decoder.attention_layer.v, model.decoder.init_h.kernel
    before = [np.asarray(v).copy(), np.asarray(other).copy()]
    model.train_on_batch({"image": images, "caption_in": caption_in}, caption_out)
    # Adam's first step is about the rate for every weight with a gradient.
    v_step = np.median(np.abs(np.asarray(v) - before[0]))
    other_step = np.median(np.abs(np.asarray(other) - before[1]))
    assert v_step == pytest.approx(1e-2, rel=0.05)
    assert other_step == pytest.approx(1e-3, rel=0.05)
    with pytest.raises(RecipeError, match="attention_learning_rate_multiplier"):
        resolve_recipe({"task": "captioning", "train": {"attention_learning_rate_multiplier": -1}})
