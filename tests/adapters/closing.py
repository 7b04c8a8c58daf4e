"""An adapter whose work the shutdown tests end from outside, and whose session ends leave
a trace on disk (imported inside real worker processes)."""

from __future__ import annotations

import os
import pathlib
import time

from snakepit_trio.worker import Adapter, tool

# Where on_session_end writes one file per ended session (set through open_pool's env=).
SESSION_END_DIR = "SNAKEPIT_TEST_SESSION_END_DIR"


class Closing(Adapter):
    @tool
    def pid(self) -> int:
        return os.getpid()

    @tool
    def wait_for_file(self, path: str, started: str | None = None) -> str:
        """Runs until ``path`` exists, cancelled or not: the test decides when it ends.

        ``started``: a file created once the tool runs (a cancel then no longer stops it).
        """
        if started is not None:
            pathlib.Path(started).touch()
        while not os.path.exists(path):
            time.sleep(0.005)
        return "released"

    async def on_session_end(self, session_id: str) -> None:
        directory = pathlib.Path(os.environ[SESSION_END_DIR])
        (directory / session_id).write_text(str(os.getpid()))
