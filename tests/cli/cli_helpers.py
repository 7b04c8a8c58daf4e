"""Running the ``snakepit-trio`` command in a subprocess, as a user does."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import attrs
import psutil
import trio


@attrs.frozen
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Ran:
    """``python -m snakepit_trio ARGS`` with this checkout importable; waits under a deadline."""
    with trio.fail_after(timeout):
        done = await trio.run_process(
            [sys.executable, "-m", "snakepit_trio", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})},
        )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


def processes_marked(name: str, value: str) -> list[psutil.Process]:
    """Live processes whose environment has ``name=value`` (inherited from a CLI run)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(name) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found
