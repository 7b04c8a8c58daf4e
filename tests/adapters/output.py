"""Adapters for worker output and how a worker ends: floods, lines, children holding pipes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from snakepit_trio.worker import Adapter, tool

END = "flood-end"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Output(Adapter):
    @tool
    def say(self, out: str = "", err: str = "") -> None:
        """Write one line to stdout and one to stderr (each skipped when empty)."""
        if out:
            print(out, flush=True)
        if err:
            print(err, file=sys.stderr, flush=True)

    @tool
    def flood(self, megabytes: int, separator: str = "") -> int:
        """Write ``megabytes`` MiB to stderr in 64 KiB pieces, each ending with
        ``separator`` (none: one endless line, as a progress bar without newlines), then a
        line saying END."""
        piece = b"#" * ((1 << 16) - len(separator)) + separator.encode()
        for _ in range(megabytes * 16):
            _write_all(2, piece)
        _write_all(2, f"\n{END}\n".encode())
        return megabytes

    @tool
    def crash(self, code: int = 1) -> None:
        os._exit(code)

    @tool
    def fork_and_exit(self, code: int = 0, die_of: int = 0) -> None:
        """Fork a child that keeps every descriptor of the worker (its pipes and its
        connection to the host) and lives on, then exit with ``code`` (or die of the
        signal ``die_of``)."""
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        if die_of:
            os.kill(os.getpid(), die_of)
            time.sleep(600)  # another thread may be the one it is delivered to
        os._exit(code)

    @tool
    def spawn_and_exit(self, code: int) -> None:
        """Start a child holding the worker's stdout and stderr, then exit with ``code``."""
        subprocess.Popen(["sleep", "600"])
        os._exit(code)
