"""The sequence-to-sequence tasks' training (translation, parsing): ids, buckets, `Seq2Seq`, compile.

A task reads its data and builds its tokenizers; from token ids to a
compiled `Seq2Seq` everything is the same for every such task, and lives here.
"""

from __future__ import annotations

import tensorflow as tf

from zoo.data.seq2seq_dataset import count_real_tokens, make_seq2seq_dataset
from zoo.models import Seq2Seq
from zoo.training import compile_for_fit


def tokenize_all(tokenizer, texts: list[str], batch: int = 4096) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), batch):
        out.extend(tokenizer.tokenize(tf.constant(texts[i : i + batch])).to_list())
    return out


def build_model(
    model_config: dict,
    source_vocab_size: int,
    target_vocab_size: int,
    dtype: str | None = None,
    decoder: dict | None = None,
) -> Seq2Seq:
    """A built `Seq2Seq` from a recipe's `model` section; `decoder` replaces its decoder's."""
    encoder = dict(model_config["encoder"])
    decoder = dict(model_config["decoder"] if decoder is None else decoder)
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


compile_model = compile_for_fit
"""A `Seq2Seq` compiles as every token-writing model does (`zoo.training.compile_for_fit`)."""


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
