"""Fine-tuning an export on new data, and evaluating an export on any data.

`zoo finetune saved_models/<name> --data <path>` and a recipe with
``init_from: saved_models/<name>`` both come here (`finetune`): the newest
(or named) version's `model.keras` and vocabularies are loaded, the
vocabularies kept or extended (`finetune.vocab`), parts frozen or slowed
(`finetune.freeze`, `finetune.learning_rate_multipliers`), the new data's
validation split decoded before and after training, and the result exported
as the next version beside the base. The base version is only read.

`zoo evaluate` (`evaluate_export`) decodes any data in a supported format
with an export and scores it with the task's metrics.

The three tasks differ only in their data, their in-graph decoder and their
metrics; each has a `TaskAdapter` here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.config import FINETUNE_PARTS, RecipeError
from zoo.text import NUM_RESERVED, UNK_ID, tokenizer_from_config

# When several parts hold a variable, the multiplier of the narrowest part applies.
_NARROW_FIRST = ("embeddings", "attention", "cnn", "encoder", "decoder")


class FinetuneError(ValueError):
    """A fine-tuning that cannot start: said before any training, nothing exported."""


# --- the base export ------------------------------------------------------------------------
@dataclasses.dataclass
class BaseModel:
    """An export's trained model and tokenizers, as `model.keras` and `tokenizers.json` hold them."""

    path: Path
    model: keras.Model
    tokenizers: dict[str, Any]


def load_base(version_dir: str | Path) -> BaseModel:
    """Loads `assets.extra/model.keras` and the tokenizers of an export's version folder."""
    import zoo.models  # noqa: F401  (registers the zoo's classes for deserialisation)

    extra = Path(version_dir) / "assets.extra"
    configs = json.loads((extra / "tokenizers.json").read_text(encoding="utf-8"))
    tokenizers = {key: tokenizer_from_config(config) for key, config in configs.items()}
    model = keras.saving.load_model(extra / "model.keras", compile=False)
    return BaseModel(Path(version_dir), model, tokenizers)


# --- vocabularies ---------------------------------------------------------------------------
def _split_words(tokenizer, texts: list[str]) -> list[list[str]]:
    """The texts as the tokenizer splits them into words (normalised as it does)."""
    out = []
    for start in range(0, len(texts), 4096):
        rows = tokenizer.words(tf.constant(texts[start : start + 4096])).to_list()
        out += [[w.decode("utf-8") for w in row] for row in rows]
    return out


def new_tokens(tokenizer, texts: list[str], *, limit: int, min_count: int, vocab_size: int):
    """Tokens of `texts` that `tokenizer` lacks, most frequent first, at most `limit`.

    Word and symbol vocabularies gain the words seen at least `min_count`
    times; a wordpiece vocabulary gains the pieces a vocabulary of
    `vocab_size` learned on `texts` (pieces rarer than `min_count` left out)
    has and it lacks, in the learner's order.
    """
    from collections import Counter

    from zoo.text import WordPieceTokenizer

    known = set(tokenizer.vocab)
    if isinstance(tokenizer, WordPieceTokenizer):
        learned = WordPieceTokenizer.build(
            texts, vocab_size, lower_thresh=min_count, lowercase=tokenizer.lowercase
        )
        return [t for t in learned.vocab if t not in known][:limit]
    counts = Counter(word for row in _split_words(tokenizer, texts) for word in row)
    ranked = sorted(
        (item for item in counts.items() if item[1] >= min_count and item[0] not in known),
        key=lambda item: (-item[1], item[0]),
    )
    return [word for word, _ in ranked[:limit]]


def extended(tokenizer, tokens: list[str]):
    """The same kind of tokenizer with `tokens` appended to its vocabulary (old ids kept)."""
    config = tokenizer.get_config()
    config["vocab"] = list(tokenizer.vocab) + list(tokens)
    return tokenizer_from_config(config)


def unknown_share(tokenizer, texts: list[str]) -> float:
    """The share of the tokens of `texts` that `tokenizer` maps to [UNK]."""
    total = unknown = 0
    for start in range(0, len(texts), 4096):
        ids = tokenizer.tokenize(tf.constant(texts[start : start + 4096])).flat_values.numpy()
        total += ids.size
        unknown += int((ids == UNK_ID).sum())
    return unknown / max(total, 1)


