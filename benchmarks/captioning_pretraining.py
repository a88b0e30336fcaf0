"""What ImageNet pretraining is worth: the Flickr8k recipe with and without it, same minutes.

    python benchmarks/captioning_pretraining.py                 # 20 minutes at most each
    python benchmarks/captioning_pretraining.py --minutes 5     # a quicker look
    python benchmarks/captioning_pretraining.py --coco ../shared/data/captioning/coco/captions_sample.json

Both rows are `zoo run recipes/captioning_flickr8k.yaml`, run as a user runs
it, in a subprocess: the shipped recipe (EfficientNet-Lite0 with ImageNet
weights, frozen, features cached), and the same recipe with
`model.encoder.weights=null` (the CNN trains from scratch with the decoder,
on images decoded once, for the same budget). Their figures are read from
each export's `metrics.json`: BLEU-1..4, CIDEr-D and ROUGE-L of the exported
model's captions of the same 100 test photos.

With `--coco CAPTIONS_JSON` (an instances JSON beside it), each export is
also evaluated there with `zoo evaluate`, and the attention's pointing on the
COCO boxes is printed beside its centre-cell and random-cell baselines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/captioning_flickr8k.yaml"
ROWS = {"pretrained (the recipe)": [], "from scratch": ["model.encoder.weights=null"]}


def _zoo(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "zoo.cli", *args], cwd=ROOT, check=True)


def _run(name: str, overrides: list[str], workdir: Path, minutes: float | None) -> Path:
    folder = workdir / name.split()[0]
    sets = [f"export.dir={folder / 'saved_models'}", f"run.dir={folder / 'runs'}", *overrides]
    if minutes is not None:
        sets.append(f"train.max_minutes={minutes}")
    _zoo("run", str(RECIPE), *[item for key in sets for item in ("--set", key)])
    return folder / "saved_models/captioning_flickr8k/1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="the training budget of each row")
    parser.add_argument("--coco", help="a COCO captions JSON to score the attention on")
    parser.add_argument("--workdir", help="where the runs and exports go (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="captioning_pretraining-"))
    table = []
    for name, overrides in ROWS.items():
        export = _run(name, overrides, workdir, args.minutes)
        metrics = json.loads((export / "assets.extra/metrics.json").read_text())
        row = {"row": name, **{k: metrics[k] for k in ("bleu_1", "bleu_4", "cider", "rouge_l")}}
        row["train_seconds"], row["epochs"] = metrics["train_seconds"], metrics["epochs"]
        if args.coco:
            output = export.parent / "coco.json"
            _zoo("evaluate", str(export), "--data", args.coco, "--output", str(output))
            coco = json.loads(output.read_text())
            row["pointing"] = (
                coco["object_pointing_accuracy"],
                coco["object_pointing_centre_baseline"],
                coco["object_pointing_uniform_baseline"],
                coco["object_pointing_words"],
            )
        table.append(row)
    print("\n| encoder | BLEU-1 | BLEU-4 | CIDEr-D | ROUGE-L | training s | epochs |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['row']} | {row['bleu_1']:.3f} | {row['bleu_4']:.3f} | {row['cider']:.3f} | "
            f"{row['rouge_l']:.3f} | {row['train_seconds']:.0f} | {row['epochs']} |"
        )
    if args.coco:
        print("\n| encoder | pointing on COCO boxes | centre cell | random cell | words |")
        print("|---|---|---|---|---|")
        for row in table:
            accuracy, centre, uniform, words = row["pointing"]
            print(f"| {row['row']} | {accuracy:.3f} | {centre:.3f} | {uniform:.3f} | {words} |")
    print(f"\n# runs and exports in {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
