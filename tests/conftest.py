"""Shared fixtures: every test fails if it leaves a process behind."""

from __future__ import annotations

import os
import tempfile
import time

import psutil
import pytest

# Pools record their workers in a registry; tests keep theirs out of the user's state dir.
os.environ.setdefault("SNAKEPIT_TRIO_STATE_DIR", tempfile.mkdtemp(prefix="snakepit-tests-"))


def _children() -> list[psutil.Process]:
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != "zombie" and not _of_ray(p):
                found.append(p)
        except psutil.NoSuchProcess:
            pass  # it ended while we looked
    return found


def _of_ray(process: psutil.Process) -> bool:
    """Ray's own services and worker processes (the ray tests' session-wide cluster keeps
    some idle ones). The workers its actors start are ours and still counted."""
    command = " ".join(process.cmdline())
    return command.startswith("ray::") or "site-packages/ray/" in command


@pytest.fixture(scope="session")
def ray_session():  # type: ignore[no-untyped-def]
    """A Ray cluster of two nodes on this machine, for the session (tests/ray_support.py)."""
    from tests.ray_support import two_node_cluster

    with two_node_cluster() as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def no_leaked_processes():  # type: ignore[no-untyped-def]
    before = {p.pid for p in _children()}
    yield
    # Processes are reaped by the pool before it returns; allow the kernel a moment to
    # finish tearing down, but never pass with a live leftover.
    deadline = time.monotonic() + 2
    leaked = [p for p in _children() if p.pid not in before]
    while leaked and time.monotonic() < deadline:
        psutil.wait_procs(leaked, timeout=0.1)
        leaked = [p for p in _children() if p.pid not in before]
    for p in leaked:
        p.kill()
    assert not leaked, f"test leaked processes: {[(p.pid, p.cmdline()) for p in leaked]}"


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