def adapt_vocabularies(
    tokenizers: dict, texts: dict[str, list[str]], recipe: dict, log, closed: tuple = ()
) -> tuple[dict, dict]:
    """The tokenizers to fine-tune with (`finetune.vocab`), and what changed, per key.

    Args:
        tokenizers: the base's, by key (`source`, `target`, `caption`).
        texts: the new training texts, by the same keys.
        closed: keys whose vocabulary cannot fall back on [UNK] (the tree
            symbols of parsing): with `vocab: keep`, a token of the new data
            missing from one is an error.
    """
    options = recipe["finetune"]
    result, report = {}, {}
    for key, tokenizer in tokenizers.items():
        added: list[str] = []
        if options["vocab"] == "extend":
            added = new_tokens(
                tokenizer,
                texts[key],
                limit=options["new_tokens"],
                # A closed vocabulary takes every new symbol, however rare.
                min_count=1 if key in closed else options["min_count"],
                vocab_size=recipe["tokenizer"].get("vocab_size") or tokenizer.vocab_size,
            )
        new = extended(tokenizer, added) if added else tokenizer
        if key in closed:
            missing = new_tokens(new, texts[key], limit=20, min_count=1, vocab_size=0)
            if missing:
                how = (
                    f"raise finetune.new_tokens (now {options['new_tokens']})"
                    if options["vocab"] == "extend"
                    else "fine-tune with finetune.vocab=extend to add them"
                )
                raise FinetuneError(
                    f"the new data has {key} symbols the model cannot write: "
                    f"{' '.join(missing)}; {how}"
                )
        share = unknown_share(new, texts[key])
        report[key] = {
            "size": new.vocab_size,
            "added": len(added),
            "unknown_share": round(share, 4),
        }
        # Words say more than the single characters a wordpiece vocabulary lists first.
        words = [t for t in added if len(t.removeprefix("##")) > 1] or added
        shown = f", e.g. {' '.join(words[:12])}" if added else ""
        log(
            f"vocabulary: {key} {tokenizer.vocab_size} + {len(added)} tokens{shown}; "
            f"{100 * share:.1f}% of the new training tokens are [UNK]"
        )
        result[key] = new
    return result, report


