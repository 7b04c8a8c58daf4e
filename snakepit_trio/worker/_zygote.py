"""The template process: import the worker runtime, the adapter and the modules of the
pool's function tools once, then fork workers.

A fresh interpreter spends ~0.3 s importing asyncio, grpclib, the generated messages and
the adapter module; a fork of a process that already holds them takes a few milliseconds
and shares those pages copy-on-write. The template is a plain single-threaded process: it
never starts an event loop or a thread (a forked child of either inherits loop fds and
locks held by threads that do not exist in it), and it refuses to serve when the adapter's
import started threads (CUDA, BLAS pools, a client library's background thread).

Control protocol, over a SOCK_SEQPACKET socket from the host (one msgpack record per
message; file descriptors ride along as SCM_RIGHTS):

- template -> host, once: ``{"ready": pid}`` or ``{"unsafe": reason}`` (then it exits).
- host -> template: ``{"fork": n, "argv": [...], "worker_id": id, "env": {name: value}}``
  with the child's stdin, stdout, stderr and ready-pipe fds; ``env`` (optional) is the
  worker's placement, which the child applies first (a None value removes a variable).
  Reply ``{"forked": n, "pid": pid}`` with a pidfd of the child (so the host can watch it
  without being its parent), or ``{"failed": n, "error": text}``.
- template -> host, when a child ends: ``{"exit": pid, "code": returncode}`` (negative: the
  signal that killed it), after the template reaped it.
- The host closing its end means the host is gone: the template kills every child's
  process group and exits.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

import msgpack

from .._shared._tagging import POOL_TOKEN, kill_tagged

MAX_MESSAGE = 1 << 20
CHILD_FDS = 4  # stdin, stdout, stderr, ready pipe


def _open_fds() -> set[int]:
    try:
        return {int(fd) for fd in os.listdir("/proc/self/fd")} - {_listing_fd()}
    except OSError:
        return set()


def _listing_fd() -> int:
    """The descriptor listdir itself used (the lowest free one, closed again since)."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def preload(adapter: str, tools: list[str] | None = None, *, grpc: bool = True) -> str | None:
    """Import what every worker needs; the reason forking is unsafe, or None.

    ``adapter``: its ``"module:Class"`` ("" for none); ``tools``: the function tools' entries;
    ``grpc``: whether the workers serve gRPC (else only the local lane: grpclib, the
    generated messages and protobuf's status types, about a third of the import time, stay
    out of the template and of every worker).
    """
    try:  # the host watches forked workers through pidfds (Linux 5.3, and allowed by seccomp)
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:
        return f"pidfd_open is not available here ({exc.strerror})"
    import ctypes  # noqa: F401  (the parent-death signal is set through it)

    from . import _adapter, _connection, _functions, _grpc_socket, _lane, _runtime, _server  # noqa: F401  (shared by forks)
    from ._placement import preload as preload_placement

    preload_placement()

    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass
    if grpc:
        _preload_grpc()
    _server._parser()
    _connection.capabilities()
    fds = _open_fds()
    try:
        cls = _adapter.load_adapter(adapter) if adapter else _adapter.Adapter
    except _adapter.AdapterLoadError as exc:
        # A fresh interpreter reports it with its full traceback, as without a template.
        return f"the adapter does not load: {exc}"
    try:
        _functions.load_functions(tools or [])
    except _adapter.AdapterLoadError as exc:
        return f"the tools do not load: {exc}"
    if adapter and tools:
        modules = "the adapter and tool modules"
    else:
        modules = "the adapter module" if adapter else "the tool modules"
    left_open = _open_fds() - fds
    if left_open:
        # A socket or file opened at import would be shared by every fork (one connection
        # read and written by several processes, one file offset).
        return f"importing {modules} left {len(left_open)} file descriptor(s) open"
    if not getattr(cls, "fork_safe", True):
        return f"{adapter} sets fork_safe = False"
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
        return f"CUDA was initialised while importing {modules}"
    threads = _threads()
    if threads > 1:
        return f"importing {modules} started {threads - 1} thread(s)"
    return None


