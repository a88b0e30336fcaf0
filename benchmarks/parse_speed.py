"""Sentences per second of an exported parser on the CPU, batch 1 and batch 64.

Vinyals et al. (2015) report over 100 sentences per second from an
unoptimised CPU implementation. This loads an export (as a server would,
through its `parse` signature), warms it up, and times parsing the test
sentences the recipe held out (or `--file`, one sentence a line) one at a
time and in batches of 64.

    python benchmarks/parse_speed.py saved_models/parsing
    python benchmarks/parse_speed.py saved_models/parsing --beam-size 1 --sentences 500
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def held_out_sentences(recipe: dict) -> list[str]:
    from zoo.config import resolve_recipe
    from zoo.tasks.parsing import load_splits

    return [e.sentence for e in load_splits(resolve_recipe(recipe)["data"]).test]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("export", help="saved_models/<name> or a version folder")
    parser.add_argument("--file", help="sentences to parse, one a line (default: the test split)")
    parser.add_argument("--sentences", type=int, default=256, help="how many to time")
    parser.add_argument("--beam-size", type=int, help="default: the recipe's")
    parser.add_argument("--batch-sizes", default="1,64")
    args = parser.parse_args(argv)

    import tensorflow as tf

    import zoo

    model = zoo.load(args.export)
    if model.task != "parsing":
        raise SystemExit(f"{args.export} is a {model.task} model, not a parser")
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            sentences = [line.strip() for line in f if line.strip()]
    else:
        sentences = held_out_sentences(model.recipe)
    sentences = sentences[: args.sentences]
    beam = args.beam_size or int(model.recipe["decode"]["beam_size"])
    signature = model.saved_model.signatures["parse_options"]
    max_length = tf.constant(int(model.recipe["decode"]["max_length"]))
    words = sum(len(s.split()) for s in sentences)
    print(
        f"{model.path}: {len(sentences)} sentences, {words / len(sentences):.1f} words on "
        f"average, beam {beam}, {os.cpu_count()} CPU cores"
    )

    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        batches = [sentences[i : i + batch_size] for i in range(0, len(sentences), batch_size)]
        run = lambda batch: signature(  # noqa: E731
            sentence=tf.constant(batch), beam_size=tf.constant(beam), max_length=max_length
        )
        run(batches[0])  # warm-up
        started = time.perf_counter()
        for batch in batches:
            run(batch)["tree"].numpy()
        seconds = time.perf_counter() - started
        print(
            f"batch {batch_size:3d}: {len(sentences) / seconds:7.1f} sentences/s "
            f"({1000 * seconds / len(batches):.1f} ms per batch)"
        )


if __name__ == "__main__":
    main()