# --- weights --------------------------------------------------------------------------------
def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copies every weight of `source` into `target`, which may have larger vocabularies.

    The models must be the same architecture (their weights pair up in
    order, with the same names). A weight whose shape differs along exactly
    one axis (an embedding's rows, an output layer's columns and bias) gets
    the old values first and, in the new positions, the mean of the old
    non-reserved ones: a new output token then scores the mean of the other
    tokens' logits, below the best one, so what the model writes for inputs
    made of old tokens is unchanged until training moves it.

    Returns the paths of the weights that grew.
    """
    pairs = list(zip(source.weights, target.weights, strict=False))
    if len(source.weights) != len(target.weights) or any(a.name != b.name for a, b in pairs):
        raise FinetuneError(
            f"the base model's weights ({len(source.weights)}) do not match the recipe's "
            f"model ({len(target.weights)}): the recipe describes another architecture"
        )
    grown = []
    for old, new in pairs:
        values = np.asarray(keras.ops.convert_to_numpy(old.value))
        shape = tuple(new.shape)
        if values.shape == shape:
            new.assign(values)
            continue
        axes = [i for i, (a, b) in enumerate(zip(values.shape, shape, strict=False)) if a != b]
        if (
            len(values.shape) != len(shape)
            or len(axes) != 1
            or shape[axes[0]] < values.shape[axes[0]]
        ):
            raise FinetuneError(
                f"weight {new.path}: the base model has shape {values.shape}, the recipe's "
                f"model {shape}; only vocabularies can grow"
            )
        axis = axes[0]
        real = np.take(
            values,
            np.arange(min(NUM_RESERVED, values.shape[axis] - 1), values.shape[axis]),
            axis=axis,
        )
        fill = np.repeat(
            real.mean(axis=axis, keepdims=True), shape[axis] - values.shape[axis], axis
        )
        new.assign(np.concatenate([values, fill.astype(values.dtype)], axis=axis))
        grown.append(new.path)
    return grown


# --- parts: freezing and learning rates -----------------------------------------------------
def model_parts(model: keras.Model) -> dict[str, list]:
    """The layers each part of `FINETUNE_PARTS` names in a `Seq2Seq` or a `Captioner`."""
    from zoo.models import Captioner

    decoder = model.decoder
    attention = [decoder.attention_layer] if decoder.attention_layer is not None else []
    if isinstance(model, Captioner):
        return {
            "encoder": [model.encoder],
            "cnn": [model.encoder.backbone],
            "decoder": [decoder],
            "attention": attention,
            "embeddings": [decoder.embedding],
        }
    return {
        "encoder": [model.encoder],
        "decoder": [decoder],
        "attention": attention,
        "embeddings": [model.encoder.embedding, decoder.embedding],
    }


def _check_parts(parts: dict, options: dict, task: str) -> None:
    named = [("finetune.freeze", p) for p in options["freeze"]]
    named += [
        (f"finetune.learning_rate_multipliers.{p}", p)
        for p, m in options["learning_rate_multipliers"].items()
        if m is not None
    ]
    for key, part in named:
        if not parts.get(part):
            have = ", ".join(p for p in FINETUNE_PARTS if parts.get(p))
            raise RecipeError(f"a {task} model has no {part!r} part (its parts: {have})", key=key)


def freeze_parts(model: keras.Model, freeze: list[str]) -> None:
    """Makes the layers of the named parts non-trainable."""
    parts = model_parts(model)
    for part in freeze:
        for layer in parts[part]:
            layer.trainable = False


def part_multipliers(model: keras.Model, multipliers: dict[str, float | None]) -> dict[str, float]:
    """`{variable path: factor}` for the trainable variables of the parts given a factor.

    A variable in several parts (the decoder's attention is in `decoder` and
    `attention`) takes the factor of the narrowest part that has one.
    """
    parts = model_parts(model)
    owners: dict[int, list[str]] = {}
    for part, layers in parts.items():
        for layer in layers:
            for variable in layer.trainable_weights:
                owners.setdefault(id(variable), []).append(part)
    result = {}
    for variable in model.trainable_weights:
        for part in _NARROW_FIRST:
            if part in owners.get(id(variable), ()) and multipliers.get(part) is not None:
                if multipliers[part] != 1.0:
                    result[variable.path] = float(multipliers[part])
                break
    return result


def _weight_count(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


# --- the tasks ------------------------------------------------------------------------------
class TaskAdapter:
    """What `finetune` and `evaluate_export` need from a task."""

    closed_vocabularies: tuple[str, ...] = ()

    def __init__(self, module):
        self.module = module
        self._functions: dict = {}

    def function(self, method):
        """`tf.function(method)`, traced once per decoder however many times it evaluates."""
        key = (id(method.__self__), method.__name__)
        if key not in self._functions:
            self._functions[key] = tf.function(method, autograph=False, reduce_retracing=True)
        return self._functions[key]

    def load_splits(self, data: dict):
        return self.module.load_splits(data)

    def read_examples(self, data: dict):
        """Every example a data section names, unsplit; generated data: all three splits."""
        if data["kind"] == "synthetic":
            splits = self.load_splits(data)
            return splits.train + splits.validation + splits.test, splits.report
        return self.module.read_examples(data)

    def format_metrics(self, metrics: dict) -> str:
        return self.module.format_metrics(metrics)


class Seq2SeqAdapter(TaskAdapter):
    """Translation and parsing: a `Seq2Seq` between a source and a target tokenizer."""

    def build_model(self, recipe: dict, tokenizers: dict) -> keras.Model:
        from zoo.tasks.seq2seq_training import build_model

        dtype = "mixed_bfloat16" if recipe["train"]["mixed_precision"] else None
        return build_model(
            recipe["model"], tokenizers["source"].vocab_size, tokenizers["target"].vocab_size, dtype
        )

    def datasets(self, recipe, model, tokenizers, splits, run_dir, log):
        from zoo.tasks.seq2seq_training import text_datasets

        texts = {}
        for split in ("train", "validation"):
            pairs = self.pairs(getattr(splits, split))
            texts[split] = ([s for s, _ in pairs], [t for _, t in pairs])
        return text_datasets(
            recipe,
            tokenizers["source"],
            tokenizers["target"],
            texts,
            log,
            max_source_tokens=self.max_source_tokens(recipe),
        )

    def compile(self, model, train, steps, multipliers):
        from zoo.tasks.seq2seq_training import compile_model

        compile_model(model, train, steps, multipliers)

    def vocabulary_texts(self, splits) -> dict[str, list[str]]:
        pairs = self.pairs(splits.train)
        return {"source": [s for s, _ in pairs], "target": [t for _, t in pairs]}


class TranslationAdapter(Seq2SeqAdapter):
    headline = staticmethod(lambda m: f"BLEU {m['bleu']:.2f}, chrF {m['chrf']:.2f}")

    def pairs(self, examples):
        return [(p.source, p.target) for p in examples]

    def max_source_tokens(self, recipe):
        return recipe["data"]["max_source_tokens"]

    def decoder(self, model, tokenizers, recipe):
        return self.module.Translator(model, tokenizers["source"], tokenizers["target"], recipe)

    def evaluate(self, model, decoder, examples, recipe, *, final=False):
        fn = self.function(decoder.translate_text)
        return self.module.evaluate(model, decoder, examples, recipe["evaluate"], translate_fn=fn)

    def export(self, decoder, recipe, metrics):
        from zoo.export import export_translation

        return export_translation(decoder, recipe, metrics)


class ParsingAdapter(Seq2SeqAdapter):
    closed_vocabularies = ("target",)
    headline = staticmethod(lambda m: f"F1 {m['f1']:.2f}, exact match {m['exact_match']:.1f}%")

    def pairs(self, examples):
        return [(e.sentence, e.linearized) for e in examples]

    def max_source_tokens(self, recipe):
        return recipe["data"]["max_train_words"]

    def decoder(self, model, tokenizers, recipe, **overrides):
        return self.module.Parser(
            model, tokenizers["source"], tokenizers["target"], recipe, **overrides
        )

    def evaluate(self, model, decoder, examples, recipe, *, final=False):
        parse_fn = self.function(decoder.parse_text)
        free_fn = None
        if final and recipe["evaluate"]["unconstrained"]:
            free = self.decoder(
                model,
                {"source": decoder.source_tokenizer, "target": decoder.target_tokenizer},
                recipe,
                constrained=False,
            )
            free_fn = self.function(free.parse_text)
        return self.module.evaluate(examples, parse_fn, recipe["evaluate"], free_fn)

    def export(self, decoder, recipe, metrics):
        from zoo.export import export_parsing

        return export_parsing(decoder, recipe, metrics)


class CaptioningAdapter(TaskAdapter):
    headline = staticmethod(lambda m: f"BLEU-4 {m['bleu_4']:.3f}, CIDEr {m['cider']:.3f}")

    def build_model(self, recipe, tokenizers):
        dtype = "mixed_bfloat16" if recipe["train"]["mixed_precision"] else None
        return self.module.build_model(
            recipe["model"],
            tokenizers["caption"].vocab_size,
            recipe["data"]["image_size"],
            dtype,
            load_weights=False,
        )

    def datasets(self, recipe, model, tokenizers, splits, run_dir, log):
        return self.module.make_datasets(recipe, model, tokenizers["caption"], splits, run_dir, log)

    def compile(self, model, train, steps, multipliers):
        self.module.compile_model(model, train, steps, multipliers)

    def vocabulary_texts(self, splits):
        return {"caption": [c for example in splits.train for c in example.captions]}

    def decoder(self, model, tokenizers, recipe):
        return self.module.CaptionGenerator(model, tokenizers["caption"], recipe)

    def evaluate(self, model, decoder, examples, recipe, *, final=False):
        fn = self.function(decoder.caption_images)
        return self.module.evaluate(model, decoder, examples, recipe["evaluate"], caption_fn=fn)

    def export(self, decoder, recipe, metrics):
        from zoo.export import export_captioning

        return export_captioning(decoder, recipe, metrics)


def get_adapter(task: str) -> TaskAdapter:
    from zoo.tasks import get_task

    classes = {
        "translation": TranslationAdapter,
        "parsing": ParsingAdapter,
        "captioning": CaptioningAdapter,
    }
    return classes[task](get_task(task))


# --- fine-tuning ----------------------------------------------------------------------------
def _timed_evaluation(adapter, model, decoder, examples, recipe, what: str, log, **kwargs):
    started = time.time()
    metrics = adapter.evaluate(model, decoder, examples, recipe, **kwargs)
    log(
        f"{what}: {adapter.headline(metrics)} on {metrics['examples']} examples "
        f"({time.time() - started:.0f} s)"
    )
    return metrics


def finetune(recipe: dict, *, log: Callable = print, callbacks: list | tuple = ()) -> dict:
    """Fine-tunes the export `recipe["init_from"]` names and exports the next version.

    Everything that can be refused (parts the model lacks, unreadable data,
    symbols the model cannot write) is refused before training; the base
    version is never written to. Returns what `zoo.tasks.*.run` returns,
    with `metrics["finetune"]` holding the validation metrics before and
    after training.
    """
    from zoo.tasks.seq2seq_training import finish_run, fit, start_run

    if recipe["init_from"] is None:
        raise RecipeError("required to fine-tune: the export to start from", key="init_from")
    adapter = get_adapter(recipe["task"])
    options = recipe["finetune"]
    run_dir, started = start_run(recipe, log)
    base = load_base(recipe["init_from"])
    _check_parts(model_parts(base.model), options, recipe["task"])
    log(f"finetune: from {base.path} ({base.model.count_params():,} parameters)")

    splits = adapter.load_splits(recipe["data"])
    log(f"data: {splits.report}")
    sizes = {name: len(getattr(splits, name)) for name in ("train", "validation", "test")}
    log(f"data: {sizes['train']} train, {sizes['validation']} validation, {sizes['test']} test")
    tokenizers, vocabulary = adapt_vocabularies(
        base.tokenizers,
        adapter.vocabulary_texts(splits),
        recipe,
        log,
        closed=adapter.closed_vocabularies,
    )

    model = adapter.build_model(recipe, tokenizers)
    grown = transfer_weights(base.model, model)
    if grown:
        log(f"finetune: new vocabulary rows in {', '.join(grown)} (the optimizer starts afresh)")
    freeze_parts(model, options["freeze"])
    trainable_paths = {v.path for v in model.trainable_weights}
    stuck = [path for path in grown if path not in trainable_paths]
    if stuck:
        raise RecipeError(
            f"{', '.join(options['freeze'])} holds {', '.join(stuck)}, which finetune.vocab=extend "
            "grew: frozen, its new rows would keep their starting values and the new tokens "
            "would never be learned. Freeze other parts, or keep the vocabularies",
            key="finetune.freeze",
        )
    multipliers = part_multipliers(model, options["learning_rate_multipliers"])
    trainable = _weight_count(model.trainable_weights)
    frozen = f"{', '.join(options['freeze'])} frozen; " if options["freeze"] else ""
    log(f"finetune: {frozen}{trainable:,} of {model.count_params():,} weights train")

    datasets, token_counts = adapter.datasets(recipe, model, tokenizers, splits, run_dir, log)
    steps = recipe["train"]["steps_per_epoch"] or int(datasets["train"].cardinality())
    adapter.compile(model, recipe["train"], steps, multipliers)
    decoder = adapter.decoder(model, tokenizers, recipe)

    before = _timed_evaluation(
        adapter, model, decoder, splits.validation, recipe, "validation before", log
    )
    training = fit(model, datasets, token_counts, recipe, run_dir, log=log, callbacks=callbacks)
    after = _timed_evaluation(
        adapter, model, decoder, splits.validation, recipe, "validation after", log
    )
    metrics = adapter.evaluate(model, decoder, splits.test, recipe, final=True)
    metrics.update(training)
    metrics["finetune"] = {
        "base": str(base.path),
        "vocabulary": vocabulary,
        "frozen": list(options["freeze"]),
        "validation_before": before,
        "validation_after": after,
    }
    log(f"finetune: validation {adapter.headline(before)} -> {adapter.headline(after)}")
    log(adapter.format_metrics(metrics))
    return finish_run(
        recipe, metrics, lambda: adapter.export(decoder, recipe, metrics), run_dir, started, log
    )


# --- evaluation of an export ----------------------------------------------------------------
def evaluate_export(recipe: dict, *, split: str = "test", log: Callable = print) -> dict:
    """Decodes `split` of the recipe's data with the export `recipe["init_from"]`, and scores it.

    `split` is `train`, `validation`, `test` (as `zoo run` splits the data)
    or `all` (every example the data names, unsplit). Returns the task's
    metrics, with `export`, `data` and `split` added.
    """
    adapter = get_adapter(recipe["task"])
    base = load_base(recipe["init_from"])
    if split == "all":
        examples, report = adapter.read_examples(recipe["data"])
    else:
        splits = adapter.load_splits(recipe["data"])
        examples, report = getattr(splits, split), splits.report
    log(f"data: {report}")
    log(f"data: {len(examples)} examples ({split})")
    if not examples:
        raise FinetuneError(f"no example to evaluate in the {split} split")
    decoder = adapter.decoder(base.model, base.tokenizers, recipe)
    metrics = adapter.evaluate(base.model, decoder, examples, recipe, final=True)
    log(adapter.format_metrics(metrics))
    data = recipe["data"]
    return {
        "export": str(base.path),
        "data": data.get("path") or data.get("source_path") or data["kind"],
        "split": split,
        **metrics,
    }