def _preload_grpc() -> None:
    """The gRPC service, its messages' field tables (built here once, not per worker) and
    grpclib's probe for an optional package (it runs once per process)."""
    import betterproto2

    from .._proto.snakepit import v1 as pb
    from . import _service  # noqa: F401  (shared by forks)

    with contextlib.suppress(Exception):
        from grpclib.encoding import proto

        proto._googleapis_available()

    for value in vars(pb).values():
        if isinstance(value, type) and issubclass(value, betterproto2.Message):
            with contextlib.suppress(Exception):
                value().parse(bytes(value()))


def _child(
    argv: list[str],
    worker_id: str,
    fds: list[int],
    keep_out: list[int],
    env: dict[str, str | None],
) -> None:
    """In the forked child: become a worker in its own session, never return."""
    code = 1
    try:
        for fd in keep_out:
            os.close(fd)
        os.setsid()
        stdin, stdout, stderr, ready = fds
        for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
            os.dup2(fd, target)
        for fd in (stdin, stdout, stderr):
            if fd > 2:
                os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        # As in any Python process: a write to a closed pipe or socket raises
        # BrokenPipeError instead of killing the worker (a tool's own pipe, or a host that
        # hung up before its answer was written).
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        from .._shared._tagging import retag
        from . import _server
        from ._placement import settle

        retag(worker_id)
        settle(env)  # its device and threads, before anything of the adapter runs
        sys.argv = ["snakepit_trio.worker", *argv]
        code = _server.main([*argv, "--ready-fd", str(ready)])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        # Never run the template's atexit handlers or unwind into its loop.
        os._exit(code)


class Template:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: dict[int, int] = {}  # pidfd -> pid
        self.poller = select.poll()
        self.poller.register(control, select.POLLIN)

    def send(self, record: dict[str, Any], fds: list[int] | None = None) -> None:
        data = msgpack.packb(record)
        if fds:
            socket.send_fds(self.control, [data], fds)
        else:
            self.control.send(data)

    def serve(self) -> None:
        while True:
            for fd, _ in self.poller.poll():
                if fd == self.control.fileno():
                    if not self.on_request():
                        return
                else:
                    self.on_exit(fd)

    def on_request(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE, CHILD_FDS)
        except ConnectionError:
            return False
        if not data:
            return False  # the host is gone
        try:
            request = msgpack.unpackb(data)
            if len(fds) != CHILD_FDS:
                raise ValueError(f"expected {CHILD_FDS} descriptors, got {len(fds)}")
            self.fork(request, fds)
        except Exception as exc:
            self.send({"failed": _number(data), "error": f"{type(exc).__name__}: {exc}"})
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def fork(self, request: dict[str, Any], fds: list[int]) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # nothing buffered here may be written twice
        pid = os.fork()
        if pid == 0:
            _child(
                request["argv"],
                request["worker_id"],
                fds,
                [self.control.fileno(), *self.children],
                request.get("env") or {},
            )
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = pid
        self.poller.register(pidfd, select.POLLIN)
        self.send({"forked": request["fork"], "pid": pid}, [pidfd])

    def on_exit(self, pidfd: int) -> None:
        pid = self.children.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self.send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def kill_children(self) -> None:
        """The host is gone: kill every worker and whatever it started.

        By tag first: a worker killed by us cannot clean up after itself (the children it
        started in sessions of their own carry its tag, and nothing else links them to it).
        """
        token = os.environ.get(POOL_TOKEN)
        if token:
            kill_tagged(token)
        for pid in self.children.values():
            try:
                os.killpg(pid, signal.SIGKILL)  # each leads its own group (setsid)
            except OSError:
                pass


def _number(data: bytes) -> int:
    try:
        return int(msgpack.unpackb(data).get("fork", -1))
    except Exception:
        return -1


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m snakepit_trio.worker._zygote")
    parser.add_argument("--adapter", default="")
    parser.add_argument("--tool", action="append", default=[])
    parser.add_argument("--transport", choices=("local", "grpc"), default="grpc")
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host owns Ctrl-C
    control = socket.socket(fileno=args.control_fd)
    template = Template(control)
    unsafe = preload(args.adapter, args.tool, grpc=args.transport == "grpc")
    if unsafe is not None:
        template.send({"unsafe": unsafe})
        os._exit(0)  # not sys.exit: it would wait for the threads the adapter started
    gc.collect()
    gc.freeze()  # children do not dirty the shared pages by collecting them
    template.send({"ready": os.getpid()})
    try:
        template.serve()
    finally:
        template.kill_children()
    return 0


if __name__ == "__main__":
    sys.exit(main())
