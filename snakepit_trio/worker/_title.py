"""The worker's process name, so ``ps`` and ``top`` show which pool's worker a process is.

Linux keeps a 15-byte name per thread (``/proc/PID/comm``), which ``top``, ``ps -e``,
``ps -o comm`` and ``pgrep`` show; ``prctl(PR_SET_NAME)`` sets it for the calling thread,
which in ``main`` is the main thread, whose name is the process's. The name is ``sp:`` and
the worker id (``<pool name>-<number>``), its end kept when it is too long, so the number
survives.

The full command line (``ps -f``, ``ps aux``, ``top -c``) becomes ``snakepit_trio worker
<worker id> <adapter and tools>`` when setproctitle is installed (the ``titles`` extra: only a
C extension can rewrite it). Without it a spawned worker's reads ``python -m
snakepit_trio.worker --adapter module:Class ...``, and a forked worker's is its template's
(``... snakepit_trio.worker._zygote ... --adapter ...``), with no worker id.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_NAME = 15
LIMIT = 15  # bytes, without the trailing NUL


def title(worker_id: str) -> bytes:
    """The process name for ``worker_id``: at most 15 bytes."""
    name = ("sp:" + worker_id).encode(errors="replace")
    if len(name) <= LIMIT:
        return name
    return b"sp:~" + worker_id.encode(errors="replace")[-(LIMIT - 4) :]


def command_line(worker_id: str, serves: str) -> str:
    """The command line ``ps -f`` shows for a worker (with setproctitle)."""
    return f"snakepit_trio worker {worker_id} {serves}".rstrip()


def set_title(worker_id: str, serves: str = "") -> None:
    """Name this process after its worker id, and say what it serves (``serves``: its adapter
    and tools) in its command line when setproctitle is installed. Linux only for the name;
    nothing fails when neither can be set."""
    if not worker_id:
        return
    # SPT_NOENV: the title stays within the command line's own bytes instead of spreading
    # over the environment's, so /proc/PID/environ keeps the pool's tags, by which leftovers
    # of a dead host are found (_shared/_tagging.py). Read when the module initialises.
    os.environ["SPT_NOENV"] = "1"
    try:
        import setproctitle
    except ImportError:
        pass
    else:
        # First: on Linux it also sets the 15-byte name, which the prctl below then replaces.
        setproctitle.setproctitle(command_line(worker_id, serves))
    finally:
        os.environ.pop("SPT_NOENV", None)  # not for the processes a tool starts
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(title(worker_id)), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # a name is a convenience, never a reason not to serve
