"""The captioning task's data: images with captions, their splits, and the input pipelines.

Examples come from the synthetic scenes or a real data set read in place
(Flickr8k, Karpathy's JSON, COCO); `make_datasets` feeds `fit` from cached
encoder features, images decoded once, or images decoded at every epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.data.images import decode_image, image_dataset
from zoo.data.translation_readers import DataFormatError
from zoo.tasks.base import Splits
from zoo.text.vocabulary import END_ID, START_ID
from zoo.text.word_tokenizer import WordTokenizer

# Images encoded at once when caching features, and decoded at once in evaluation.
IMAGE_BATCH = 32
# A split whose decoded images fit in this many bytes is decoded once and kept in memory.
IMAGES_IN_MEMORY = 1 << 30


@dataclasses.dataclass
class CaptionExample:
    """One image and its reference captions.

    Attributes:
        image: the image file's path, or its encoded bytes (synthetic scenes).
        captions: the reference captions (at least one).
        name: what to call the image in logs and samples.
        scene: the `zoo.data.synthetic_scenes.Scene` it was drawn from (boxes and
            the object each word names, for pointing accuracy); None for real data.
        objects: the image's annotated boxes (`zoo.data.coco_instances.ImageObjects`,
            from a COCO instances file), for scoring the attention on real photos.
    """

    image: str | bytes
    captions: tuple[str, ...]
    name: str
    scene: object | None = None
    objects: object | None = None

    def image_bytes(self) -> bytes:
        if isinstance(self.image, bytes):
            return self.image
        return Path(self.image).read_bytes()


# --- data -----------------------------------------------------------------------------------
def _from_records(records, objects: dict | None = None) -> list[CaptionExample]:
    objects = objects or {}
    return [
        CaptionExample(r.image, tuple(r.captions), r.image_id, objects=objects.get(r.image_id))
        for r in records
    ]


def _coco_objects(captions_path: str, instances_path: str | None, reports: list) -> dict:
    """The boxes of a COCO captions file's images: from `instances_path`, else the file beside."""
    from zoo.data.coco_instances import instances_beside, read_coco_instances

    path = instances_path or instances_beside(captions_path)
    if path is None:
        return {}
    objects, report = read_coco_instances(path)
    reports.append(report.summary())
    return objects


