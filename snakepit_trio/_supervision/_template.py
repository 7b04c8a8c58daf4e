"""The host's side of the template process that forks workers (``start_method``).

``open_template`` starts ``python -m snakepit_trio.worker._zygote`` next to the pool, waits
until it has imported the worker runtime, the adapter module and the modules of the pool's
function tools, and yields ``Templates``,
whose ``fork`` returns a ``ForkedWorker``: the same surface the supervisor uses from a
``trio.Process`` (pid, returncode, wait, stdout, stderr). The host is not the parent of a
forked worker, so it cannot ``waitpid`` it: the template reaps its children and reports
each exit status; if the template itself dies, its children kill themselves (their
parent-death signal), the host learns of each end from the pidfd it was sent, and the next
worker to start starts a new template first.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import trio

from .._config import PoolConfig
from .._errors import WorkerStartError
from .._shared._tagging import template_tags
from ._records import WorkerRecords

log = logging.getLogger("snakepit_trio")

MAX_MESSAGE = 1 << 16


class TemplateUnavailable(Exception):
    """The template cannot fork (it died, or refused a request): start a fresh interpreter."""


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


REPORT_GRACE = 1.0  # after a worker's pidfd says it is gone, how long its exit status may take
FORK_TIMEOUT = 5.0  # longest wait for the template to answer a fork request


class ForkedWorker:
    """A worker forked by the template, as the supervisor sees a process.

    Its pidfd says when it is gone, even while the template is stopped or dead; the
    template's report (it reaps its children) says how.
    """

    start_method = "zygote"  # how it came to be (telemetry's worker.spawned says it)

    def __init__(
        self, pid: int, pidfd: int, stdin: int, stdout: int | None, stderr: int | None
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        # None: it writes to the host's stderr itself (worker_output="inherit").
        self.stdout = None if stdout is None else trio.lowlevel.FdStream(stdout)
        self.stderr = None if stderr is None else trio.lowlevel.FdStream(stderr)
        self._stdin = stdin  # held open: the worker dies when it reads EOF (host gone)
        self._pidfd = pidfd
        self._status: int | None = None
        self._reported = trio.Event()
        self._ended = trio.Event()
        self.orphaned = False  # its template died first

    async def wait(self) -> int:
        await self._ended.wait()
        assert self.returncode is not None
        return self.returncode

    def reported(self, returncode: int) -> None:
        self._status = returncode
        self._reported.set()

    def template_died(self) -> None:
        self.orphaned = True
        self._reported.set()  # no report will come

    async def watch(self) -> None:
        """Owns the pidfd: records the worker's end. Shielded: supervisors wait for it."""
        with trio.CancelScope(shield=True):
            try:
                await trio.lowlevel.wait_readable(self._pidfd)
                with trio.move_on_after(REPORT_GRACE):
                    await self._reported.wait()
            finally:
                os.close(self._pidfd)
                os.close(self._stdin)
        # Without a report its template is dead or stopped. A worker whose template dies
        # kills its own group with SIGKILL, so that is what it most likely died of.
        self.returncode = self._status if self._status is not None else -signal.SIGKILL
        self._ended.set()


