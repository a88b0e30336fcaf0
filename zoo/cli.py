"""The `zoo` command: `zoo run RECIPE`, `zoo predict EXPORT INPUT...`, `zoo finetune`, `zoo evaluate`, `zoo inspect`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

# What TensorFlow prints while it starts on a machine without a GPU: not
# the user's business (their level cannot be set before absl starts logging).
_START_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} .*\b(port|cudart_stub|cpu_feature_guard|cuda_executor|cuda_dnn|cuda_fft"
    r"|cuda_blas|cuda_diagnostics|computation_placer)\.cc:\d+\]"
    r"|E\d{4} .*\bfailed call to cuInit\b"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate"
    r")"
)


def _quiet_tensorflow(debug: bool = False) -> None:
    """Starts TensorFlow with its start-up chatter filtered out of stderr (all of it kept with --debug).

    TensorFlow prints informational lines (oneDNN, CPU instructions) and,
    on a machine without a GPU, an error line for the failed `cuInit`, from
    C++ before any logging setting applies. They are caught on the file
    descriptor while TensorFlow imports and finds its devices, and every
    other line is passed on.
    """
    # Level 3 also hides C++ error lines such as oneDNN's "supports DT_INT64
    # only on platforms with AVX-512": real errors reach Python as exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "3")
    if debug or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf
            import tensorflow_text  # noqa: F401  (loads its kernels: more start-up lines)

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [
                line
                for line in caught.read().decode("utf-8", "replace").splitlines()
                if not _START_NOISE.match(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr)


class UserError(Exception):
    """A mistake in what the user gave (a file, an option): said in one line, exit 2."""


def _user_errors() -> tuple[type[Exception], ...]:
    """Problems with the user's recipe, files, data or exports: one line and exit 2."""
    from zoo.config import RecipeError
    from zoo.data.translation_readers import DataFormatError
    from zoo.finetune import FinetuneError
    from zoo.run_lock import RunFolderBusy
    from zoo.security import ExportError
    from zoo.tasks import get_task, task_names
    from zoo.training import TrainingError

    task_errors = [e for name in task_names() for e in get_task(name).user_errors]
    # FileExistsError: an export version that exists; DataFormatError: data the
    # readers cannot use; FinetuneError: data the base model cannot be
    # fine-tuned on; ValueError: a value the library refused.
    return (
        UserError,
        RecipeError,
        OSError,
        DataFormatError,
        FinetuneError,
        ExportError,
        RunFolderBusy,
        TrainingError,
        UnicodeDecodeError,
        ValueError,
        *task_errors,
    )


def _one_line(error: BaseException) -> str:
    """An exception as one line: its message, or its kind when it has none."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    text = str(error).strip()
    if isinstance(error, KeyError) and text.startswith("'"):
        text = f"missing key {text}"
    return text or type(error).__name__


def _train(recipe: dict, command: str, trust: bool = False) -> int:
    """Prints and saves the resolved recipe, then trains (or fine-tunes) and exports."""
    from zoo.config import dump_recipe, run_folder, save_recipe
    from zoo.run_lock import RunLock

    print("# resolved recipe")
    print(dump_recipe(recipe))
    run_dir = run_folder(recipe)
    # Taken before anything is written: a second run of the recipe stops here.
    with RunLock(run_dir):
        save_recipe(recipe, run_dir / "recipe.yaml")
        print(f"# saved to {run_dir / 'recipe.yaml'}")

        from zoo import runner

        result = runner.run(recipe, trust=trust)
    print(f"# exported to {result['export_dir']}")
    return 0


def cmd_run(args) -> int:
    from zoo.config import load_recipe

    return _train(load_recipe(args.recipe, args.set or ()), "run", args.trust)


def _export_recipe(args, command: str) -> dict:
    """The recipe of `zoo finetune` / `zoo evaluate`: the export's, with --data and --set."""
    from zoo.config import read_base_recipe, resolve_recipe

    init_from = args.export if args.version is None else str(Path(args.export) / str(args.version))
    raw: dict = {"init_from": init_from}
    if args.data:
        from zoo.tasks import get_task

        task = get_task(read_base_recipe(init_from, source="")["recipe"]["task"])
        raw["data"] = task.data_section(args.data, args.format, command)
    elif args.format:
        raise UserError("--format describes --data: give the data too")
    # No source: the message already starts with "zoo <command>:".
    return resolve_recipe(raw, args.set or (), source="")


def cmd_finetune(args) -> int:
    return _train(_export_recipe(args, "finetune"), "finetune", args.trust)


