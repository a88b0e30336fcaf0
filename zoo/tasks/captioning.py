"""The captioning task: images -> captions with soft attention (Show, Attend and Tell).

Xu et al. (2015): a CNN turns the image into a grid of annotation vectors,
an LSTM writes the caption one word at a time while attending over the grid
(`zoo.models.Captioner`), and the doubly stochastic penalty keeps the
attention spread over the picture. Evaluation decodes the test images
through the very graph that is exported (`CaptionGenerator`): BLEU-1..4,
CIDEr and ROUGE-L against all references of an image, and on the synthetic
scenes the attention pointing accuracy (does the attention of a word naming
an object peak on that object?).

`zoo run recipes/captioning.yaml` goes through `run`; the pieces are public.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.data.images import decode_image, decode_image_batch, image_dataset
from zoo.data.translation_readers import DataFormatError
from zoo.models import (
    Captioner,
    CNNEncoder,
    LearningRateMultipliers,
    MaskedAccuracy,
    MaskedSparseCrossentropy,
)
from zoo.samplers import search
from zoo.tasks.seq2seq_training import decode_corpus, finish_run, fit, make_optimizer, start_run
from zoo.text.vocabulary import END_ID, START_ID
from zoo.text.word_tokenizer import WordTokenizer

TASK = "captioning"
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
    """

    image: str | bytes
    captions: tuple[str, ...]
    name: str
    scene: object | None = None

    def image_bytes(self) -> bytes:
        if isinstance(self.image, bytes):
            return self.image
        return Path(self.image).read_bytes()


@dataclasses.dataclass
class CaptionSplits:
    train: list[CaptionExample]
    validation: list[CaptionExample]
    test: list[CaptionExample]
    report: str = ""


# --- data -----------------------------------------------------------------------------------
def _from_records(records) -> list[CaptionExample]:
    return [CaptionExample(r.image, tuple(r.captions), r.image_id) for r in records]


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


