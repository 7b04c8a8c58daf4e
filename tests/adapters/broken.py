"""Adapters that fail in the ways users' adapters do."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from snakepit_trio.worker import Adapter, tool


class FailsInitialize(Adapter):
    async def initialize(self) -> None:
        raise RuntimeError("model weights not found at /nowhere")

    @tool
    def noop(self) -> None:
        return None


class Chatty(Adapter):
    """Writes a lot to stdout and stderr; a full pipe must never block it."""

    @tool
    def shout(self, megabytes: int) -> int:
        line = "x" * 1023 + "\n"
        for _ in range(megabytes * 1024):
            sys.stdout.write(line)
            sys.stderr.write(line)
        sys.stdout.flush()
        sys.stderr.flush()
        return megabytes

    @tool
    def die_loudly(self) -> None:
        print("last words before dying", file=sys.stderr, flush=True)
        os._exit(7)


class Parent(Adapter):
    """Starts grandchildren, which must die with the worker."""

    @tool
    def spawn_child(self) -> int:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        return child.pid

    @tool
    def spawn_escapees(self) -> list[int]:
        """Two children that leave the worker's process group: one calls setsid(), the
        other is a daemon (double fork + setsid) that no longer has the worker as parent."""
        own_session = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
        )
        launcher = subprocess.Popen(
            [sys.executable, "-c", _DAEMON], stdout=subprocess.PIPE, text=True
        )
        assert launcher.stdout is not None
        daemon = int(launcher.stdout.readline())
        launcher.wait()
        launcher.stdout.close()
        return [own_session.pid, daemon]

    @tool
    def try_setsid(self) -> str:
        """The worker already leads its own session, so it cannot start another one."""
        try:
            os.setsid()
        except OSError as exc:
            return type(exc).__name__
        return "left its session"


_DAEMON = """
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
print(os.getpid(), flush=True)
sys.stdout.close()
time.sleep(600)
"""


class StartsWhenAllowed(Adapter):
    """Fails to start while the file named by $SNAKEPIT_TEST_BLOCK_START exists."""

    async def initialize(self) -> None:
        if os.path.exists(os.environ["SNAKEPIT_TEST_BLOCK_START"]):  # noqa: ASYNC240
            raise RuntimeError("start blocked by the test")

    @tool
    def ok(self) -> str:
        return "ok"

    @tool
    def crash(self, code: int = 1) -> None:
        os._exit(code)

    @tool
    def crash_when_exists(self, path: str) -> None:
        """Crash once the test creates ``path`` (it says when, not a timer)."""
        while not os.path.exists(path):
            time.sleep(0.005)
        os._exit(1)


NotAnAdapter = object
