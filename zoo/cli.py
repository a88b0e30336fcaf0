"""The `zoo` command: `zoo run RECIPE`, `zoo predict EXPORT INPUT...`, `zoo finetune`, `zoo evaluate`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _user_errors(task: str) -> tuple[type[Exception], ...]:
    """Problems with the user's recipe, files or exports: a message and exit 2, no traceback."""
    from zoo.config import RecipeError
    from zoo.data.translation_readers import DataFormatError
    from zoo.finetune import FinetuneError
    from zoo.tasks import get_task

    # FileExistsError: an export version that exists; DataFormatError: data
    # the readers cannot use; FinetuneError: data the base model cannot be
    # fine-tuned on; the task's own: what its own readers raise.
    return (
        RecipeError,
        FileNotFoundError,
        FileExistsError,
        DataFormatError,
        FinetuneError,
        *get_task(task).user_errors,
    )


def _train(recipe: dict, command: str) -> int:
    """Prints and saves the resolved recipe, then trains (or fine-tunes) and exports."""
    from zoo.config import dump_recipe, run_folder, save_recipe

    print("# resolved recipe")
    print(dump_recipe(recipe))
    run_dir = run_folder(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, run_dir / "recipe.yaml")
    print(f"# saved to {run_dir / 'recipe.yaml'}")

    from zoo import runner

    try:
        result = runner.run(recipe)
    except _user_errors(recipe["task"]) as error:
        print(f"zoo {command}: {error}", file=sys.stderr)
        return 2
    print(f"# exported to {result['export_dir']}")
    return 0


def cmd_run(args) -> int:
    from zoo.config import RecipeError, load_recipe

    try:
        recipe = load_recipe(args.recipe, args.set or ())
    except (RecipeError, FileNotFoundError) as error:
        print(f"zoo run: {error}", file=sys.stderr)
        return 2
    return _train(recipe, "run")


def _export_recipe(args, command: str) -> dict | None:
    """The recipe of `zoo finetune` / `zoo evaluate`: the export's, with --data and --set."""
    from zoo.config import RecipeError, read_base_recipe, resolve_recipe

    init_from = args.export if args.version is None else str(Path(args.export) / str(args.version))
    try:
        raw: dict = {"init_from": init_from}
        if args.data:
            from zoo.tasks import get_task

            task = get_task(read_base_recipe(init_from, source="")["recipe"]["task"])
            raw["data"] = task.data_section(args.data, args.format, command)
        elif args.format:
            raise ValueError("--format describes --data: give the data too")
        # No source: the message already starts with "zoo <command>:".
        return resolve_recipe(raw, args.set or (), source="")
    except (RecipeError, ValueError) as error:
        print(f"zoo {command}: {error}", file=sys.stderr)
        return None


def cmd_finetune(args) -> int:
    recipe = _export_recipe(args, "finetune")
    return 2 if recipe is None else _train(recipe, "finetune")


def cmd_evaluate(args) -> int:
    recipe = _export_recipe(args, "evaluate")
    if recipe is None:
        return 2
    from zoo.runner import evaluate_export

    split = args.split or ("all" if args.data else "test")
    try:
        metrics = evaluate_export(recipe, split=split)
    except _user_errors(recipe["task"]) as error:
        print(f"zoo evaluate: {error}", file=sys.stderr)
        return 2
    version = Path(metrics["export"]).name
    output = Path(
        args.output or Path(recipe["run"]["dir"]) / recipe["name"] / f"evaluate-v{version}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(metrics, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"# metrics written to {output}")
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
            payload = {"source": inputs[i], **result.to_json()}
            print(json.dumps(payload, ensure_ascii=False))
        else:
            print(result.display())
        if args.plot and not result.tokens:
            print(f"# no attention plot for input {i + 1}: the output is empty", file=sys.stderr)
        elif args.plot:
            path = Path(args.plot)
            if len(results) > 1:
                path = path.with_name(f"{path.stem}_{i}{path.suffix}")
            zoo.plot_attention(result, path, title=result.plot_title(inputs[i]))
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

    for name, help_text in (
        ("finetune", "train an export further on new data; writes the next version"),
        ("evaluate", "score an export on data (its test split, or --data)"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument(
            "export", help="saved_models/<name> (newest version) or a version folder"
        )
        command.add_argument("--version", type=int, help="the version to use (default: newest)")
        command.add_argument(
            "--data",
            action="append",
            metavar="PATH",
            help="the data: a TSV of pairs (or --data SOURCES --data TARGETS), a treebank "
            "folder or .mrg file, a Flickr8k token file or captions.txt, a COCO or Karpathy JSON "
            "(an instances JSON beside a COCO captions file scores the attention on its boxes)",
        )
        command.add_argument(
            "--format",
            help="the data's format, one the model's task reads: e.g. tsv, parallel, "
            "treebank, flickr8k, coco, karpathy (default: guessed from the task and the file)",
        )
        command.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a recipe key, e.g. train.epochs=3 or finetune.vocab=extend",
        )
        if name == "evaluate":
            command.add_argument(
                "--split",
                choices=("train", "validation", "test", "all"),
                help="what to score (default: all of --data; the export's test split without it)",
            )
            command.add_argument(
                "--output",
                help="where to write the metrics (default: runs/<name>/evaluate-v<N>.json)",
            )
    sub.choices["finetune"].set_defaults(func=cmd_finetune)
    sub.choices["evaluate"].set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
