"""Why a worker died, in words a user can act on.

The kernel's OOM killer sends SIGKILL, which looks like any other SIGKILL. Two pieces of
evidence tell them apart: the ``oom_kill`` counter of the cgroup the workers run in (it
rises when the OOM killer acts there), and the worker's resident memory at its last
heartbeat. Neither is proof, so the cause says "likely".
"""

from __future__ import annotations

import signal as _signal
from pathlib import Path

import attrs

_MB = 2**20


@attrs.frozen
class Verdict:
    cause: str  # see WorkerCrashed.cause
    detail: str


def classify(
    *,
    exit_code: int | None,
    signal: int | None,
    killed_by_pool: tuple[str, str] | None,
    last_rss: int | None,
    oom_kills_rose: bool,
    memory_limit_mb: float | None = None,
) -> Verdict:
    """Name the cause of an unexpected exit.

    ``killed_by_pool`` is (cause, reason) when the pool itself killed the worker.
    """
    rss = f"last RSS {last_rss / _MB:.0f} MB" if last_rss is not None else "RSS unknown"
    exited = signal is None and exit_code is not None
    if killed_by_pool is not None and killed_by_pool[0] == "disconnected" and exited:
        # The pool kills with signals. A worker that exited with a code did so by itself,
        # and its connection broke because it exited (or because a child of it that held
        # the connection died with its group, after it): the exit is the cause.
        killed_by_pool = None
    if killed_by_pool is not None:
        cause, reason = killed_by_pool
        return Verdict(cause, reason)
    if signal == _signal.SIGKILL:
        near_limit = (
            memory_limit_mb is not None
            and last_rss is not None
            and last_rss >= 0.9 * memory_limit_mb * _MB
        )
        if oom_kills_rose or near_limit:
            why = "the cgroup's oom_kill count rose" if oom_kills_rose else "near max_memory_mb"
            return Verdict("oom", f"likely out of memory: {why}; {rss}")
        return Verdict(
            "signal", f"not sent by the pool; the kernel's OOM killer also sends SIGKILL; {rss}"
        )
    if signal is not None:
        return Verdict("signal", f"not sent by the pool; {rss}")
    return Verdict("exit", rss)


def oom_kill_count() -> int | None:
    """How many times the OOM killer acted in this process's memory cgroup, if readable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":  # cgroup v2
            candidates.append(Path("/sys/fs/cgroup", rel, "memory.events"))
        elif "memory" in controllers.split(","):
            candidates.append(Path("/sys/fs/cgroup/memory", rel, "memory.oom_control"))
    for file in candidates:
        try:
            text = file.read_text()
        except OSError:
            continue
        for entry in text.splitlines():
            key, _, value = entry.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None