def load_splits(data: dict) -> CaptionSplits:
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
        return _limited(CaptionSplits(*named, report), data)

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
        train = _from_records(records)
        if data["validation_path"] is None:
            train, validation, test = _split_images(
                train, data["validation_size"], data["test_size"], seed, data["path"]
            )
        else:
            held, report = caption_readers.read_coco_captions(
                data["validation_path"], data["validation_images"], verify_images=verify
            )
            reports.append(report.summary())
            held = _from_records(held)
            random.Random(seed).shuffle(held)
            half = min(data["validation_size"], len(held) // 2)
            validation, test = held[:half], held[half : half + data["test_size"]]
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        if not part:
            raise DataFormatError(f"{data['path']}: no {name} images (after reading: {reports})")
    return _limited(CaptionSplits(train, validation, test, "; ".join(reports)), data)


def read_examples(data: dict) -> tuple[list[CaptionExample], str]:
    """Every image of a real data section, unsplit (what `zoo evaluate --data` scores)."""
    from zoo.data import caption_readers

    verify = data["verify_images"]
    if data["kind"] == "coco":
        records, report = caption_readers.read_coco_captions(
            data["path"], data["images"], verify_images=verify
        )
    else:
        reader = {
            "flickr8k": caption_readers.read_flickr8k,
            "karpathy": caption_readers.read_karpathy,
        }[data["kind"]]
        parts, report = reader(data["path"], data["images"], verify_images=verify)
        records = [record for part in parts.values() for record in part]
    examples = _from_records(records)
    if not examples:
        raise DataFormatError(f"{data['path']}: no captioned image ({report.summary()})")
    return examples, report.summary()


def _limited(splits: CaptionSplits, data: dict) -> CaptionSplits:
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


# --- model ----------------------------------------------------------------------------------
def build_model(
    model_config: dict, vocab_size: int, image_size: int, dtype=None, *, load_weights: bool = True
) -> Captioner:
    """The recipe's `Captioner`, built for `image_size` images.

    Pretrained encoder weights are loaded here, unless `load_weights` is
    False: the encoder is then built as it would be with them (which layers
    train), for weights that come from elsewhere (a fine-tuned export).
    """
    config = {**model_config["encoder"], "name": "cnn_encoder", "dtype": dtype}
    encoder = CNNEncoder(**config) if load_weights else CNNEncoder.from_config(config)
    options = {k: v for k, v in model_config.items() if k != "encoder"}
    model = Captioner(encoder, vocab_size, dtype=dtype, **options)
    model.build({"image": (None, image_size, image_size, 3), "caption_in": (None, None)})
    return model


def encoder_is_frozen(model: Captioner) -> bool:
    """Whether the encoder's output for an image never changes during training (cacheable)."""
    encoder = model.encoder
    return not encoder.trainable_weights and encoder.dropout == 0


def compile_model(
    model: Captioner, train: dict, steps_per_epoch: int | None, multipliers: dict | None = None
) -> None:
    """Compiles for `fit`; `multipliers` (variable path -> factor) scale the encoder's own."""
    import re

    optimizer = make_optimizer(train, steps_per_epoch)
    own = model.encoder.learning_rate_multipliers()
    combined = dict(own)
    for path, factor in (multipliers or {}).items():
        # The backbone's own factor (encoder.learning_rate_multiplier) still applies.
        matches = [m for pattern, m in own.items() if re.fullmatch(pattern, path)]
        combined[path] = factor * (matches[0] if matches else 1.0)
    multipliers = combined
    if multipliers:
        optimizer = LearningRateMultipliers(optimizer, multipliers)
    model.compile(
        optimizer=optimizer,
        loss=MaskedSparseCrossentropy(label_smoothing=train["label_smoothing"]),
        metrics=[MaskedAccuracy()],
        jit_compile=bool(train["jit_compile"]),  # the decoder's scan cannot be compiled
    )


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
    model: Captioner, examples: list[CaptionExample], image_size: int, path: Path, log
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


# --- the in-graph captioner (used for evaluation AND exported) -------------------------------
class CaptionGenerator(tf.Module):
    """Image bytes in, captions and attention maps out: decoding, encoder, sampler, words.

    Its `caption_images` function is what the SavedModel serves; evaluation
    calls the same function, so the figures describe the exported model.
    """

    def __init__(self, model: Captioner, tokenizer, recipe: dict):
        super().__init__(name="caption_generator")
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = int(recipe["data"]["image_size"])
        self.grid_size = int(model.encoder.grid_size)
        decode = recipe["decode"]
        self.beam_size = int(decode["beam_size"])
        self.length_penalty = float(decode["length_penalty"])
        self.max_length = int(decode["max_length"])

    def decode_images(self, images, beam_size, max_length) -> dict:
        memory = self.model.encode(images, training=False)
        state = self.model.initial_state(memory)
        common = dict(
            batch_size=tf.shape(images)[0], start_id=START_ID, end_id=END_ID, max_length=max_length
        )
        return search(
            self.model.step,
            state,
            memory,
            beam_size=beam_size,
            length_penalty=self.length_penalty,
            **common,
        )

    def caption_images(self, image, beam_size=None, max_length=None) -> dict:
        """`image`: string `(batch,)`, JPEG / PNG / GIF / BMP bytes.

        Returns `caption` string `(batch,)`, `tokens` string `(batch, T)` (""
        padded, no end token), `attention` float32 `(batch, T, grid, grid)`
        (row t: where the model looked for word t), `score` (log-probability,
        length-normalised for beam search) and `length` int32 `(batch,)`.
        """
        beam_size = self.beam_size if beam_size is None else tf.maximum(beam_size, 1)
        max_length = self.max_length if max_length is None else tf.maximum(max_length, 1)
        image = tf.reshape(tf.convert_to_tensor(image, tf.string), [-1])
        images = decode_image_batch(image, self.image_size)
        result = self.decode_images(images, beam_size, max_length)
        lengths = tf.cast(result["lengths"], tf.int32)
        width = tf.reduce_max(tf.concat([lengths, [0]], 0))
        tokens = tf.RaggedTensor.from_tensor(
            tf.cast(result["tokens"][:, :width], tf.int32), lengths=lengths
        )
        attention = tf.cast(result["attention"][:, :width], tf.float32)
        grid = self.grid_size
        attention = tf.reshape(attention, [tf.shape(attention)[0], width, grid, grid])
        step_is_word = tf.sequence_mask(lengths, width, tf.float32)[:, :, None, None]
        return {
            "caption": self.tokenizer.detokenize(tokens),
            "tokens": self.tokenizer.id_to_token(tokens).to_tensor(""),
            "attention": attention * step_is_word,
            "score": tf.cast(result["scores"], tf.float32),
            "length": lengths,
        }


def make_datasets(
    recipe: dict, model: Captioner, tokenizer, splits: CaptionSplits, run_dir: Path, log
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


# --- evaluation -----------------------------------------------------------------------------
def teacher_forced_attention(
    model: Captioner, tokenizer, examples: list[CaptionExample], image_size: int
) -> list[np.ndarray]:
    """Attention `(words, L)` while the model reads each image's FIRST reference caption."""
    owners, ids = caption_ids(
        tokenizer, [dataclasses.replace(e, captions=e.captions[:1]) for e in examples]
    )
    out = []
    for start in range(0, len(examples), IMAGE_BATCH):
        chunk = examples[start : start + IMAGE_BATCH]
        images = decode_image_batch([e.image_bytes() for e in chunk], image_size)
        rows = ids[start : start + len(chunk)]
        caption_in, _ = _teacher_forcing(rows)
        _, attention = model.forward_with_attention(
            {"image": images, "caption_in": caption_in.to_tensor(0)}, training=False
        )
        attention = np.asarray(attention)
        out += [attention[i, : len(row)] for i, row in enumerate(rows)]
    return out


def evaluate(
    model: Captioner,
    generator: CaptionGenerator,
    examples: list[CaptionExample],
    config: dict,
    caption_fn=None,
    progress: bool = True,
) -> dict:
    """Captions the test images through `caption_fn` (the export's function) and scores them."""
    from zoo.metrics.caption_metrics import caption_scores, corpus_pointing_accuracy

    if config["max_examples"]:
        examples = examples[: config["max_examples"]]
    caption_fn = caption_fn or tf.function(
        generator.caption_images, autograph=False, reduce_retracing=True
    )
    started = time.time()
    outputs = decode_corpus(
        caption_fn,
        [e.image_bytes() for e in examples],
        batch_size=IMAGE_BATCH,
        progress=progress,
        unit="image",
    )
    seconds = time.time() - started
    hypotheses = [o["caption"].decode("utf-8") for o in outputs]
    references = [list(e.captions) for e in examples]
    metrics: dict = {"examples": len(examples), "images_per_second": len(examples) / seconds}
    metrics.update(caption_scores(references, hypotheses, meteor=config["meteor"]))
    metrics["empty_captions"] = sum(1 for h in hypotheses if not h)
    if all(e.scene is not None for e in examples):
        attention = teacher_forced_attention(
            model, generator.tokenizer, examples, generator.image_size
        )
        counts = corpus_pointing_accuracy(
            attention,
            [e.scene.word_objects for e in examples],
            [e.scene.boxes for e in examples],
            generator.image_size,
        )
        metrics["pointing_accuracy"] = counts.accuracy
        metrics["pointing_words"] = counts.total
    metrics["samples"] = [
        {"image": e.name, "reference": e.captions[0], "caption": h}
        for e, h in list(zip(examples, hypotheses, strict=True))[:5]
    ]
    return metrics


def format_metrics(metrics: dict) -> str:
    scores = ", ".join(
        f"{name} {metrics[key]:.3f}"
        for name, key in (
            ("BLEU-1", "bleu_1"),
            ("BLEU-4", "bleu_4"),
            ("CIDEr", "cider"),
            ("ROUGE-L", "rouge_l"),
            ("METEOR", "meteor"),
        )
        if key in metrics
    )
    lines = [f"test: {scores} on {metrics['examples']} images"]
    if "pointing_accuracy" in metrics:
        lines.append(
            f"test: attention pointing accuracy {metrics['pointing_accuracy']:.3f} "
            f"({metrics['pointing_words']} object words)"
        )
    lines.append(f"test: {metrics['images_per_second']:.1f} images/s captioned")
    for sample in metrics.get("samples", [])[:3]:
        lines.append(
            f"  {sample['image']}\n  ref: {sample['reference']}\n  hyp: {sample['caption']}"
        )
    return "\n".join(lines)


# --- the whole run --------------------------------------------------------------------------
def run(recipe: dict, *, log=print, callbacks: list | tuple = ()) -> dict:
    """Trains, evaluates and exports what `recipe` describes. Returns paths and metrics."""
    from zoo.export import export_captioning

    run_dir, started = start_run(recipe, log)
    data, train = recipe["data"], recipe["train"]
    splits = load_splits(data)
    log(f"data: {splits.report}")
    log(
        f"data: {len(splits.train)} train, {len(splits.validation)} validation, "
        f"{len(splits.test)} test images"
    )
    tokenizer = build_tokenizer(splits.train, recipe["tokenizer"])
    log(f"tokenizer: {tokenizer.vocab_size} words")

    dtype = "mixed_bfloat16" if train["mixed_precision"] else None
    model = build_model(recipe["model"], tokenizer.vocab_size, data["image_size"], dtype)
    datasets, token_counts = make_datasets(recipe, model, tokenizer, splits, run_dir, log)
    steps = train["steps_per_epoch"] or int(datasets["train"].cardinality())
    compile_model(model, train, steps)
    log(f"model: {model.count_params():,} parameters")
    training = fit(model, datasets, token_counts, recipe, run_dir, log=log, callbacks=callbacks)

    generator = CaptionGenerator(model, tokenizer, recipe)
    caption_fn = tf.function(generator.caption_images, autograph=False, reduce_retracing=True)
    metrics = evaluate(model, generator, splits.test, recipe["evaluate"], caption_fn=caption_fn)
    metrics.update(training)
    log(format_metrics(metrics))
    return finish_run(
        recipe,
        metrics,
        lambda: export_captioning(generator, recipe, metrics),
        run_dir,
        started,
        log,
    )
