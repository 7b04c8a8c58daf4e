"""Tagging worker processes, so everything a worker started can be found and killed.

Every worker runs with two environment variables that its children inherit: the pool's
instance token and the worker's id. A process group alone is not enough: a child that
calls ``setsid()`` (a daemon, ``subprocess.Popen(start_new_session=True)``) leaves the
group, and once its parent dies nothing links it to the worker but this tag.

Imported by the worker runtime too, so it imports neither trio nor asyncio.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

import psutil

POOL_TOKEN = "SNAKEPIT_TRIO_POOL"
WORKER_ID = "SNAKEPIT_TRIO_WORKER"


def tagged(token: str, worker_id: str | None = None) -> list[psutil.Process]:
    """Live processes carrying ``token`` (and ``worker_id``, if given), except this one.

    Processes of other users, and those whose environment cannot be read, are skipped.
    """
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get(POOL_TOKEN) != token:
            continue
        if worker_id is not None and env.get(WORKER_ID) != worker_id:
            continue
        found.append(proc)
    return found


def kill_all(procs: Iterable[psutil.Process]) -> list[int]:
    """SIGKILL each process (checked against pid reuse by psutil); return the pids killed."""
    killed = []
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)  # psutil refuses if the pid now names another
        except (psutil.Error, OSError):
            continue
        killed.append(proc.pid)
    return killed


def kill_tagged(token: str, worker_id: str | None = None) -> list[int]:
    return kill_all(tagged(token, worker_id))


def kill_descendants() -> None:
    """SIGKILL this process's descendants (also those that left its process group)."""
    try:
        kill_all(psutil.Process().children(recursive=True))
    except (psutil.Error, OSError):
        pass
