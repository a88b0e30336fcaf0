"""The `zoo` command: `zoo run RECIPE`, `zoo predict EXPORT INPUT...`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_run(args) -> int:
    from zoo.config import RecipeError, dump_recipe, load_recipe, save_recipe

    try:
        recipe = load_recipe(args.recipe, args.set or ())
    except (RecipeError, FileNotFoundError) as error:
        print(f"zoo run: {error}", file=sys.stderr)
        return 2
    print("# resolved recipe")
    print(dump_recipe(recipe))
    run_dir = Path(recipe["run"]["dir"]) / recipe["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, run_dir / "recipe.yaml")
    print(f"# saved to {run_dir / 'recipe.yaml'}")

    from zoo.data.translation_readers import DataFormatError
    from zoo.data.treebank import TreebankFormatError
    from zoo.tasks import get_task

    try:
        result = get_task(recipe["task"]).run(recipe)
    except (FileNotFoundError, FileExistsError, DataFormatError, TreebankFormatError) as error:
        # Problems with the user's files, found once reading starts (empty
        # file, too few pairs, an export version that exists): no traceback.
        print(f"zoo run: {error}", file=sys.stderr)
        return 2
    print(f"# exported to {result['export_dir']}")
    return 0


def cmd_predict(args) -> int:
    import zoo

    try:
        model = zoo.load(args.export, args.version)
    except (FileNotFoundError, ValueError) as error:
        print(f"zoo predict: {error}", file=sys.stderr)
        return 2
    inputs = list(args.inputs)
    if args.file:
        inputs += Path(args.file).read_text(encoding="utf-8").splitlines()
    if not inputs:
        print("zoo predict: give at least one input (or --file)", file=sys.stderr)
        return 2
    for name in ("beam_size", "max_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(
                f"zoo predict: --{name.replace('_', '-')} must be >= 1, got {value}",
                file=sys.stderr,
            )
            return 2
    try:
        results = model(inputs, beam_size=args.beam_size, max_length=args.max_length)
    except (FileNotFoundError, ValueError) as error:  # a missing or undecodable image
        print(f"zoo predict: {error}", file=sys.stderr)
        return 2
    for i, result in enumerate(results):
        if args.json:
            payload = {"source": inputs[i], "text": result.text, "tokens": result.tokens}
            if model.task == "parsing":
                payload["linearized"] = result.linearized
            payload["score"] = result.score
            print(json.dumps(payload, ensure_ascii=False))
        else:
            print(result.text)
            if model.task == "parsing" and result.tokens:
                print(result.draw())
        if args.plot and not result.tokens:
            print(f"# no attention plot for input {i + 1}: the output is empty", file=sys.stderr)
        elif args.plot:
            path = Path(args.plot)
            if len(results) > 1:
                path = path.with_name(f"{path.stem}_{i}{path.suffix}")
            title = Path(inputs[i]).name if model.task == "captioning" else inputs[i]
            zoo.plot_attention(result, path, title=title)
            print(f"# attention plot: {path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train, evaluate and export what a recipe describes")
    run.add_argument("recipe", help="a YAML recipe, e.g. recipes/translation.yaml")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. train.epochs=3",
    )
    run.set_defaults(func=cmd_run)

    predict = sub.add_parser("predict", help="run an exported model on inputs")
    predict.add_argument("export", help="saved_models/<name> (newest version) or a version folder")
    predict.add_argument(
        "inputs",
        nargs="*",
        help="sentences to translate or parse (parsing: words split by spaces), "
        "or image files to caption",
    )
    predict.add_argument("--file", help="read inputs from a file, one per line")
    predict.add_argument("--version", type=int, help="the version to load (default: newest)")
    predict.add_argument("--beam-size", type=int, help="beam width (default: the recipe's)")
    predict.add_argument("--max-length", type=int, help="longest output (default: the recipe's)")
    predict.add_argument(
        "--plot",
        help="write the attention to this PNG (a heatmap; captioning: the image under each "
        "word's attention)",
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per input")
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv=None) -> int:
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
