"""The captioning task: images -> captions with soft attention (Show, Attend and Tell).

Xu et al. (2015): a CNN turns the image into a grid of annotation vectors,
an LSTM writes the caption one word at a time while attending over the grid
(`zoo.models.Captioner`), and the doubly stochastic penalty keeps the
attention spread over the picture. Evaluation decodes the test images
through the very graph that is exported (`CaptionGenerator`): BLEU-1..4,
CIDEr and ROUGE-L against all references of an image, and on the synthetic
scenes the attention pointing accuracy (does the attention of a word naming
an object peak on that object?).

`zoo run recipes/captioning.yaml` takes `CaptioningTask` through
`zoo.runner`; the pieces are public.
"""

from __future__ import annotations

import bisect
import collections.abc
import dataclasses
import json
import time

import numpy as np
import tensorflow as tf

from zoo.config import FinetuneKeys
from zoo.data.images import decode_image_batch
from zoo.models import Captioner, CNNEncoder
from zoo.tasks.base import FinetunePolicy, Input, Signature, Task, traced
from zoo.tasks.captioning.data import (
    IMAGE_BATCH,
    CaptionExample,
    _teacher_forcing,
    build_tokenizer,
    caption_ids,
    load_splits,
    make_datasets,
    read_files,
)
from zoo.tasks.captioning.schema import CAPTIONING_PARTS, CAPTIONING_SCHEMA
from zoo.tasks.decoding import DECODE_OPTIONS, SearchDecoder
from zoo.training import compile_for_fit, decode_corpus


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


def compile_model(
    model: Captioner, train: dict, steps_per_epoch: int | None, multipliers: dict | None = None
) -> None:
    """Compiles for `fit`; `multipliers` (variable path -> factor) scale the encoder's own.

    The attention scorer's variables train at `train.attention_learning_rate_multiplier`
    times the rate (on 800 photos its weights barely move from where they start at the
    common rate: the README's "Attention on real photos").
    """
    import re

    own = model.encoder.learning_rate_multipliers()
    attention_factor = float(train.get("attention_learning_rate_multiplier", 1.0))
    if attention_factor != 1.0:
        for variable in model.decoder.attention_layer.trainable_weights:
            own[variable.path] = attention_factor
    combined = dict(own)
    for path, factor in (multipliers or {}).items():
        # The backbone's own factor (encoder.learning_rate_multiplier) still applies.
        matches = [m for pattern, m in own.items() if re.fullmatch(pattern, path)]
        combined[path] = factor * (matches[0] if matches else 1.0)
    compile_for_fit(model, train, steps_per_epoch, combined)


# --- the in-graph captioner (used for evaluation AND exported) -------------------------------
class CaptionGenerator(SearchDecoder):
    """Image bytes in, captions and attention maps out: decoding, encoder, sampler, words.

    Its `caption_images` function is what the SavedModel serves; evaluation
    calls the same function, so the figures describe the exported model.
    """

    def __init__(self, model: Captioner, tokenizer, recipe: dict):
        super().__init__(model, recipe, name="caption_generator")
        self.tokenizer = tokenizer
        self.image_size = int(recipe["data"]["image_size"])
        self.grid_size = int(model.encoder.grid_size)

    @property
    def tokenizers(self) -> dict:
        """The tokenizers by key, as the export writes their vocabularies."""
        return {"caption": self.tokenizer}

    def caption_images(self, image, beam_size=None, max_length=None) -> dict:
        """`image`: string `(batch,)`, JPEG / PNG / GIF / BMP bytes.

        Returns `caption` string `(batch,)`, `tokens` string `(batch, T)` (""
        padded, no end token), `attention` float32 `(batch, T, grid, grid)`
        (row t: where the model looked for word t), `score` (log-probability,
        length-normalised for beam search), `length` int32 `(batch,)` and
        `truncated` bool `(batch,)` (the caption hit `max_length` before its end).
        """
        beam_size, max_length = self.decode_options(beam_size, max_length)
        image = tf.reshape(tf.convert_to_tensor(image, tf.string), [-1])
        images = decode_image_batch(image, self.image_size)
        result = self.decode_ids(images, beam_size, max_length)
        lengths = tf.cast(result["lengths"], tf.int32)
        # A caption that ended has its end token inside the buffer; one that never ended filled it.
        truncated = lengths >= tf.shape(result["tokens"])[1]
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
            "truncated": truncated,
        }


# --- evaluation -----------------------------------------------------------------------------
def teacher_forced_attention(
    model: Captioner, tokenizer, examples: list[CaptionExample], image_size: int
) -> list[np.ndarray]:
    """Attention `(words, L)` while the model reads each image's FIRST reference caption."""
    first = [dataclasses.replace(e, captions=e.captions[:1]) for e in examples]
    return [
        attention for _, _, attention in reference_attention(model, tokenizer, first, image_size)
    ]


