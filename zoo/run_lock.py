"""One run per run folder: a lock the operating system drops when its process ends.

Two runs of one recipe would share `runs/<name>/` (its backup, checkpoint
and logs) and overwrite each other's. The first run takes the lock of the
folder (`runs/<name>/.lock`, `fcntl.flock`); a second run is refused at
once, before any work, with the process that holds it. A run killed with
`kill -9` leaves no stale lock: the kernel releases it with the process.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import os
import sys
import threading
from pathlib import Path

__all__ = ["RunFolderBusy", "RunLock", "locked_run"]

_HELD: dict[tuple, list] = {}  # (folder, thread) -> [file, depth]: a thread may nest its lock


class RunFolderBusy(RuntimeError):
    """Another process is running in the run folder."""


class RunLock(contextlib.AbstractContextManager):
    """Holds `folder/.lock` while the `with` block runs; `RunFolderBusy` if another process does.

    Re-entrant within a process (`zoo run` locks, then the runner it calls).
    The lock file says which process holds it, what it runs and since when.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def __enter__(self):
        # A thread of this process that holds the folder may nest; another thread may not.
        key = self._key = (str(self.folder.resolve()), threading.get_ident())
        if key in _HELD:
            _HELD[key][1] += 1
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / ".lock"
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (kept open while held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderBusy(
                f"{self.folder} is in use by {holder}; wait for it to end, or give this run "
                "its own folder (--set name=... or --set run.dir=...)"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        program = os.path.basename(sys.argv[0]) if sys.argv else "python"
        if program in ("zoo", "cli.py", "__main__.py"):
            program = "zoo"
        command = " ".join([program, *sys.argv[1:]])
        handle.write(f"process {os.getpid()} ({command}, since {started})\n")
        handle.flush()
        _HELD[key] = [handle, 1]
        return self

    def __exit__(self, *exc_info):
        key = self._key
        held = _HELD.get(key)
        if held is None:
            return None
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            handle = held[0]
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return None


def locked_run(function):
    """Runs `function(recipe, ...)` holding the lock of the recipe's run folder."""

    @functools.wraps(function)
    def wrapper(recipe, *args, **kwargs):
        from zoo.config import run_folder

        with RunLock(run_folder(recipe)):
            return function(recipe, *args, **kwargs)

    return wrapper
