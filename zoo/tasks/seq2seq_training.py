"""What the sequence-to-sequence tasks (translation, parsing) share: model, optimizer, fit, decode.

A task module reads its data and builds its tokenizers; everything from
token ids to a trained `Seq2Seq` (buckets, optimizer, callbacks, resumable
`fit`) and the batched decoding of a corpus is the same for every task, and
lives here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.data.seq2seq_dataset import count_real_tokens, make_seq2seq_dataset
from zoo.models import MaskedAccuracy, MaskedSparseCrossentropy, Seq2Seq


def tokenize_all(tokenizer, texts: list[str], batch: int = 4096) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), batch):
        out.extend(tokenizer.tokenize(tf.constant(texts[i : i + batch])).to_list())
    return out


def build_model(
    model_config: dict, source_vocab_size: int, target_vocab_size: int, dtype: str | None = None
) -> Seq2Seq:
    encoder = dict(model_config["encoder"])
    decoder = dict(model_config["decoder"])
    model = Seq2Seq(
        source_vocab_size,
        target_vocab_size,
        embedding_dim=model_config["embedding_dim"],
        encoder=encoder,
        decoder=decoder,
        attention=dict(model_config["attention"]),
        dtype=dtype,
    )
    model.build()
    return model


def make_optimizer(train: dict, steps_per_epoch: int | None = None) -> keras.optimizers.Optimizer:
    learning_rate: Any = train["learning_rate"]
    if train["schedule"] == "cosine" and steps_per_epoch:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps_per_epoch * train["epochs"], alpha=0.05
        )
    kwargs: dict[str, Any] = {"learning_rate": learning_rate}
    if train["clipnorm"]:
        kwargs["clipnorm"] = train["clipnorm"]
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[train["optimizer"]](**kwargs)


def compile_model(
    model: Seq2Seq, train: dict, steps_per_epoch: int | None = None, multipliers: dict | None = None
) -> None:
    """Compiles for `fit`; `multipliers` (variable path -> factor) scale parts' learning rates."""
    optimizer = make_optimizer(train, steps_per_epoch)
    if multipliers:
        from zoo.models import LearningRateMultipliers

        optimizer = LearningRateMultipliers(optimizer, multipliers)
    model.compile(
        optimizer=optimizer,
        loss=MaskedSparseCrossentropy(label_smoothing=train["label_smoothing"]),
        metrics=[MaskedAccuracy()],
        # scan cannot be compiled by XLA (KERAS3-NOTES): say so explicitly.
        jit_compile=bool(train["jit_compile"]),
    )


def check_export_target(recipe: dict) -> None:
    """Fails before any training when `export.version` names a version that exists."""
    version = recipe["export"]["version"]
    target = Path(recipe["export"]["dir"]) / recipe["name"] / str(version)
    if version is not None and target.exists():
        raise FileExistsError(
            f"export.version: {target} already exists; versions are never overwritten"
        )


def discard_stale_backup(run_dir: Path, recipe: dict, log) -> None:
    """A backup of an interrupted run is resumed only by the same recipe.

    `BackupAndRestore` would otherwise restore weights of another model (or
    fail on their shapes) after the user changed the recipe.
    """
    from zoo.config import dump_recipe

    digest = hashlib.sha256(dump_recipe(recipe).encode("utf-8")).hexdigest()
    stamp = run_dir / "backup.recipe-sha256"
    backup = run_dir / "backup"
    if backup.exists() and (not stamp.exists() or stamp.read_text().strip() != digest):
        log(f"train: {backup} is from a different recipe; starting afresh")
        shutil.rmtree(backup)
    stamp.write_text(digest + "\n")


def make_datasets(
    recipe: dict,
    ids: dict[str, tuple[list[list[int]], list[list[int]]]],
    log,
    *,
    max_source_tokens: int | None = None,
) -> tuple[dict[str, tf.data.Dataset], dict[str, int]]:
    """Bucketed datasets from `{"train": (source_ids, target_ids), "validation": ...}`.

    Training pairs whose source is longer than `max_source_tokens` are
    dropped (and counted in the log). Returns the datasets and each split's
    number of real target tokens (for tokens/s).
    """
    train = recipe["train"]
    datasets, token_counts = {}, {}
    for split, (source_ids, target_ids) in ids.items():
        if split == "train" and max_source_tokens:
            keep = [i for i, s in enumerate(source_ids) if len(s) <= max_source_tokens]
            if len(keep) < len(source_ids):
                log(
                    f"data: {len(source_ids) - len(keep)} training examples longer than "
                    f"{max_source_tokens} source tokens dropped"
                )
            source_ids = [source_ids[i] for i in keep]
            target_ids = [target_ids[i] for i in keep]
        token_counts[split] = count_real_tokens(target_ids)
        datasets[split] = make_seq2seq_dataset(
            source_ids,
            target_ids,
            batch_size=train["batch_size"],
            batch_tokens=train["batch_tokens"] if split == "train" else None,
            bucket_boundaries=train["bucket_boundaries"],
            reverse_source=recipe["model"]["reverse_source"],
            shuffle=split == "train",
            seed=train["seed"],
        )
    return datasets, token_counts