def _split_images(items: list, validation_size: int, test_size: int, seed: int, what: str):
    """Held-out images drawn at random: (train, validation, test), each in input order.

    When the data is too small for the sizes asked, a fifth of it (at least
    one image each) is held out for validation and another for testing.
    """
    if len(items) < 3:
        raise DataFormatError(f"{what}: {len(items)} images; at least 3 are needed to split")
    if validation_size + test_size >= len(items):
        validation_size = test_size = max(1, len(items) // 5)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    validation = set(order[:validation_size])
    test = set(order[validation_size : validation_size + test_size])
    train = [x for i, x in enumerate(items) if i not in validation and i not in test]
    return (
        train,
        [x for i, x in enumerate(items) if i in validation],
        [x for i, x in enumerate(items) if i in test],
    )


def load_splits(data: dict) -> Splits:
    """The recipe's images and captions: drawn synthetic scenes, or a real data set read in place."""
    from zoo.data import caption_readers

    size, seed = data["image_size"], data["seed"]
    if data["kind"] == "synthetic":
        from zoo.data.synthetic_scenes import generate_scenes, split_scenes

        scenes = generate_scenes(
            data["size"] + data["validation_size"] + data["test_size"],
            seed=seed,
            image_size=size,
            min_objects=data["min_objects"],
            max_objects=data["max_objects"],
        )
        parts = split_scenes(
            range(len(scenes)), data["validation_size"], data["test_size"], seed=seed
        )
        named = [
            [
                CaptionExample(scenes[i].image, (scenes[i].caption,), f"scene {i}", scenes[i])
                for i in part
            ]
            for part in parts
        ]
        report = f"synthetic scenes: {len(scenes)} drawn at {size} px (seed {seed})"
        return _limited(Splits(*named, report), data)

    verify = data["verify_images"]
    reports = []
    if data["kind"] == "flickr8k":
        parts, report = caption_readers.read_flickr8k(
            data["path"], data["images"], verify_images=verify
        )
        reports.append(report.summary())
        if "all" in parts:
            train, validation, test = _split_images(
                _from_records(parts["all"]),
                data["validation_size"],
                data["test_size"],
                seed,
                data["path"],
            )
            reports.append("no split lists beside the token file: images split at random")
        else:
            train, validation, test = (
                _from_records(parts.get(name, [])) for name in ("train", "validation", "test")
            )
    elif data["kind"] == "karpathy":
        parts, report = caption_readers.read_karpathy(
            data["path"], data["images"], verify_images=verify
        )
        reports.append(report.summary())
        train, validation, test = (
            _from_records(parts.get(name, [])) for name in ("train", "validation", "test")
        )
    else:  # coco
        records, report = caption_readers.read_coco_captions(
            data["path"], data["images"], verify_images=verify
        )
        reports.append(report.summary())
        train = _from_records(records, _coco_objects(data["path"], data["instances"], reports))
        if data["validation_path"] is None:
            train, validation, test = _split_images(
                train, data["validation_size"], data["test_size"], seed, data["path"]
            )
        else:
            held, report = caption_readers.read_coco_captions(
                data["validation_path"], data["validation_images"], verify_images=verify
            )
            reports.append(report.summary())
            held = _from_records(held, _coco_objects(data["validation_path"], None, reports))
            random.Random(seed).shuffle(held)
            half = min(data["validation_size"], len(held) // 2)
            validation, test = held[:half], held[half : half + data["test_size"]]
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        if not part:
            raise DataFormatError(f"{data['path']}: no {name} images (after reading: {reports})")
    return _limited(Splits(train, validation, test, "; ".join(reports)), data)


def read_files(data: dict) -> tuple[list[CaptionExample], str]:
    """Every image of a real data section, unsplit (what `zoo evaluate --data` scores)."""
    from zoo.data import caption_readers

    verify = data["verify_images"]
    objects = {}
    if data["kind"] == "coco":
        records, report = caption_readers.read_coco_captions(
            data["path"], data["images"], verify_images=verify
        )
        reports = [report.summary()]
        objects = _coco_objects(data["path"], data["instances"], reports)
        summary = "; ".join(reports)
    else:
        reader = {
            "flickr8k": caption_readers.read_flickr8k,
            "karpathy": caption_readers.read_karpathy,
        }[data["kind"]]
        parts, report = reader(data["path"], data["images"], verify_images=verify)
        records = [record for part in parts.values() for record in part]
        summary = report.summary()
    examples = _from_records(records, objects)
    if not examples:
        raise DataFormatError(f"{data['path']}: no captioned image ({summary})")
    return examples, summary


def _limited(splits: Splits, data: dict) -> Splits:
    if data["max_images"] and len(splits.train) > data["max_images"]:
        splits.train = splits.train[: data["max_images"]]
        splits.report += f"; training images limited to {data['max_images']}"
    return splits


def build_tokenizer(train: list[CaptionExample], config: dict) -> WordTokenizer:
    return WordTokenizer.build(
        [c for example in train for c in example.captions],
        config["vocab_size"],
        min_count=config["min_count"],
        lowercase=config["lowercase"],
    )


def caption_ids(
    tokenizer, examples: list[CaptionExample], max_words: int | None = None
) -> tuple[list[int], list[list[int]]]:
    """One entry per caption: the index of its image in `examples`, and its word ids (cut)."""
    owners = [i for i, example in enumerate(examples) for _ in example.captions]
    texts = [c for example in examples for c in example.captions]
    ids: list[list[int]] = []
    for start in range(0, len(texts), 4096):
        ids += tokenizer.tokenize(tf.constant(texts[start : start + 4096])).to_list()
    if max_words:
        ids = [row[:max_words] for row in ids]
    return owners, ids


def _teacher_forcing(ids: list[list[int]]) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """`caption_in = [START] w_1 .. w_n`, target `w_1 .. w_n [END]`, as ragged rows."""
    caption_in = tf.ragged.constant([[START_ID, *row] for row in ids], dtype=tf.int32)
    caption_out = tf.ragged.constant([[*row, END_ID] for row in ids], dtype=tf.int32)
    return caption_in, caption_out


def encoder_is_frozen(model) -> bool:
    """Whether the encoder's output for an image never changes during training (cacheable)."""
    encoder = model.encoder
    return not encoder.trainable_weights and encoder.dropout == 0


# --- input pipelines ------------------------------------------------------------------------
def _image_sources(examples: list[CaptionExample]) -> list:
    return [example.image for example in examples]


def _fill_from_images(out, examples, image_size: int, batch_size: int, convert) -> np.ndarray:
    """Writes `convert(decoded images)` of each batch into `out` (rows in example order)."""
    bar = keras.utils.Progbar(len(examples), unit_name="image")
    start = 0
    for images in image_dataset(_image_sources(examples), image_size).batch(batch_size):
        values = np.asarray(convert(images))
        out[start : start + len(values)] = values.astype(out.dtype)
        start += len(values)
        bar.add(len(values))
    return out


def cache_features(
    model, examples: list[CaptionExample], image_size: int, path: Path, log
) -> np.ndarray:
    """Encodes each image once into `path` (a float16 .npy file); returns it memory-mapped.

    The file name carries a digest of the encoder and the images, so a rerun
    (or a resumed run) of the same recipe reuses it, and a changed recipe
    never reads stale features.
    """
    if path.exists():
        log(f"data: features of {len(examples)} images read from {path}")
        return np.load(path, mmap_mode="r")
    grid = model.encoder.grid_size**2
    partial = path.with_name(path.name + ".partial")
    out = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.float16, shape=(len(examples), grid, model.encoder.output_dim)
    )
    _fill_from_images(
        out, examples, image_size, IMAGE_BATCH, lambda images: model.encoder(images, training=False)
    )
    out.flush()
    del out
    partial.rename(path)
    return np.load(path, mmap_mode="r")


def decode_all(examples: list[CaptionExample], image_size: int) -> np.ndarray:
    """Every image decoded and resized once: uint8 `(len(examples), S, S, 3)`."""
    out = np.empty((len(examples), image_size, image_size, 3), dtype=np.uint8)
    # decode_image gives [0, 255] floats; round, as an 8-bit image file would.
    return _fill_from_images(out, examples, image_size, 256, lambda images: np.rint(images))


def feature_cache_path(run_dir: Path, recipe: dict, split: str, examples) -> Path:
    names = "\n".join(e.name if not isinstance(e.image, str) else e.image for e in examples)
    # A fine-tuned model's encoder is the base export's: name it in the key.
    encoder = [recipe["model"]["encoder"], recipe.get("init_from")]
    key = json.dumps([*encoder, recipe["data"]["image_size"], names])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return run_dir / f"features-{split}-{digest}.npy"


def make_dataset(
    examples: list[CaptionExample],
    ids: tuple[list[int], list[list[int]]],
    *,
    image_size: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    features: np.ndarray | None = None,
    images: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches `({"image" | "features", "caption_in"}, caption_out)`, one element per caption.

    Captions are padded with 0 to the longest of their batch. Each image
    comes from `features` (cached encoder outputs, `(len(examples), L, D)`),
    from `images` (decoded once, uint8 `(len(examples), S, S, 3)`), or else
    is read, decoded and resized in `tf.data` at every epoch.
    """
    owners, rows = ids
    caption_in, caption_out = _teacher_forcing(rows)
    owners = tf.constant(owners, tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((owners, caption_in, caption_out))
    if shuffle:
        dataset = dataset.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    if features is not None or images is not None:
        key, array = ("features", features) if features is not None else ("image", images)

        def gather(index):
            return np.asarray(array[np.asarray(index)], dtype=np.float32)

        def attach(index, cin, cout):
            batch = tf.numpy_function(gather, [index], tf.float32, stateful=False)
            batch = tf.ensure_shape(batch, [None, *array.shape[1:]])
            return {key: batch, "caption_in": cin.to_tensor(0)}, cout.to_tensor(0)

        dataset = dataset.ragged_batch(batch_size)
        return dataset.map(attach, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

    sources = _image_sources(examples)
    from_bytes = all(isinstance(s, bytes) for s in sources)
    table = tf.constant(sources if from_bytes else [str(s) for s in sources], tf.string)
    names = tf.constant(
        [example.name if from_bytes else str(example.image) for example in examples]
    )

    def decode(index, cin, cout):
        # One image at a time, so that an unreadable file is named in the error.
        data = tf.gather(table, index)
        if not from_bytes:
            data = tf.io.read_file(data)
        return decode_image(data, image_size, source=tf.gather(names, index)), cin, cout

    def to_inputs(images, cin, cout):
        return {"image": images, "caption_in": cin.to_tensor(0)}, cout.to_tensor(0)

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.ragged_batch(batch_size).map(to_inputs).prefetch(2)


def make_datasets(
    recipe: dict, model, tokenizer, splits: Splits, run_dir: Path, log
) -> tuple[dict[str, tf.data.Dataset], dict[str, int]]:
    """Training and validation datasets, and each split's number of target tokens.

    With a frozen encoder (and `train.cache_features`), images are encoded
    once into a feature cache; otherwise a split that fits in memory is
    decoded once, a larger one at every epoch.
    """
    data, train = recipe["data"], recipe["train"]
    cached = train["cache_features"] and encoder_is_frozen(model)
    datasets, token_counts = {}, {}
    for split in ("train", "validation"):
        examples = getattr(splits, split)
        ids = caption_ids(tokenizer, examples, data["max_caption_words"])
        token_counts[split] = sum(len(row) + 1 for row in ids[1])
        features = images = None
        size = data["image_size"]
        if cached:
            path = feature_cache_path(run_dir, recipe, split, examples)
            features = cache_features(model, examples, size, path, log)
        elif len(examples) * size * size * 3 <= IMAGES_IN_MEMORY:
            # Small sets are decoded once rather than at every epoch (the CPU the
            # decoding took would otherwise come out of training).
            images = decode_all(examples, size)
            log(
                f"data: {len(examples)} {split} images decoded once, {images.nbytes / 2**20:.0f} MiB"
            )
        datasets[split] = make_dataset(
            examples,
            ids,
            image_size=data["image_size"],
            batch_size=train["batch_size"],
            shuffle=split == "train",
            seed=train["seed"],
            features=features,
            images=images,
        )
    if cached:
        log("train: the encoder is frozen; training on its cached features")
    return datasets, token_counts
