"""How the treebank parser grows with data: F1 after the same budget on 250, 500, 1,000, all trees.

    python benchmarks/parsing_learning_curve.py                    # the recipe's 20 minutes each
    python benchmarks/parsing_learning_curve.py --minutes 5 --sizes 250,1000
    python benchmarks/parsing_learning_curve.py --set data.path=treebank_3/parsed/mrg/wsj ...

Each row is `zoo run recipes/parsing_ptb.yaml`, run as a user runs it, in a
subprocess, with `data.train_size=N` (N training trees drawn with the
recipe's seed; a smaller size's trees are a subset of a larger's) and
nothing else changed: the same held-out validation and test files, the same
training budget. The row "all" is the shipped recipe unchanged. Figures are
read from each export's `metrics.json` (labelled bracket F1 of the exported
parser on the test files, beam search, constrained). Prints the table and,
for the full WSJ (39,832 training trees), the F1 the fitted line
F1 = a + b * log10(trees) would predict, then draws the curve (`--out`).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/parsing_ptb.yaml"
FULL_WSJ = 39_832  # training trees of sections 02-21


def _run(size: str, workdir: Path, minutes: float | None, extra: list[str]) -> dict:
    """One row; a row whose export is already in `workdir` is read, not trained again."""
    folder = workdir / f"trees-{size}"
    log = folder / "zoo-run.log"
    done = list(folder.glob("saved_models/*/1/assets.extra/metrics.json"))
    if done:
        return _row(done[0], log)
    sets = [f"export.dir={folder / 'saved_models'}", f"run.dir={folder / 'runs'}", *extra]
    if size != "all":
        sets.append(f"data.train_size={size}")
    if minutes is not None:
        sets.append(f"train.max_minutes={minutes}")
    command = [sys.executable, "-m", "zoo.cli", "run", str(RECIPE)]
    command += [item for key in sets for item in ("--set", key)]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"training on {size} trees: {' '.join(command[2:])} (log: {log})", flush=True)
    with open(log, "w", encoding="utf-8") as out:
        subprocess.run(command, cwd=ROOT, check=True, stdout=out, stderr=subprocess.STDOUT)
    (metrics_path,) = folder.glob("saved_models/*/1/assets.extra/metrics.json")
    return _row(metrics_path, log)


def _row(metrics_path: Path, log: Path) -> dict:
    metrics = json.loads(metrics_path.read_text())
    trained = next(
        int(line.split()[1])
        for line in log.read_text(encoding="utf-8").splitlines()
        if line.startswith("data: ") and " train, " in line
    )
    return {"trees": trained, **metrics}


def fit_log_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares `F1 = a + b * log10(trees)`."""
    xs = [math.log10(n) for n, _ in points]
    ys = [f for _, f in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs) or 1.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return mean_y - slope * mean_x, slope


def plot(rows: list[dict], line: tuple[float, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    trees = [r["trees"] for r in rows]
    axes.plot(trees, [r["f1"] for r in rows], "o-", label="test F1 (beam, constrained)")
    grid = [min(trees), FULL_WSJ]
    axes.plot(
        grid,
        [line[0] + line[1] * math.log10(n) for n in grid],
        "--",
        color="gray",
        label="log-linear fit",
    )
    axes.set_xscale("log")
    axes.set_xlabel("training trees")
    axes.set_ylabel("labelled bracket F1")
    axes.set_title("parsing_ptb.yaml: F1 by training trees, same budget")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000,all", help="training trees per row")
    parser.add_argument("--minutes", type=float, help="budget of each row (default: the recipe's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="applied to every row (another treebank folder, say)",
    )
    parser.add_argument(
        "--workdir",
        help="where the runs and exports go (default: a temp dir); rows already there are "
        "read, not trained again",
    )
    parser.add_argument("--out", default="parsing_learning_curve.png")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="parsing_learning_curve-"))
    rows = []
    for size in args.sizes.split(","):
        row = _run(size.strip(), workdir, args.minutes, args.set)
        rows.append(row)
        print(
            f"{row['trees']:6d} trees: F1 {row['f1']:.2f} (precision {row['precision']:.2f}, "
            f"recall {row['recall']:.2f}), well-formed {row['well_formed']:.0f}%, "
            f"{row['epochs']} epochs in {row['train_seconds']:.0f} s",
            flush=True,
        )
    rows.sort(key=lambda row: row["trees"])
    print("\n| training trees | test F1 | exact match | epochs | training seconds |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['trees']:,} | {row['f1']:.2f} | {row['exact_match']:.1f}% | "
            f"{row['epochs']} | {row['train_seconds']:.0f} |"
        )
    if len(rows) >= 2:
        line = fit_log_line([(r["trees"], r["f1"]) for r in rows])
        predicted = line[0] + line[1] * math.log10(FULL_WSJ)
        print(
            f"\nfit: F1 = {line[0]:.1f} + {line[1]:.1f} * log10(trees); "
            f"+{line[1] * math.log10(2):.1f} F1 per doubling. At the full WSJ's "
            f"{FULL_WSJ:,} trees it predicts F1 {min(predicted, 100.0):.1f} "
            "(an extrapolation: the curve flattens as F1 nears the model's ceiling)"
        )
        plot(rows, line, Path(args.out))
        print(f"curve: {args.out}")
    print(f"runs and exports: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
