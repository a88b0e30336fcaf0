"""Sentences per second of an exported parser on the CPU: batch 1 and 64, greedy and beam.

Vinyals et al. (2015) report over 100 sentences per second from an
unoptimised CPU implementation. This loads an export as a server would
(`tf.saved_model.load`, its `parse_options` signature), parses the test
sentences the recipe held out (or `--file`, one sentence a line) once to
warm up (with `decode.xla`, that pass compiles one program per batch size
and 16-word width: its time is printed apart), then times them one at a
time and in batches of 64, greedy and with the recipe's beam. With
`--repeats N` each is timed N times and its fastest pass reported; the
passes of all parsers and decodings are interleaved, so that a slow spell of
the machine (its speed drifts by up to 1.6x here) slows them all alike. The
time per decoding step is the time per batch over the steps its longest
output took (with `decode.max_batch_size`, over the steps its groups took).

With `--without-xla` the same weights are also rebuilt in this process
with `decode.xla: false` and timed in the same run, side by side. With
`--precompute` they are rebuilt twice with XLA: with `decode.precompute`
false (the decoder's plain step) and true (its input projections computed
once per sentence). With `--max-batch-size 4,8,16` they are rebuilt with
XLA and each of those `decode.max_batch_size` (a batch searched sorted by
length, that many sentences at a time; 0: all at once), with the export's own
`decode.precompute`; with `--precompute` too, both ways each. With
`--compare OTHER` (more than once for several) another export, an earlier
recipe's say, is timed on the same sentences in the same run. With
`--sorted` the sentences are sorted by length before they are batched, as a
server that batches requests of similar length would see them: a batch's
search runs until its longest output ends.

    python benchmarks/parse_speed.py saved_models/parsing_ptb
    python benchmarks/parse_speed.py saved_models/parsing_ptb --without-xla --sentences 128
    python benchmarks/parse_speed.py saved_models/parsing_ptb --precompute
    python benchmarks/parse_speed.py saved_models/parsing_ptb --max-batch-size 8 --batch-sizes 64
    python benchmarks/parse_speed.py saved_models/parsing_ptb --compare old/parsing_ptb/1
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def held_out_sentences(recipe: dict) -> list[str]:
    from zoo.config import resolve_recipe
    from zoo.tasks.parsing import load_splits

    return [e.sentence for e in load_splits(resolve_recipe(recipe)["data"]).test]


def search_steps(lengths, words: list[int], group: int) -> int:
    """The decoding steps a batch's search runs: until its longest output ends, or each group's.

    `group`: `decode.max_batch_size` (0: none); groups are cut as
    `Seq2SeqServing._search_sorted` cuts them, by word count, shortest first.
    """
    lengths = [int(n) for n in lengths]
    if not group or len(lengths) <= group:
        return max(lengths) + 1
    order = sorted(range(len(lengths)), key=lambda i: words[i])
    rows = [order[0]] * (-len(order) % group) + order
    return sum(max(lengths[i] for i in rows[k : k + group]) + 1 for k in range(0, len(rows), group))


class Timing:
    """One parser, one decoding, one batch size: a warm-up pass, then timed passes.

    `group`: the parser's `decode.max_batch_size`, to count the steps its groups run.
    The figures are the fastest pass's, as `timeit` reports. `main` interleaves
    the passes of every `Timing` (one pass of each, then again), so a slow
    spell of the machine slows them all alike, not one of them.
    """

    def __init__(self, parse, sentences, batch_size, beam, max_length, group=0):
        self.parse, self.beam, self.max_length, self.group = parse, beam, max_length, group
        self.sentences = len(sentences)
        self.batches = [sentences[i : i + batch_size] for i in range(0, len(sentences), batch_size)]
        self.warm_up = self.run_pass()[0]
        self.seconds, self.steps = float("inf"), 0

    def run(self, batch):
        import tensorflow as tf

        out = self.parse(
            sentence=tf.constant(batch),
            beam_size=tf.constant(self.beam),
            max_length=tf.constant(self.max_length),
        )
        return out["length"].numpy()

    def run_pass(self) -> tuple[float, int]:
        """One pass over the batches: `(seconds, decoding steps)`."""
        steps = 0
        started = time.perf_counter()
        for batch in self.batches:
            lengths = self.run(batch)
            steps += search_steps(lengths, [len(s.split()) for s in batch], self.group)
        return time.perf_counter() - started, steps

    def timed_pass(self) -> None:
        """One pass, kept if it is the fastest so far."""
        seconds, steps = self.run_pass()
        if seconds < self.seconds:
            self.seconds, self.steps = seconds, steps

    def figures(self) -> dict:
        return {
            "sentences_per_second": self.sentences / self.seconds,
            "ms_per_batch": 1000 * self.seconds / len(self.batches),
            "us_per_step": 1e6 * self.seconds / max(self.steps, 1),
            "warm_up_seconds": self.warm_up,
        }


def rebuilt(version: Path, *, xla: bool, precompute: bool, max_batch_size: int = 0):
    """The export's weights in a fresh `parse_text` built by this zoo (needs zoo).

    `xla`: `decode.xla`; `precompute`: `decode.precompute`, the decoder's input
    projections computed once per sentence (`AttentionDecoder.decoding_step`);
    `max_batch_size`: `decode.max_batch_size`, larger batches searched sorted
    by length in groups of that many sentences.
    """
    import tensorflow as tf

    from zoo.config import load_recipe
    from zoo.finetune import load_base
    from zoo.tasks.parsing.task import Parser

    base = load_base(version)
    recipe = load_recipe(str(version / "assets.extra/recipe.yaml"))
    recipe["decode"].update(xla=xla, precompute=precompute, max_batch_size=max_batch_size)
    parser = Parser(base.model, base.tokenizers["source"], base.tokenizers["target"], recipe)
    # Traced for any batch, as the export's signature is.
    function = tf.function(
        parser.parse_text,
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ],
    )
    return lambda sentence, beam_size, max_length: function(sentence, beam_size, max_length)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("export", help="saved_models/<name> or a version folder")
    parser.add_argument("--file", help="sentences to parse, one a line (default: the test split)")
    parser.add_argument("--sentences", type=int, default=256, help="how many to time")
    parser.add_argument("--beam-size", type=int, help="the beam row (default: the recipe's)")
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument(
        "--without-xla", action="store_true", help="also time the same weights without XLA"
    )
    parser.add_argument(
        "--precompute",
        action="store_true",
        help="also time the same weights rebuilt with decode.precompute false and true, "
        "both with XLA",
    )
    parser.add_argument(
        "--max-batch-size",
        default="",
        help="comma-separated decode.max_batch_size values to rebuild the weights with "
        "(XLA; 0: the whole batch in one search)",
    )
    parser.add_argument(
        "--compare",
        metavar="EXPORT",
        action="append",
        default=[],
        help="another parser's export (an earlier recipe's, say), timed in the same run "
        "on the same sentences; may be given more than once",
    )
    parser.add_argument("--sorted", action="store_true", help="batch sentences of similar length")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed passes of each, interleaved; the fastest is reported",
    )
    args = parser.parse_args(argv)

    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

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
    if args.sorted:
        sentences.sort(key=lambda s: len(s.split()))
    decode = model.recipe["decode"]
    beams = sorted({1, args.beam_size or int(decode["beam_size"])})
    max_length = int(decode["max_length"])
    words = sum(len(s.split()) for s in sentences)
    print(
        f"{model.path}: {len(sentences)} sentences, {words / len(sentences):.1f} words on "
        f"average{', sorted by length' if args.sorted else ''}, {os.cpu_count()} CPU cores, "
        f"decode.xla {bool(decode.get('xla', False))}"
    )
    # name -> (parse function, its decode.max_batch_size: how its search counts steps)
    export = model.saved_model.signatures["parse_options"]
    parsers = {"export": (export, int(decode.get("max_batch_size", 0)))}
    if args.precompute:
        parsers["plain step"] = (rebuilt(Path(model.path), xla=True, precompute=False), 0)
        parsers["projected"] = (rebuilt(Path(model.path), xla=True, precompute=True), 0)
    for size in [int(n) for n in args.max_batch_size.split(",") if n]:
        ways = (False, True) if args.precompute else (bool(decode.get("precompute", False)),)
        for precompute in ways:
            name = f"groups of {size}" if size else "whole batch"
            name += ", projected" if precompute and args.precompute else ""
            parse = rebuilt(Path(model.path), xla=True, precompute=precompute, max_batch_size=size)
            parsers[name] = (parse, size)
    for number, path in enumerate(args.compare, 1):
        other = zoo.load(path)
        if other.task != "parsing":
            raise SystemExit(f"{path} is a {other.task} model, not a parser")
        name = "compared" if len(args.compare) == 1 else f"compared {number}"
        print(f"{name}: {other.path}")
        parsers[name] = (
            other.saved_model.signatures["parse_options"],
            int(other.recipe["decode"].get("max_batch_size", 0)),
        )
    if args.without_xla:
        parsers["without XLA"] = (rebuilt(Path(model.path), xla=False, precompute=False), 0)

    timings = []
    for name, (parse, group) in parsers.items():
        for beam in beams:
            for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
                timing = Timing(parse, sentences, batch_size, beam, max_length, group)
                timings.append((name, beam, batch_size, timing))
                print(
                    f"{name:12s} {'greedy' if beam == 1 else f'beam {beam}':7s} "
                    f"batch {batch_size:3d}: warm-up pass {timing.warm_up:.1f} s",
                    flush=True,
                )
    for _ in range(args.repeats):
        for *_, timing in timings:
            timing.timed_pass()
    rows = [(name, beam, size, timing.figures()) for name, beam, size, timing in timings]
    for name, beam, batch_size, figures in rows:
        print(
            f"{name:12s} {'greedy' if beam == 1 else f'beam {beam}':7s} "
            f"batch {batch_size:3d}: {figures['sentences_per_second']:7.1f} sentences/s, "
            f"{figures['ms_per_batch']:8.1f} ms per batch, "
            f"{figures['us_per_step']:7.0f} µs per step"
        )
    print("\n| parser | decoding | batch | sentences/s | µs per step |")
    print("|---|---|---|---|---|")
    for name, beam, batch_size, figures in rows:
        print(
            f"| {name} | {'greedy' if beam == 1 else f'beam {beam}'} | {batch_size} | "
            f"{figures['sentences_per_second']:.1f} | {figures['us_per_step']:.0f} |"
        )
    speeds = {(n, b, s): f["sentences_per_second"] for n, b, s, f in rows}
    for name in parsers:
        if len(beams) == 2 and (name, 1, 64) in speeds:
            ratio = speeds[(name, 1, 64)] / speeds[(name, beams[1], 64)]
            print(f"{name}, batch 64: beam {beams[1]} is {ratio:.2f}x slower than greedy")
    print("reference: Vinyals et al. 2015, over 100 sentences/s (CPU, unoptimised)")


if __name__ == "__main__":
    main()