def reference_attention(
    model: Captioner, tokenizer, examples: list[CaptionExample], image_size: int
) -> list[tuple[int, list[int], np.ndarray]]:
    """Where the model looks while it reads every reference caption (teacher forcing).

    One entry per caption: the index of its image in `examples`, its word
    ids, and the attention `(words, L)`, row `t` being where the model looked
    to write word `t`. Each image is encoded once.
    """
    owners, ids = caption_ids(tokenizer, examples)  # captions in image order
    out = []
    for start in range(0, len(examples), IMAGE_BATCH):
        chunk = range(start, min(start + IMAGE_BATCH, len(examples)))
        images = decode_image_batch([examples[i].image_bytes() for i in chunk], image_size)
        memory = model.encode(images, training=False)
        first, last = (
            bisect.bisect_left(owners, chunk.start),
            bisect.bisect_left(owners, chunk.stop),
        )
        rows = list(zip(owners[first:last], ids[first:last], strict=True))
        caption_in, _ = _teacher_forcing([row for _, row in rows])
        index = tf.constant([owner - start for owner, _ in rows])
        memory = {key: tf.gather(value, index) for key, value in memory.items()}
        _, attention = model.decoder(caption_in.to_tensor(0), memory, training=False)
        attention = np.asarray(attention)
        out += [(owner, row, attention[i, : len(row)]) for i, (owner, row) in enumerate(rows)]
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
    if any(e.objects is not None for e in examples):
        metrics.update(score_object_pointing(examples, outputs))
        metrics.update(
            score_reference_pointing(model, generator.tokenizer, examples, generator.image_size)
        )
    metrics["samples"] = [
        {"image": e.name, "reference": e.captions[0], "caption": h}
        for e, h in list(zip(examples, hypotheses, strict=True))[:5]
    ]
    return metrics


def score_object_pointing(examples: list[CaptionExample], outputs: list[dict]) -> dict:
    """Pointing of the generated object words on the images' boxes, with its two baselines.

    See `zoo.metrics.object_pointing`: words naming a COCO category of a box
    in their image, scored on the attention the exported model produced for them.
    """
    from zoo.metrics.object_pointing import ObjectPointing, object_pointing

    counts = ObjectPointing()
    for example, output in zip(examples, outputs, strict=True):
        if example.objects is None:
            continue
        words = [t.decode("utf-8") for t in output["tokens"][: int(output["length"])]]
        objects = example.objects
        counts.add(
            object_pointing(
                words, output["attention"], objects.boxes, (objects.width, objects.height)
            )
        )
    return {
        "object_pointing_accuracy": counts.accuracy,
        "object_pointing_centre_baseline": counts.centre_accuracy,
        "object_pointing_uniform_baseline": counts.uniform_accuracy,
        "object_pointing_words": counts.total,
        "object_pointing_unboxed_words": counts.unboxed,
        "object_pointing_by_category": {
            category: {"hits": hits, "words": total}
            for category, (hits, total) in sorted(counts.by_category.items())
        },
    }


def score_reference_pointing(
    model: Captioner, tokenizer, examples: list[CaptionExample], image_size: int
) -> dict:
    """Pointing of the object words of the REFERENCE captions, read with teacher forcing.

    The same score as `score_object_pointing`, on the words people wrote: five
    captions an image name far more boxed objects than one generated caption
    (and none that is not there), so the figure rests on more words; it says
    where the model looks when it is told what to write, not when it chooses.
    """
    from zoo.metrics.object_pointing import ObjectPointing, object_pointing

    boxed = [e for e in examples if e.objects is not None]
    grid = int(model.encoder.grid_size)
    vocabulary = tokenizer.vocab
    counts = ObjectPointing()
    for owner, ids, attention in reference_attention(model, tokenizer, boxed, image_size):
        objects = boxed[owner].objects
        counts.add(
            object_pointing(
                [vocabulary[i] for i in ids],
                attention.reshape(len(ids), grid, grid),
                objects.boxes,
                (objects.width, objects.height),
            )
        )
    return {
        "reference_pointing_accuracy": counts.accuracy,
        "reference_pointing_centre_baseline": counts.centre_accuracy,
        "reference_pointing_uniform_baseline": counts.uniform_accuracy,
        "reference_pointing_words": counts.total,
    }


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
    if "object_pointing_accuracy" in metrics:
        lines.append(
            f"test: attention on COCO boxes: {metrics['object_pointing_accuracy']:.3f} of "
            f"{metrics['object_pointing_words']} object words peak on their object (centre "
            f"cell: {metrics['object_pointing_centre_baseline']:.3f}, a random cell: "
            f"{metrics['object_pointing_uniform_baseline']:.3f}; "
            f"{metrics['object_pointing_unboxed_words']} words name no boxed object)"
        )
    if "reference_pointing_accuracy" in metrics:
        lines.append(
            f"test: the same on the reference captions (teacher-forced): "
            f"{metrics['reference_pointing_accuracy']:.3f} of "
            f"{metrics['reference_pointing_words']} object words (centre cell: "
            f"{metrics['reference_pointing_centre_baseline']:.3f}, a random cell: "
            f"{metrics['reference_pointing_uniform_baseline']:.3f})"
        )
    lines.append(f"test: {metrics['images_per_second']:.1f} images/s captioned")
    for sample in metrics.get("samples", [])[:3]:
        lines.append(
            f"  {sample['image']}\n  ref: {sample['reference']}\n  hyp: {sample['caption']}"
        )
    return "\n".join(lines)


