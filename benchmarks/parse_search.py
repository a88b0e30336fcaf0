"""The parser's compiled search alone: plain decoder step against projected inputs, per step.

`parse_speed.py` times whole requests (tokenizing, searching, writing the
trees). This rebuilds an export's weights twice, with the decoder's plain
step and with its input projections computed once per sentence
(`decode.precompute`, `AttentionDecoder.decoding_step`), and times only the XLA-compiled search
(encoder included) on one batch of the test sentences, with the tree
constraint and without it (the search then runs to the length bound), for
greedy and beam 4. It prints microseconds per decoding step, side by side.

    python benchmarks/parse_search.py saved_models/parsing_ptb/1 --batch-size 64
    python benchmarks/parse_search.py saved_models/parsing_ptb/1 --batch-size 1
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("version", help="an export's version folder, saved_models/<name>/<v>")
    parser.add_argument("--batch-size", type=int, default=64, help="the first N test sentences")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tokenizer ops)
    from parse_speed import held_out_sentences  # this folder's, beside it

    from zoo.config import load_recipe
    from zoo.finetune import load_base
    from zoo.tasks.parsing.task import Parser
    from zoo.tasks.seq2seq.serving import xla_width

    version = Path(args.version)
    base = load_base(version)
    recipe = load_recipe(str(version / "assets.extra/recipe.yaml"))
    sentences = held_out_sentences(recipe)[: args.batch_size]
    print(f"{version}: one batch of {len(sentences)} test sentences, {os.cpu_count()} CPU cores")
    print("| decoding | constraint | steps | plain step µs/step | projected µs/step | ratio |")
    print("|---|---|---|---|---|---|")
    parsers = {}
    for precompute in (False, True):
        recipe["decode"]["precompute"] = precompute
        parsers[precompute] = Parser(
            base.model, base.tokenizers["source"], base.tokenizers["target"], recipe
        )
    source, _, _, word_count = parsers[False].encode_text(tf.constant(sentences))
    width = source.shape[1]
    padded = xla_width(width)
    source = tf.pad(source, [[0, 0], [0, padded - width]])
    word_count = tf.cast(word_count, tf.int32)
    bound = int(parsers[False].length_bound(padded))
    for beam in (1, 4):
        for constrained in (True, False):
            timings = {}
            for precompute, parse in parsers.items():
                if constrained:
                    search = tf.function(
                        lambda s, w, p=parse, b=beam: p._fixed_search(s, w, b, tf.constant(bound)),
                        jit_compile=True,
                        autograph=False,
                    )
                else:
                    search = tf.function(
                        lambda s, w, p=parse, b=beam: p.decode_ids(s, b, bound),
                        jit_compile=True,
                        autograph=False,
                    )
                out = search(source, word_count)  # compiles
                steps = min(int(np.max(out["lengths"])) + 1, bound)
                started = time.perf_counter()
                for _ in range(args.repeats):
                    search(source, word_count)
                seconds = (time.perf_counter() - started) / args.repeats
                timings[precompute] = 1e6 * seconds / steps
            print(
                f"| {'greedy' if beam == 1 else f'beam {beam}'} | {'on' if constrained else 'off'} "
                f"| {steps} | {timings[False]:.0f} | {timings[True]:.0f} "
                f"| {timings[False] / timings[True]:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