def cmd_evaluate(args) -> int:
    recipe = _export_recipe(args, "evaluate")
    from zoo.runner import evaluate_export

    split = args.split or ("all" if args.data else "test")
    metrics = evaluate_export(recipe, split=split, trust=args.trust)
    version = Path(metrics["export"]).name
    output = Path(
        args.output or Path(recipe["run"]["dir"]) / recipe["name"] / f"evaluate-v{version}.json"
    )
    from zoo.atomic_file import write_atomically

    text = json.dumps(metrics, indent=2, default=float) + "\n"
    if output.exists() and not output.is_file():  # /dev/stdout, a pipe
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        write_atomically(output, lambda file: file.write(text))
    print(f"# metrics written to {output}")
    return 0


def _read_lines(path: str):
    """The lines of `--file` (a path, or - for standard input), read as they are needed."""
    if path == "-":
        for number, line in enumerate(sys.stdin, 1):
            yield number, line.rstrip("\n").rstrip("\r")
        return
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UserError(
                    f"--file {path}, line {number}: not UTF-8 text (byte "
                    f"{raw[error.start]:#04x}); convert it, e.g. iconv -f latin1 -t utf-8"
                ) from None
            yield number, line.rstrip("\n").rstrip("\r")


def _check_file(path: str) -> None:
    if path == "-":
        return
    if os.path.isdir(path):
        raise UserError(f"--file {path} is a folder; give a text file, one input per line")
    if not os.path.exists(path):
        raise UserError(f"--file {path}: no such file")
    if not os.access(path, os.R_OK):
        raise UserError(f"--file {path}: permission denied")


def _count_lines(path: str) -> int | None:
    """The lines of a regular file (a pipe cannot be read twice: None)."""
    import stat

    if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
        return None
    count, last = 0, b"\n"
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            count, last = count + chunk.count(b"\n"), chunk[-1:]
    return count + (last != b"\n")  # a last line without its newline counts too


class _Progress:
    """`# predict: 1,024/20,000 inputs (5%), 130/s` on stderr: redrawn on a terminal, else every 10%."""

    def __init__(self, total: int | None):
        import time

        self.total, self.done, self.started, self.shown = total, 0, time.time(), 0.0
        self.reported = 0
        self.tty = sys.stderr.isatty()

    def add(self, count: int = 1, final: bool = False) -> None:
        import time

        self.done += count
        if final and self.done == self.reported and not self.tty:
            return
        now = time.time()
        share = self.done / self.total if self.total else None
        if self.tty:
            if now - self.shown < 0.5 and not final:
                return
        elif share is None or not final and int(share * 10) == int(self.shown * 10):
            return
        self.shown = now if self.tty else (share or 0.0)
        self.reported = self.done
        rate = self.done / max(now - self.started, 1e-9)
        total = f"/{self.total:,} inputs ({share:.0%})" if self.total else " inputs"
        end = "\r" if self.tty and not final else "\n"
        print(f"# predict: {self.done:,}{total}, {rate:,.0f}/s", end=end, file=sys.stderr)


