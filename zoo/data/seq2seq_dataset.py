"""tf.data input for sequence to sequence training: length-bucketed, padded, prefetched."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3


def source_with_end(ids: Sequence[int], reverse: bool = False) -> list[int]:
    """The encoder input: the tokens (reversed if asked, as Sutskever et al.) then [END]."""
    ids = list(ids)
    if reverse:
        ids = ids[::-1]
    return ids + [END_ID]


def make_seq2seq_dataset(
    source_ids: Sequence[Sequence[int]],
    target_ids: Sequence[Sequence[int]],
    *,
    batch_size: int,
    bucket_boundaries: Sequence[int] = (),
    reverse_source: bool = False,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    batch_tokens: int | None = None,
) -> tf.data.Dataset:
    """Builds `({"source", "target_in"}, target_out)` batches for `Seq2Seq.fit`.

    Pairs are grouped by length (the longer side) into buckets, so a batch of
    short sentences is not padded to the longest sentence of the data set:
    less padding means more real tokens per second. Keras traces the train
    step once for all buckets (their shapes differ only in length).

    Args:
        source_ids, target_ids: token ids per sentence, without special tokens.
        batch_size: sentences per batch.
        bucket_boundaries: upper lengths of the buckets (exclusive), e.g.
            `(10, 20, 40)`; empty for plain padded batches.
        reverse_source: reverse the source tokens (Sutskever et al. 2014).
        shuffle: reshuffle the sentences each epoch.
        seed: shuffle seed.
        batch_tokens: if set, each bucket's batch holds about this many
            tokens (`batch_tokens // bucket_length` sentences, at least
            `batch_size`): short sentences come in bigger batches, which
            keep the CPU's matrix units busier per step.
    """
    if len(source_ids) != len(target_ids):
        raise ValueError(
            f"source and target must have the same number of sentences. "
            f"Received: {len(source_ids)} sources, {len(target_ids)} targets"
        )
    sources = [source_with_end(s, reverse_source) for s in source_ids]
    targets = [[START_ID, *t, END_ID] for t in target_ids]
    dataset = tf.data.Dataset.from_tensor_slices((ragged_ids(sources), ragged_ids(targets)))
    if shuffle:
        dataset = dataset.shuffle(len(sources), seed=seed, reshuffle_each_iteration=True)

    def to_example(source, target):
        return {"source": source, "target_in": target[:-1]}, target[1:]

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    if bucket_boundaries:
        boundaries = sorted(set(int(b) for b in bucket_boundaries))
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda x, y: tf.maximum(tf.shape(x["source"])[0], tf.shape(y)[0]),
            bucket_boundaries=boundaries,
            bucket_batch_sizes=bucket_batch_sizes(boundaries, batch_size, batch_tokens),
            drop_remainder=drop_remainder,
        )
    else:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
    # Bucket membership does not depend on the shuffle, so the number of
    # batches is the same every epoch: count it once so progress bars show
    # a total and Keras does not warn that the data "ran out".
    batches = int(dataset.reduce(0, lambda count, _: count + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def bucket_batch_sizes(
    boundaries: Sequence[int], batch_size: int, batch_tokens: int | None
) -> list[int]:
    """Sentences per batch for each bucket (the last bucket is open-ended)."""
    if not batch_tokens:
        return [batch_size] * (len(boundaries) + 1)
    uppers = [*boundaries, boundaries[-1] * 2]
    return [max(batch_size, batch_tokens // upper) for upper in uppers]


def ragged_ids(rows: Sequence[Sequence[int]]) -> tf.RaggedTensor:
    """Id lists -> an int32 RaggedTensor (fast for large corpora, fine when empty)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


def pad_batch(rows: Sequence[Sequence[int]], min_length: int = 2) -> np.ndarray:
    """Right-pads id lists with 0 into an int32 matrix (at least `min_length` wide)."""
    width = max([min_length, *(len(r) for r in rows)])
    out = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def count_real_tokens(target_ids: Sequence[Sequence[int]]) -> int:
    """Target tokens the decoder predicts (the sentence plus its [END]), padding excluded."""
    return sum(len(t) + 1 for t in target_ids)