class Template:
    def __init__(
        self,
        process: trio.Process,
        control: trio.socket.SocketType,
        watchers: trio.Nursery,
        fork_timeout: float,
    ) -> None:
        self._watchers = watchers
        self._fork_timeout = fork_timeout
        self.pid = process.pid
        self._control = control
        self._sending = trio.Lock()
        self._number = 0
        self._replies: dict[int, trio.MemorySendChannel[tuple[dict[str, Any], int]]] = {}
        self._children: dict[int, ForkedWorker] = {}
        self.alive = True
        self._reading = trio.CancelScope(shield=True)

    async def fork(
        self,
        args: list[str],
        worker_id: str,
        *,
        inherit_output: bool = False,
        env: dict[str, str | None] | None = None,
    ) -> tuple[ForkedWorker, int]:
        """A worker running ``python -m snakepit_trio.worker *args``, and its ready fd.

        With ``inherit_output`` its stdout and stderr are the host's stderr, not pipes.
        ``env`` changes its environment (its placement; None removes a variable).
        """
        if not self.alive:
            raise TemplateUnavailable("the template process has exited")
        self._number += 1
        number = self._number
        if inherit_output:  # the same file as ours, sent twice (the worker dup2s each)
            pipes = [os.pipe(), os.pipe()]  # stdin, ready
            theirs = [pipes[0][0], os.dup(2), os.dup(2), pipes[1][1]]
            ours = [pipes[0][1], pipes[1][0]]
        else:
            pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, ready
            theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
            ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        send, receive = trio.open_memory_channel[tuple[dict[str, Any], int]](1)
        self._replies[number] = send
        reply: dict[str, Any] | None = None
        try:
            request = msgpack.packb(
                {"fork": number, "argv": args, "worker_id": worker_id, "env": env or {}}
            )
            fds = array.array("i", theirs).tobytes()
            with trio.move_on_after(self._fork_timeout):  # a stopped template never answers
                try:
                    async with self._sending:
                        await self._control.sendmsg(
                            [request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
                        )
                except OSError as exc:
                    raise TemplateUnavailable(f"the template process is gone ({exc})") from None
                finally:
                    for fd in theirs:
                        os.close(fd)
                reply, pidfd = await receive.receive()
            if reply is None:
                raise TemplateUnavailable(
                    f"the template process did not fork within {self._fork_timeout:g}s"
                )
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            del self._replies[number]
        if "pid" not in reply or pidfd < 0:
            for fd in ours:
                os.close(fd)
            raise TemplateUnavailable(str(reply.get("error", "the template process is gone")))
        pid = int(reply["pid"])
        if inherit_output:
            child = ForkedWorker(pid, pidfd, ours[0], None, None)
        else:
            child = ForkedWorker(pid, pidfd, ours[0], ours[1], ours[2])
        self._children[pid] = child
        self._watchers.start_soon(child.watch)
        return child, ours[-1]

    async def read_replies(self) -> None:
        """Route each message of the template; when it ends, free everyone waiting on it.

        Shielded until ``close``: when the pool is cancelled, its supervisors still wait,
        shielded, for their workers to exit, and only the template can tell them.
        """
        died = False
        with self._reading:
            try:
                while True:
                    data, ancillary, _, _ = await self._control.recvmsg(
                        MAX_MESSAGE, socket.CMSG_SPACE(4)
                    )
                    if not data:
                        died = True
                        break
                    self._route(msgpack.unpackb(data), _fds(ancillary))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                died = True
                log.warning("lost the template process's control socket: %r", exc)
            finally:
                self.alive = False
                for channel in list(self._replies.values()):
                    with contextlib.suppress(trio.WouldBlock):  # its reply came first
                        channel.send_nowait(({"error": "the template process exited"}, -1))
        if died:
            for child in self._children.values():
                child.template_died()

    def _route(self, record: dict[str, Any], fds: list[int]) -> None:
        if "exit" in record:
            child = self._children.pop(record["exit"], None)
            if child is not None:
                child.reported(int(record["code"]))
            return
        channel = self._replies.get(int(record.get("forked", record.get("failed", -1))))
        if channel is None:  # its requester gave up (cancelled)
            for fd in fds:
                os.close(fd)
            return
        channel.send_nowait((record, fds[0] if fds else -1))

    def close(self) -> None:
        """Every worker is reaped: stop reading (the caller closes the socket)."""
        self._reading.cancel()


def _fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


async def _first_word(control: trio.socket.SocketType, timeout: float) -> dict[str, object]:
    with trio.move_on_after(timeout):
        data = await control.recv(MAX_MESSAGE)
        if not data:
            return {"unsafe": "it exited while importing"}
        record: dict[str, object] = msgpack.unpackb(data)
        return record
    return {"unsafe": f"it was not ready within startup_timeout={timeout:g}s"}


class Templates:
    """The pool's template process, started again when it dies and a worker must start.

    At most ``MAX_STARTS`` starts within ``START_WINDOW`` seconds: a template that keeps
    dying is not restarted in a loop (workers then start as fresh interpreters).
    """

    MAX_STARTS = 3
    START_WINDOW = 60.0

    def __init__(
        self, config: PoolConfig, records: WorkerRecords, env: dict[str, str], nursery: trio.Nursery
    ) -> None:
        self._config = config
        self._records = records
        self._env = env
        self._nursery = nursery
        self._all: list[Template] = []
        self._starts: list[float] = []
        self._starting: trio.Event | None = None
        self._closed = False

    @property
    def current(self) -> Template | None:
        return self._all[-1] if self._all else None

    async def start(self) -> tuple[str, str] | None:
        """Start a template: None once it is ready, else (why it cannot fork, its output)."""
        self._starts.append(trio.current_time())
        number = len(self._starts)
        template_id = f"{self._config.name}-template" + (f"-{number}" if number > 1 else "")
        started: Template | tuple[str, str] = await self._nursery.start(self._run, template_id)
        if isinstance(started, tuple):
            return started
        self._all.append(started)
        return None

    async def fork(
        self,
        args_for: Callable[[int], list[str]],
        worker_id: str,
        env: dict[str, str | None] | None = None,
    ) -> tuple[ForkedWorker, int]:
        """A worker forked from the live template; ``args_for(template pid)`` its args,
        ``env`` what its environment changes (its placement)."""
        template = await self._live()
        inherit = self._config.worker_output == "inherit"
        return await template.fork(
            args_for(template.pid), worker_id, inherit_output=inherit, env=env
        )

    async def _live(self) -> Template:
        while True:
            template = self.current
            if template is not None and template.alive:
                return template
            if self._closed:
                raise TemplateUnavailable("the pool is closing")
            if self._starting is not None:  # another worker's start is restarting it
                await self._starting.wait()
                continue
            now = trio.current_time()
            if len([t for t in self._starts if now - t < self.START_WINDOW]) >= self.MAX_STARTS:
                raise TemplateUnavailable(
                    f"the template process exited, and it was started {self.MAX_STARTS} times "
                    f"within {self.START_WINDOW:g}s already"
                )
            self._starting = trio.Event()
            try:
                failed = await self.start()
            finally:
                self._starting.set()
                self._starting = None
            if failed is not None:
                raise TemplateUnavailable(f"a new template process cannot fork: {failed[0]}")
            log.warning("%s: the template process exited; started a new one", self._config.name)

    def close(self) -> None:
        """Every worker is reaped: let the templates go."""
        self._closed = True
        for template in self._all:
            template.close()

    async def _run(
        self,
        template_id: str,
        *,
        task_status: trio.TaskStatus[Template | tuple[str, str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        config = self._config
        process, control = await _launch(config, self._records.token, template_id, self._env)
        try:
            await self._records.spawned(template_id, process.pid)
            output: list[bytes] = []
            collecting = trio.CancelScope()
            # Also the workers' watchers: it ends once each of them has seen its worker end.
            async with trio.open_nursery() as nursery:
                assert process.stdout is not None
                nursery.start_soon(_collect, process.stdout, output, collecting)
                first = await _first_word(control, config.startup_timeout)
                if "ready" in first:
                    timeout = min(FORK_TIMEOUT, config.startup_timeout)
                    template = Template(process, control, nursery, timeout)
                    task_status.started(template)
                    await template.read_replies()  # until close(), or until it dies
                else:
                    await _stop(process, control, 0)
                    tail = b"".join(output).decode("utf-8", "replace")
                    task_status.started((str(first.get("unsafe")), tail))
                collecting.cancel()
        finally:
            # It exits at once on EOF, holding no state of its own; only a stopped one waits.
            await _stop(process, control, min(config.shutdown_grace, 1.0))
            await self._records.reaped(template_id)


async def _launch(
    config: PoolConfig, token: str, template_id: str, env: dict[str, str]
) -> tuple[trio.Process, trio.socket.SocketType]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        process = await trio.lowlevel.open_process(
            [
                config.python,
                "-m",
                "snakepit_trio.worker._zygote",
                *(["--adapter", config.adapter] if config.adapter is not None else []),
                *(arg for entry in config.tools for arg in ("--tool", entry)),
                "--transport",
                config.transport,
                "--control-fd",
                str(theirs.fileno()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(theirs.fileno(),),
            env={**env, **template_tags(token, template_id)},
            cwd=config.cwd,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, trio.socket.from_stdlib_socket(ours)


@contextlib.asynccontextmanager
async def open_template(
    config: PoolConfig, records: WorkerRecords, env: dict[str, str]
) -> AsyncIterator[Templates | None]:
    """The pool's template process, or None when workers start as fresh interpreters.

    ``env`` is the workers' environment (without their own tags).
    """
    method = config.start_method
    if method == "spawn" or (method == "auto" and not supported()):
        yield None
        return
    if not supported():
        raise WorkerStartError("template", "start_method='zygote' needs Linux with pidfd_open")
    failed: tuple[str, str] | None = None
    async with trio.open_nursery() as nursery:
        templates = Templates(config, records, env, nursery)
        failed = await templates.start()
        if failed is None:
            try:
                yield templates
            finally:
                templates.close()
    if failed is not None:
        reason = f"the template process cannot fork workers: {failed[0]}"
        if method == "zygote":
            raise WorkerStartError(f"{config.name}-template", reason, failed[1])
        log.info("%s: starting workers as fresh interpreters: %s", config.name, reason)
        yield None


async def _stop(process: trio.Process, control: trio.socket.SocketType, grace: float) -> None:
    with trio.CancelScope(shield=True):
        control.close()  # the template kills what is left of its children and exits
        with trio.move_on_after(grace):
            await process.wait()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _collect(
    stream: trio.abc.ReceiveStream, into: list[bytes], scope: trio.CancelScope
) -> None:
    """Keep the template's last output (why it could not start); never let its pipe fill."""
    with scope, contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
        async for chunk in stream:
            into.append(bytes(chunk))
            del into[:-64]
