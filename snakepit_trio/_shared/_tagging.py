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
# Room, right after WORKER_ID in a template's environment, for its forked workers' ids.
SLACK = "SNAKEPIT_TRIO_SLACK"
SLACK_LEN = 96


def template_tags(token: str, template_id: str) -> dict[str, str]:
    """A template's tags: its forked workers rewrite them in place (see ``retag``)."""
    return {POOL_TOKEN: token, WORKER_ID: template_id, SLACK: "x" * SLACK_LEN}


def retag(worker_id: str) -> bool:
    """In a worker forked from a template: carry ``worker_id`` where others can read it.

    ``/proc/PID/environ`` shows the environment block a process was exec'd with, not what
    ``os.environ`` says now, so a forked worker (and anything it forks without exec) would
    show the template's id there. The block is this process's own memory: overwrite the
    ``WORKER_ID=...`` entry and its ``SLACK=...`` neighbour in place, same length. Returns
    False (and changes nothing there) when the block does not hold them as laid out.
    """
    try:
        return _rewrite_block(worker_id)
    finally:
        os.environ[WORKER_ID] = worker_id  # what exec'd children inherit (after: putenv
        # points the entry elsewhere, so the block could no longer be found)


def _rewrite_block(worker_id: str) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        environ = ctypes.POINTER(ctypes.c_char_p).in_dll(libc, "environ")
        slots = ctypes.cast(environ, ctypes.POINTER(ctypes.c_void_p))
    except (OSError, ValueError, AttributeError):
        return False
    old = f"{WORKER_ID}=".encode()
    index = 0
    while (entry := environ[index]) is not None:
        if entry.startswith(old):
            break
        index += 1
    else:
        return False
    address = slots[index]
    tail = environ[index + 1]
    current = entry + b"\0" + (tail or b"")
    if tail is None or not tail.startswith(f"{SLACK}=".encode()):
        return False
    if ctypes.string_at(address, len(current)) != current:
        return False  # not one contiguous block (someone set these variables after exec)
    head = f"{WORKER_ID}={worker_id}\0{SLACK}=".encode()
    if len(head) > len(current):
        return False
    ctypes.memmove(address, head + b"x" * (len(current) - len(head)), len(current))
    return True


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
