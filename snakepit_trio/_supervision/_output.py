"""A worker's stdout and stderr on the host: read continuously, cut into bounded lines, logged.

How this works: each pipe is read as fast as the worker writes (a full pipe would block
it). A line ends at ``\\n``, ``\\r`` (progress bars redraw a line with ``\\r``) or ``\\r\\n``;
blank lines are skipped. At most ``MAX_LINE`` bytes of a line are held: a longer one is
logged as soon as it reaches that size, cut and marked, and the rest of it is dropped until
its end. So whatever a worker writes (even 50 MB without a line end) costs the host one
pass over the bytes and a few KiB of memory, and the stderr tail kept for crash reports
(``Worker.stderr_tail``, ``TAIL_LINES`` lines) stays small too.

Lines go to the ``snakepit_trio.worker`` logger: stderr at WARNING, stdout at INFO, as
``[<worker id> <stream>] <line>``, with ``worker_id`` and ``stream`` attributes on each record.
With ``worker_output="inherit"`` there are no pipes: workers write to the host's stderr.
"""

from __future__ import annotations

import logging

import trio

from ._worker import Worker

worker_log = logging.getLogger("snakepit_trio.worker")

MAX_LINE = 4096  # longest line logged, in characters, marker included
CUT = " [... line cut: longer than 4096 bytes]"
READ_SIZE = 65536
LEVELS = {"stdout": logging.INFO, "stderr": logging.WARNING}


class LineSplitter:
    """Bytes in, complete lines out; holds at most ``limit`` bytes of an unfinished line."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._keep = limit - len(CUT)  # bytes of a cut line that are logged
        self._limit = limit
        self._pending = bytearray()
        self._dropping = False  # this line was logged cut: drop the rest of it
        self._after_cr = False  # the last piece ended with "\r": a "\n" next ends nothing

    def feed(self, data: bytes | bytearray) -> list[str]:
        """The lines that ``data`` completes (and a line cut because it grew too long)."""
        lines: list[str] = []
        # bytes.splitlines splits at "\n", "\r" and "\r\n" only, in one pass.
        for piece in data.splitlines(keepends=True):
            if self._after_cr:
                self._after_cr = False
                if piece == b"\n":  # the rest of a "\r\n" split between two reads
                    continue
            ended = piece.endswith((b"\n", b"\r"))
            body = piece.rstrip(b"\r\n") if ended else piece
            self._append(body, lines)
            if ended:
                self._after_cr = piece.endswith(b"\r")
                self._end(lines)
        return lines

    def close(self) -> list[str]:
        """The last line, if the stream ended without a line end."""
        lines: list[str] = []
        self._end(lines)
        return lines

    def _append(self, body: bytes | bytearray, lines: list[str]) -> None:
        if self._dropping or not body:
            return
        if len(self._pending) + len(body) <= self._limit:
            self._pending += body
            return
        room = self._keep - len(self._pending)
        if room > 0:
            self._pending += body[:room]
        lines.append(_text(self._pending[: self._keep]) + CUT)
        self._pending.clear()
        self._dropping = True

    def _end(self, lines: list[str]) -> None:
        if self._pending:
            lines.append(_text(self._pending))
            self._pending.clear()
        self._dropping = False


def _text(raw: bytes | bytearray) -> str:
    # "replace" gives at most one character per byte: a line never grows when decoded.
    return raw.decode("utf-8", "replace")


async def pump(stream: trio.abc.ReceiveStream, worker: Worker, name: str, done: trio.Event) -> None:
    """Read one of a worker's output pipes until it closes, logging each line.

    Ends quietly when the stream is closed under it (the worker was reaped and its pipes
    closed while a child of it still held them); ``done`` is set either way.
    """
    lines = LineSplitter()
    level = LEVELS[name]
    try:
        while True:
            try:
                data = await stream.receive_some(READ_SIZE)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                break
            if not data:
                break
            for line in lines.feed(data):
                _emit(worker, name, level, line)
        for line in lines.close():
            _emit(worker, name, level, line)
    finally:
        done.set()


def _emit(worker: Worker, name: str, level: int, line: str) -> None:
    if name == "stderr":
        worker.stderr_tail.append(line)
    worker_log.log(
        level, "[%s %s] %s", worker.id, name, line, extra={"worker_id": worker.id, "stream": name}
    )
