"""Training throughput of a recipe, in target tokens per second (padding excluded).

    python benchmarks/train_throughput.py recipes/translation.yaml
    python benchmarks/train_throughput.py recipes/translation.yaml --set model.decoder.units=256 --steps 60
    python benchmarks/train_throughput.py recipes/translation.yaml --tutorial-reference

`--tutorial-reference` times, on the same data and machine, a model shaped
like the TensorFlow NMT tutorial's (BiGRU 256 encoder, GRU 256 decoder, one
head of cross attention over the decoder outputs, no input feeding, batch 64,
batches padded to their longest sentence). It is written here from that
description, so the two figures compare like with like.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.config import load_recipe  # noqa: E402
from zoo.data.seq2seq_dataset import make_seq2seq_dataset  # noqa: E402
from zoo.models import MaskedSparseCrossentropy  # noqa: E402
from zoo.tasks import translation  # noqa: E402


def tutorial_shaped_model(source_vocab: int, target_vocab: int, units: int = 256) -> keras.Model:
    """BiGRU encoder, GRU decoder, one-head cross attention after the decoder RNN."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    x = keras.layers.Embedding(source_vocab, units, mask_zero=True)(source)
    memory = keras.layers.Bidirectional(
        keras.layers.GRU(units, return_sequences=True), merge_mode="sum"
    )(x)
    y = keras.layers.Embedding(target_vocab, units, mask_zero=True)(target_in)
    y = keras.layers.GRU(units, return_sequences=True)(y)
    attended = keras.layers.MultiHeadAttention(num_heads=1, key_dim=units)(query=y, value=memory)
    y = keras.layers.LayerNormalization()(keras.layers.Add()([y, attended]))
    logits = keras.layers.Dense(target_vocab)(y)
    return keras.Model({"source": source, "target_in": target_in}, logits)


def measure(model, dataset, steps: int, warmup: int) -> dict:
    batches = iter(dataset.repeat())
    for _ in range(warmup):  # tracing, one trace per bucket shape at most
        x, y = next(batches)
        model.train_on_batch(x, y)
    tokens = padded = 0
    started = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        model.train_on_batch(x, y)
        tokens += int(np.count_nonzero(y.numpy()))
        padded += int(np.prod(y.shape))
    seconds = time.perf_counter() - started
    return {
        "tokens_per_second": tokens / seconds,
        "padding_share": 1 - tokens / padded,
        "seconds": seconds,
        "steps": steps,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, default=80, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (tracing)")
    parser.add_argument(
        "--tutorial-reference", action="store_true", help="also time the tutorial-shaped model"
    )
    args = parser.parse_args(argv)

    recipe = load_recipe(args.recipe, args.set)
    keras.utils.set_random_seed(recipe["train"]["seed"])
    splits = translation.load_splits(recipe["data"])
    source_tokenizer = translation.build_tokenizer(
        [p.source for p in splits.train], recipe["tokenizer"]
    )
    target_tokenizer = translation.build_tokenizer(
        [p.target for p in splits.train], recipe["tokenizer"]
    )
    source_ids = translation.tokenize_all(source_tokenizer, [p.source for p in splits.train])
    target_ids = translation.tokenize_all(target_tokenizer, [p.target for p in splits.train])
    train = recipe["train"]
    dataset = make_seq2seq_dataset(
        source_ids,
        target_ids,
        batch_size=train["batch_size"],
        batch_tokens=train["batch_tokens"],
        bucket_boundaries=train["bucket_boundaries"],
        reverse_source=recipe["model"]["reverse_source"],
    )
    model = translation.build_model(
        recipe["model"], source_tokenizer.vocab_size, target_tokenizer.vocab_size
    )
    translation.compile_model(model, train)
    m = recipe["model"]
    print(
        f"machine: {os.cpu_count()} CPUs; TensorFlow {tf.__version__}, Keras {keras.__version__}\n"
        f"recipe: {args.recipe} {' '.join(args.set)}\n"
        f"zoo model: encoder {m['encoder']['cell']} {m['encoder']['units']}x{2 if m['encoder']['bidirectional'] else 1}, "
        f"attention {m['attention']['kind']} {m['attention']['units']}, decoder {m['decoder']['cell']} "
        f"{m['decoder']['units']} ({m['decoder']['style']}), batch {train['batch_size']}"
        f"{', batch_tokens ' + str(train['batch_tokens']) if train['batch_tokens'] else ''}, "
        f"buckets {train['bucket_boundaries']}, {model.count_params():,} parameters"
    )
    ours = measure(model, dataset, args.steps, args.warmup)
    print(
        f"zoo: {ours['tokens_per_second']:,.0f} target tokens/s "
        f"(padding {ours['padding_share']:.1%} of positions, {ours['steps']} steps in {ours['seconds']:.1f} s)"
    )
    if args.tutorial_reference:
        reference = tutorial_shaped_model(source_tokenizer.vocab_size, target_tokenizer.vocab_size)
        reference.compile(optimizer="adam", loss=MaskedSparseCrossentropy(), jit_compile=False)
        plain = make_seq2seq_dataset(source_ids, target_ids, batch_size=64)
        result = measure(reference, plain, args.steps, args.warmup)
        print(
            f"tutorial-shaped reference: {result['tokens_per_second']:,.0f} target tokens/s "
            f"(padding {result['padding_share']:.1%}, {reference.count_params():,} parameters)"
        )


if __name__ == "__main__":
    main()