def text_datasets(
    recipe: dict,
    source_tokenizer,
    target_tokenizer,
    texts: dict[str, tuple[list[str], list[str]]],
    log,
    *,
    max_source_tokens: int | None = None,
) -> tuple[dict[str, tf.data.Dataset], dict[str, int]]:
    """`make_datasets` from `{"train": (sources, targets), "validation": ...}` texts."""
    ids = {
        split: (tokenize_all(source_tokenizer, sources), tokenize_all(target_tokenizer, targets))
        for split, (sources, targets) in texts.items()
    }
    return make_datasets(recipe, ids, log, max_source_tokens=max_source_tokens)


def fit(
    model: Seq2Seq,
    datasets: dict[str, tf.data.Dataset],
    token_counts: dict[str, int],
    recipe: dict,
    run_dir: Path,
    *,
    log,
    callbacks: list | tuple = (),
) -> dict:
    """`model.fit` with the zoo's callbacks: resumable backup, checkpoint, TensorBoard, early stop.

    Returns `{"history", "train_seconds", "epochs", "epochs_this_run",
    "tokens_per_second"}`; a run resumed from `run_dir/backup` trains only
    the epochs that were left.
    """
    train = recipe["train"]
    callbacks = [
        *callbacks,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoint.keras")),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
    ]
    if train["patience"]:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                patience=train["patience"], restore_best_weights=True, verbose=1
            )
        )
    started = time.time()
    history = model.fit(
        datasets["train"],
        validation_data=datasets["validation"],
        epochs=train["epochs"],
        steps_per_epoch=train["steps_per_epoch"],
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself each epoch
        verbose="auto",
    )
    seconds = time.time() - started
    epochs_run = len(history.epoch)  # this call; fewer than asked after a resume
    rate = token_counts["train"] * epochs_run / max(seconds, 1e-9)
    log(
        f"train: {epochs_run} epochs in {seconds:.0f} s, "
        f"{rate:,.0f} target tokens/s (padding excluded)"
    )
    return {
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "train_seconds": round(seconds, 1),
        "epochs": history.epoch[-1] + 1 if history.epoch else 0,
        "epochs_this_run": epochs_run,
        "tokens_per_second": round(rate, 1),
    }


def decode_corpus(
    decode_fn,
    inputs: list[str],
    batch_size: int = 64,
    progress: bool = True,
    unit: str = "sentence",
) -> list[dict]:
    """Runs a strings-in, dict-of-tensors-out function over `inputs` in batches.

    Returns one dict of NumPy values per input, in order.
    """
    results = []
    bar = keras.utils.Progbar(len(inputs), unit_name=unit) if progress else None
    for i in range(0, len(inputs), batch_size):
        batch = decode_fn(tf.constant(inputs[i : i + batch_size]))
        batch = {k: v.numpy() for k, v in batch.items()}
        size = len(next(iter(batch.values())))
        for j in range(size):
            results.append({k: v[j] for k, v in batch.items()})
        if bar:
            bar.add(size)
    return results


def start_run(recipe: dict, log) -> tuple[Path, float]:
    """Seeds, makes `runs/<name>`, and fails early on an existing export version.

    Returns the run folder and the start time (for the total in the log).
    """
    keras.utils.set_random_seed(recipe["train"]["seed"])
    started = time.time()
    from zoo.config import run_folder

    run_dir = run_folder(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_export_target(recipe)
    discard_stale_backup(run_dir, recipe, log)
    return run_dir, started


def train_seq2seq(
    recipe: dict,
    source_tokenizer,
    target_tokenizer,
    texts: dict[str, tuple[list[str], list[str]]],
    run_dir: Path,
    *,
    log,
    callbacks: list | tuple = (),
    max_source_tokens: int | None = None,
) -> tuple[Seq2Seq, dict]:
    """Tokenizes `{"train": (sources, targets), "validation": ...}`, builds and fits a `Seq2Seq`.

    Returns the trained model and what `fit` reports.
    """
    datasets, token_counts = text_datasets(
        recipe, source_tokenizer, target_tokenizer, texts, log, max_source_tokens=max_source_tokens
    )
    # bfloat16 compute with float32 weights pays off only for large dense
    # work; set on the model, not globally, so nothing else in the process changes.
    dtype = "mixed_bfloat16" if recipe["train"]["mixed_precision"] else None
    model = build_model(
        recipe["model"], source_tokenizer.vocab_size, target_tokenizer.vocab_size, dtype
    )
    steps = recipe["train"]["steps_per_epoch"] or int(datasets["train"].cardinality())
    compile_model(model, recipe["train"], steps)
    log(f"model: {model.count_params():,} parameters")
    training = fit(model, datasets, token_counts, recipe, run_dir, log=log, callbacks=callbacks)
    return model, training


def finish_run(recipe: dict, metrics: dict, export, run_dir: Path, started: float, log) -> dict:
    """Exports (`export()` returns the version folder), logs the total, writes metrics.json."""
    export_dir = export()
    metrics["total_seconds"] = round(time.time() - started, 1)
    log(f"export: {export_dir}")
    log(f"total: {metrics['total_seconds']:.0f} s")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    return {"export_dir": str(export_dir), "metrics": metrics, "run_dir": str(run_dir)}