class CaptioningTask(Task):
    """Images -> a `Captioner` -> `caption(image)`, scored by BLEU, CIDEr and ROUGE-L."""

    schema = CAPTIONING_SCHEMA
    data_formats = ("flickr8k", "coco", "karpathy")
    example_noun = "images"
    signatures = (Signature("caption", "caption_images", (Input("image"),), DECODE_OPTIONS),)
    finetune_policy = FinetunePolicy(
        parts=CAPTIONING_PARTS,
        narrowest_first=("embeddings", "attention", "cnn", "encoder", "decoder"),
        keys=FinetuneKeys(
            # No weight changes shape; the base export's weights replace `weights`.
            free_model_keys=frozenset(
                {"dropout", "doubly_stochastic", "fine_tune_from", "learning_rate_multiplier"}
                | {"weights"}
            ),
            model_bound_data_keys=("image_size",),
            new_data_keys=("kind", "path", "images"),
        ),
    )

    def load_splits(self, data):
        return load_splits(data)

    def read_files(self, data):
        return read_files(data)

    def guess_format(self, paths):
        if paths[0].endswith(".json"):
            try:
                with open(paths[0], encoding="utf-8") as file:
                    head = json.load(file)
            except (OSError, ValueError):
                return "coco"  # the reader names the problem
            return "coco" if isinstance(head, dict) and "annotations" in head else "karpathy"
        return "flickr8k"

    def build_tokenizers(self, train, recipe, log):
        tokenizer = build_tokenizer(train, recipe["tokenizer"])
        log(f"tokenizer: {tokenizer.vocab_size} words")
        return {"caption": tokenizer}

    def vocabulary_texts(self, train):
        return {"caption": [c for example in train for c in example.captions]}

    def build_model(self, recipe, tokenizers, *, pretrained=True):
        dtype = "mixed_bfloat16" if recipe["train"]["mixed_precision"] else None
        return build_model(
            recipe["model"],
            tokenizers["caption"].vocab_size,
            recipe["data"]["image_size"],
            dtype,
            load_weights=pretrained,
        )

    def model_parts(self, model):
        decoder = model.decoder
        return {
            "encoder": [model.encoder],
            "cnn": [model.encoder.backbone],
            "decoder": [decoder],
            "attention": [decoder.attention_layer] if decoder.attention_layer is not None else [],
            "embeddings": [decoder.embedding],
        }

    def datasets(self, recipe, model, tokenizers, splits, run_dir, log):
        return make_datasets(recipe, model, tokenizers["caption"], splits, run_dir, log)

    def compile(self, model, train, steps_per_epoch, multipliers=None):
        compile_model(model, train, steps_per_epoch, multipliers)

    def serving_module(self, model, tokenizers, recipe):
        return CaptionGenerator(model, tokenizers["caption"], recipe)

    def evaluate(self, model, serving, examples, recipe, *, final=False):
        fn = traced(serving, "caption_images")
        return evaluate(model, serving, examples, recipe["evaluate"], caption_fn=fn)

    def headline(self, metrics):
        return f"BLEU-4 {metrics['bleu_4']:.3f}, CIDEr {metrics['cider']:.3f}"

    def format_metrics(self, metrics):
        return format_metrics(metrics)

    def single_input(self, signature, inputs):
        # A path, bytes, an array or a PIL image; a list, tuple or iterator holds several.
        return not isinstance(inputs, (list, tuple, collections.abc.Iterator))

    def prepare_inputs(self, signature, inputs):
        from zoo.tasks.captioning.results import encoded_image

        single = not isinstance(inputs, (list, tuple))
        named = [encoded_image(item) for item in ([inputs] if single else inputs)]
        feeds = {"image": tf.constant([d for _, d in named], dtype=tf.string, shape=[len(named)])}
        return named, feeds, single

    def results(self, signature, items, outputs):
        from zoo.tasks.captioning.results import CaptionResult

        return CaptionResult.from_outputs(items, outputs)

    def call_error(self, error, items):
        from zoo.tasks.captioning.results import name_bad_image

        if isinstance(error, tf.errors.InvalidArgumentError):
            return ValueError(name_bad_image(error.message, [n for n, _ in items]))
        return None
