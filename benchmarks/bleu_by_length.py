"""BLEU by source length, with and without attention (Bahdanau et al. 2015, Figure 2).

Trains `recipes/translation.yaml` and `recipes/translation_no_attention.yaml`
with the same data and budget, decodes each test split, and prints BLEU per
source-length bucket for both, plus a PNG of the two curves.

    python benchmarks/bleu_by_length.py
    python benchmarks/bleu_by_length.py --set train.epochs=4 --out bleu_by_length.png
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import runner
from zoo.config import load_recipe  # noqa: E402
from zoo.plots import plot_bleu_by_length  # noqa: E402

RECIPES = {
    "attention": "recipes/translation.yaml",
    "no attention": "recipes/translation_no_attention.yaml",
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="applied to both recipes"
    )
    parser.add_argument("--out", default="bleu_by_length.png")
    parser.add_argument(
        "--workdir", default=None, help="runs and exports go here (default: a temporary folder)"
    )
    args = parser.parse_args(argv)

    workdir = args.workdir or tempfile.mkdtemp(prefix="bleu_by_length-")
    series, totals = {}, {}
    for label, path in RECIPES.items():
        recipe = load_recipe(
            path, [*args.set, f"export.dir={workdir}/saved_models", f"run.dir={workdir}/runs"]
        )
        print(f"== {label}: {path} {' '.join(args.set)}", flush=True)
        result = runner.train(recipe, log=lambda line: print(f"   {line}", flush=True))
        series[label] = result["metrics"]["bleu_by_length"]
        totals[label] = result["metrics"]["bleu"]

    buckets = [b["bucket"] for b in series["attention"]]
    print("\nBLEU by source length (words)")
    print(f"{'bucket':>8} " + " ".join(f"{label:>14}" for label in series))
    for i, bucket in enumerate(buckets):
        cells = []
        for label in series:
            b = series[label][i]
            cells.append(f"{b['bleu']:>8.1f} ({b['count']:>3})" if b["count"] else f"{'-':>14}")
        print(f"{bucket:>8} " + " ".join(cells))
    print(f"{'all':>8} " + " ".join(f"{totals[label]:>14.1f}" for label in series))

    def drop(label):
        filled = [b for b in series[label] if b["count"]]
        return filled[0]["bleu"] - filled[-1]["bleu"], filled[0]["bucket"], filled[-1]["bucket"]

    drops = {label: drop(label) for label in series}
    for label, (value, first, last) in drops.items():
        print(f"{label}: BLEU drop from bucket {first} to {last}: {value:.1f}")
    extra = drops["no attention"][0] - drops["attention"][0]
    print(f"the no-attention model loses {extra:.1f} BLEU more than the attention model")
    plot_bleu_by_length(series, args.out, title="BLEU by source length")
    print(f"figure: {args.out}")
    print(json.dumps({"series": series, "totals": totals, "extra_drop": extra}))


if __name__ == "__main__":
    main()
