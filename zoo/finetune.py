"""Fine-tuning's pieces, for any task: the base export, vocabularies, weights, parts.

`zoo.runner.finetune` runs them (`zoo finetune saved_models/<name> --data
<path>`, or a recipe with ``init_from``): the newest (or named) version's
`model.keras` and vocabularies are loaded, the vocabularies kept or
extended (`finetune.vocab`), the weights copied into the recipe's model,
parts frozen or slowed (`finetune.freeze`,
`finetune.learning_rate_multipliers`) as the task's `finetune_policy` names
them. The base version is only read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.config import RecipeError
from zoo.text import NUM_RESERVED, UNK_ID, tokenizer_from_config


class FinetuneError(ValueError):
    """A fine-tuning that cannot start: said before any training, nothing exported."""


# --- the base export ------------------------------------------------------------------------
@dataclasses.dataclass
class BaseModel:
    """An export's trained model and tokenizers, as `model.keras` and `tokenizers.json` hold them."""

    path: Path
    model: keras.Model
    tokenizers: dict[str, Any]


def load_base(version_dir: str | Path, *, trust: bool = False) -> BaseModel:
    """Loads `assets.extra/model.keras` and the tokenizers of an export's version folder.

    The export is scanned first and refused if its graph touches files,
    processes or the network, unless `trust` (`zoo.security.check_export`);
    anything unreadable is a `zoo.security.ExportError` naming the file.
    """
    import zoo.models  # noqa: F401  (registers the zoo's classes for deserialisation)
    from zoo.security import ExportError, check_export

    check_export(version_dir, trust=trust)
    extra = Path(version_dir) / "assets.extra"
    try:
        configs = json.loads((extra / "tokenizers.json").read_text(encoding="utf-8"))
        tokenizers = {key: tokenizer_from_config(config) for key, config in configs.items()}
    except FileNotFoundError:
        raise ExportError(f"{extra / 'tokenizers.json'} is missing: not a zoo export") from None
    except (ValueError, KeyError, TypeError) as error:  # JSON, UTF-8, or a config's contents
        raise ExportError(f"{extra / 'tokenizers.json'} is unreadable: {error}") from None
    path = extra / "model.keras"
    if not path.is_file():
        raise ExportError(f"{path} is missing: not a zoo export")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001  (Keras raises many kinds on a damaged file)
        # Keras' safe mode refuses a Lambda layer (code in the file) with a ValueError.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"{path} cannot be loaded: {reason}") from None
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
        if options["vocab"] == "extend" and not getattr(tokenizer, "can_extend", True):
            raise FinetuneError(
                f"finetune.vocab: the base model's {key} tokenizer is {tokenizer.kind}, whose "
                "pieces are a trained model that cannot grow; fine-tune with "
                "finetune.vocab=keep (its pieces spell any word of the characters it knows)"
            )
        if options["vocab"] == "extend":
            added = new_tokens(
                tokenizer,
                texts[key],
                limit=options["new_tokens"],
                # A closed vocabulary takes every new symbol, however rare.
                min_count=1 if key in closed else options["min_count"],
                vocab_size=recipe.get("tokenizer", {}).get("vocab_size") or tokenizer.vocab_size,
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
def check_parts(task, parts: dict, options: dict) -> None:
    """Refuses a part to freeze or slow down that the model lacks (attention `none`)."""
    named = [("finetune.freeze", p) for p in options["freeze"]]
    named += [
        (f"finetune.learning_rate_multipliers.{p}", p)
        for p, m in options["learning_rate_multipliers"].items()
        if m is not None
    ]
    for key, part in named:
        if not parts.get(part):
            have = ", ".join(p for p in task.finetune_policy.parts if parts.get(p))
            raise RecipeError(
                f"a {task.name} model has no {part!r} part (its parts: {have})", key=key
            )


def freeze_parts(task, model: keras.Model, freeze: list[str]) -> None:
    """Makes the layers of the named parts non-trainable."""
    parts = task.model_parts(model)
    for part in freeze:
        for layer in parts[part]:
            layer.trainable = False


def part_multipliers(
    task, model: keras.Model, multipliers: dict[str, float | None]
) -> dict[str, float]:
    """`{variable path: factor}` for the trainable variables of the parts given a factor.

    A variable in several parts (the decoder's attention is in `decoder` and
    `attention`) takes the factor of the narrowest part that has one
    (`finetune_policy.narrowest_first`).
    """
    parts = task.model_parts(model)
    owners: dict[int, list[str]] = {}
    for part, layers in parts.items():
        for layer in layers:
            for variable in layer.trainable_weights:
                owners.setdefault(id(variable), []).append(part)
    result = {}
    for variable in model.trainable_weights:
        for part in task.finetune_policy.narrowest_first:
            if part in owners.get(id(variable), ()) and multipliers.get(part) is not None:
                if multipliers[part] != 1.0:
                    result[variable.path] = float(multipliers[part])
                break
    return result


def _weight_count(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


def freeze_and_slow(task, model: keras.Model, options: dict, grown: list[str], log) -> dict:
    """Freezes `finetune.freeze`; returns the learning-rate factors of the other parts.

    Refuses to freeze a weight whose vocabulary grew (its new rows would
    never be learned).
    """
    freeze_parts(task, model, options["freeze"])
    trainable_paths = {v.path for v in model.trainable_weights}
    stuck = [path for path in grown if path not in trainable_paths]
    if stuck:
        raise RecipeError(
            f"{', '.join(options['freeze'])} holds {', '.join(stuck)}, which finetune.vocab=extend "
            "grew: frozen, its new rows would keep their starting values and the new tokens "
            "would never be learned. Freeze other parts, or keep the vocabularies",
            key="finetune.freeze",
        )
    multipliers = part_multipliers(task, model, options["learning_rate_multipliers"])
    trainable = _weight_count(model.trainable_weights)
    frozen = f"{', '.join(options['freeze'])} frozen; " if options["freeze"] else ""
    log(f"finetune: {frozen}{trainable:,} of {model.count_params():,} weights train")
    return multipliers
