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
