"""Peak memory and time of `zoo predict --file` on a big file: streamed batches against one batch.

`zoo predict` once sent the whole file to the signature as one batch (20,000
short lines took 7.5 GB and printed nothing in 9 minutes). It now reads the
file as it goes and decodes `--batch-size` lines at a time. This writes a
file of short sentences in the export's source language (words drawn from
its vocabulary, seeded), runs `zoo predict --file` in a child process under
`/usr/bin/time -v` (its "Maximum resident set size" is the figure), checks
that every line was printed, and prints a table:

- streamed: `--batch-size 64` (the default) on `--lines` lines;
- one batch: `--batch-size` equal to the number of lines on
  `--reference-lines` lines (the old behaviour; keep it small, it grows
  with the file).

    python benchmarks/predict_memory.py saved_models/translation
    python benchmarks/predict_memory.py saved_models/translation --lines 20000 --reference-lines 1000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_lines(export: str, count: int, path: Path, seed: int = 0) -> None:
    """`count` sentences of 3-12 words from the export's source vocabulary (or plain words)."""
    from zoo.versions import resolve_export_dir

    version = resolve_export_dir(export)
    vocab_file = version / "assets.extra" / "source_vocab.txt"
    words = []
    if vocab_file.exists():
        words = [w for w in vocab_file.read_text(encoding="utf-8").split() if w.isalpha()]
    words = words[:2000] or "the old dog saw a big cat near the red house".split()
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as file:
        for _ in range(count):
            file.write(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + " .\n")


def measure(export: str, path: Path, count: int, batch_size: int) -> dict:
    """Runs `zoo predict --file` under `/usr/bin/time -v`; seconds, peak MB, lines printed."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "zoo.cli",
        "predict",
        export,
        "--file",
        str(path),
        "--batch-size",
        str(batch_size),
    ]
    started = time.time()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"zoo predict failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    printed = len(proc.stdout.splitlines())
    if printed != count:
        raise SystemExit(f"zoo predict printed {printed} lines for {count} inputs")
    return {
        "lines": count,
        "batch": batch_size,
        "seconds": seconds,
        "peak_mb": int(peak.group(1)) / 1024 if peak else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export", help="saved_models/<name> or a version folder")
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--reference-lines", type=int, default=1000)
    args = parser.parse_args()
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("needs /usr/bin/time (GNU time) for the peak memory")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, count, batch in (
            ("one batch (the old zoo predict)", args.reference_lines, args.reference_lines),
            ("streamed, --batch-size 64", args.reference_lines, 64),
            ("streamed, --batch-size 64", args.lines, 64),
        ):
            path = Path(folder) / f"lines-{count}.txt"
            if not path.exists():
                write_lines(args.export, count, path)
            rows.append((label, measure(args.export, path, count, batch)))
            print(f"# done: {label}, {count} lines", file=sys.stderr)
    print(f"{'how':34} {'lines':>7} {'seconds':>8} {'lines/s':>8} {'peak MB':>8}")
    for label, row in rows:
        rate = row["lines"] / row["seconds"]
        print(
            f"{label:34} {row['lines']:>7,} {row['seconds']:>8.1f} {rate:>8.1f} "
            f"{row['peak_mb']:>8.0f}"
        )
    print("target: every line printed, peak under 2,048 MB at 20,000 lines")


if __name__ == "__main__":
    main()