def cmd_predict(args) -> int:
    import collections
    import itertools

    import zoo

    for name in ("beam_size", "max_length", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not args.file and not args.inputs:
        raise UserError("give inputs to predict, or --file with one input per line")
    inputs = iter(args.inputs)
    progress = None
    if args.file:
        _check_file(args.file)
        lines = (text for _, text in _read_lines(args.file))
        inputs = itertools.chain(inputs, lines)
        counted = _count_lines(args.file)
        if counted is not None and counted >= PROGRESS_FROM:
            progress = _Progress(len(args.inputs) + counted)
    sources: collections.deque = collections.deque()

    def read():  # the inputs as the model reads them, remembered until printed
        for text in inputs:
            sources.append(text)
            yield text

    model = zoo.load(args.export, args.version, trust=args.trust)
    options = {"beam_size": args.beam_size, "max_length": args.max_length}
    printed = 0
    for result in model.stream(read(), batch_size=args.batch_size, **options):
        _print_result(args, result, sources.popleft(), printed)
        printed += 1
        if progress:
            progress.add()
    if progress:
        progress.add(0, final=True)
    if not printed:
        raise UserError(f"--file {args.file} is empty: nothing to predict")
    return 0


PROGRESS_FROM = 200
"""`zoo predict --file` shows progress from this many lines on."""


def _print_result(args, result, source: str, i: int) -> None:
    import zoo

    if args.json:
        print(json.dumps({"source": source, **result.to_json()}, ensure_ascii=False), flush=True)
    else:
        print(result.display(), flush=True)
    if args.plot and not result.tokens:
        print(f"# no attention plot for input {i + 1}: the output is empty", file=sys.stderr)
    elif args.plot:
        path = Path(args.plot)
        if i > 0 or args.file or len(args.inputs) > 1:
            path = path.with_name(f"{path.stem}_{i}{path.suffix}")
        zoo.plot_attention(result, path, title=result.plot_title(source))
        print(f"# attention plot: {path}", file=sys.stderr)


def cmd_inspect(args) -> int:
    from zoo.security import scan_export
    from zoo.versions import resolve_export_dir

    scan = scan_export(resolve_export_dir(args.export, args.version))
    if args.json:
        payload = {
            "path": str(scan.path),
            "signatures": {k: {"inputs": i, "outputs": o} for k, (i, o) in scan.signatures.items()},
            "ops": scan.ops,
            "checkpoint_ops": scan.checkpoint_ops,
            "flagged": [vars(f) for f in scan.findings],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(scan.report())
    return 1 if scan.findings else 0


def _common() -> argparse.ArgumentParser:
    """The options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error, and TensorFlow's start-up messages",
    )
    return common


def _trust_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--trust",
        action="store_true",
        help="run an export even if its graph holds ops that touch files, processes or the "
        "network (see `zoo inspect`); only for exports from people you trust",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_common()]

    run = sub.add_parser(
        "run", parents=common, help="train, evaluate and export what a recipe describes"
    )
    run.add_argument("recipe", help="a YAML recipe, e.g. recipes/translation.yaml")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. train.epochs=3",
    )
    _trust_option(run)
    run.set_defaults(func=cmd_run)

    predict = sub.add_parser("predict", parents=common, help="run an exported model on inputs")
    predict.add_argument("export", help="saved_models/<name> (newest version) or a version folder")
    predict.add_argument(
        "inputs",
        nargs="*",
        help="sentences to translate or parse (parsing: words split by spaces), "
        "or image files to caption",
    )
    predict.add_argument(
        "--file", help="read inputs from a file, one per line (- for standard input)"
    )
    predict.add_argument("--version", type=int, help="the version to load (default: newest)")
    predict.add_argument("--beam-size", type=int, help="beam width (default: the recipe's)")
    predict.add_argument("--max-length", type=int, help="longest output (default: the recipe's)")
    predict.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="inputs decoded at once (default: 64); memory stays flat whatever the file's size",
    )
    predict.add_argument(
        "--plot",
        help="write the attention to this PNG (a heatmap; captioning: the image under each "
        "word's attention)",
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per input")
    _trust_option(predict)
    predict.set_defaults(func=cmd_predict)

    inspect = sub.add_parser(
        "inspect",
        parents=common,
        help="list an export's signatures and ops, flagging those that touch files, processes "
        "or the network (exit 1 when any is flagged); nothing of it runs",
    )
    inspect.add_argument("export", help="saved_models/<name> (newest version) or a version folder")
    inspect.add_argument("--version", type=int, help="the version to inspect (default: newest)")
    inspect.add_argument("--json", action="store_true", help="the scan as JSON")
    inspect.set_defaults(func=cmd_inspect)

    for name, help_text in (
        ("finetune", "train an export further on new data; writes the next version"),
        ("evaluate", "score an export on data (its test split, or --data)"),
    ):
        command = sub.add_parser(name, parents=common, help=help_text)
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
        _trust_option(command)
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


WARNINGS_SHOWN = 20
"""Warnings a command prints (one line each) before it only counts them."""


def main(argv=None) -> int:
    """Runs a `zoo` command; a user's mistake is one line on stderr and exit 2.

    Anything else is one line too, with exit 1 and a pointer to `--debug`,
    which shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    _quiet_tensorflow(args.debug)
    if args.debug:
        return args.func(args)
    import warnings

    from zoo.tasks.base import TruncationWarning

    said = [0]

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        said[0] += 1
        if said[0] <= WARNINGS_SHOWN:
            print(f"zoo {args.command}: warning: {message}", file=sys.stderr)

    shown, warnings.showwarning = warnings.showwarning, one_line_warning
    try:
        with warnings.catch_warnings():
            # "always": not remembered per message, so memory stays flat on long files.
            warnings.simplefilter("always", TruncationWarning)
            code = args.func(args)
        if said[0] > WARNINGS_SHOWN:
            print(
                f"zoo {args.command}: {said[0] - WARNINGS_SHOWN:,} more warnings not shown "
                f"({said[0]:,} in all)",
                file=sys.stderr,
            )
        return code
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        print(f"zoo {args.command}: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug: say it in one line, the traceback behind --debug
        print(
            f"zoo {args.command}: unexpected {type(error).__name__}: {_one_line(error)} "
            "(run again with --debug for the traceback, and report it)",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
