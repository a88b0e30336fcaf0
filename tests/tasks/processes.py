"""Running the `zoo` command and plain-TensorFlow scripts in child processes, for the task tests."""

import os
import subprocess
import sys


def run_zoo(*args, cwd) -> subprocess.CompletedProcess:
    """`python -m zoo.cli ARGS` in `cwd`; stdout and stderr captured as text."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "zoo.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_python(script: str, cwd) -> subprocess.CompletedProcess:
    """`python -c SCRIPT` in `cwd`, with no PYTHONPATH (the checkout is not importable from it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def call_zoo(capsys, monkeypatch, *args, cwd) -> subprocess.CompletedProcess:
    """`zoo ARGS` in this process (no interpreter start-up), in `cwd`; output captured.

    For the CLI's argument handling and error messages; `run_zoo` keeps the
    tests that need a real process (exit status, what gets imported).
    """
    from zoo import cli

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)
