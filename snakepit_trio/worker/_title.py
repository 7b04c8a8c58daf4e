"""The worker's process name, so ``ps`` and ``top`` show which pool's worker a process is.

Linux keeps a 15-byte name per thread (``/proc/PID/comm``), which ``top``, ``ps -e``,
``ps -o comm`` and ``pgrep`` show; ``prctl(PR_SET_NAME)`` sets it for the calling thread,
which in ``main`` is the main thread, whose name is the process's. The name is ``sp:`` and
the worker id (``<pool name>-<number>``), its end kept when it is too long, so the number
survives. Full command lines (``ps -f``, ``ps aux``) are left as they are: a spawned worker's
already reads ``python -m snakepit_trio.worker --adapter module:Class ...``, and a forked
worker's is its template's (``... snakepit_trio.worker._zygote ... --adapter ...``). Rewriting
argv needs a C extension (setproctitle), which is not a dependency.
"""

from __future__ import annotations

import ctypes
import sys

PR_SET_NAME = 15
LIMIT = 15  # bytes, without the trailing NUL


def title(worker_id: str) -> bytes:
    """The process name for ``worker_id``: at most 15 bytes."""
    name = ("sp:" + worker_id).encode(errors="replace")
    if len(name) <= LIMIT:
        return name
    return b"sp:~" + worker_id.encode(errors="replace")[-(LIMIT - 4) :]


def set_title(worker_id: str) -> None:
    """Name this process after its worker id (Linux only; elsewhere nothing happens)."""
    if not worker_id or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(title(worker_id)), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # a name is a convenience, never a reason not to serve
