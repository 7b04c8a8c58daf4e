"""The worker process: load the adapter, serve it (local lane, gRPC), report READY, drain, exit.

It serves the ``@tool`` methods of ``--adapter``, and each function named by a ``--tool``
(``_functions.py``), or the functions alone on a bare ``Adapter``.

Lifecycle: import adapter and tool modules -> initialize() -> serve on the unix socket (or,
with ``--listen tcp://HOST:PORT``, on TCP for hosts that prove the token) ->
write READY to the ready fd, or to stdout when listening on TCP without one (only now can
the host connect) -> run until SIGTERM (cancel
running calls, wait for them, cleanup(), exit 0) or until the host dies (stdin EOF or
PR_SET_PDEATHSIG: the process group is killed at once). A TCP worker with
``--orphan-timeout N`` also stops, the same way, once no host has sent it anything for N
seconds (it logs why, and exits 0): no host owns it, so nothing else would.
SIGINT is ignored: the host owns cancellation, so Ctrl-C in a terminal reaches the host only.
A tool's SystemExit or KeyboardInterrupt fails its call only (see _runtime.py): nothing a
tool raises ends the process.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import functools
import logging
import math
import os
import signal
import ssl
import sys
import traceback
from typing import TYPE_CHECKING, Any

from .._shared import _frames as w
from .._shared._codec import DEFAULT_MAX_PAYLOAD
from .._shared._functions import label
from .._shared._tagging import POOL_TOKEN, WORKER_ID, kill_descendants, kill_tagged
from .._shared._tcp import parse_tcp_url, read_token
from ._adapter import Adapter, load_adapter
from ._events import flush_traces
from ._functions import collect_all, load_functions
from ._title import set_title

if TYPE_CHECKING:
    from ._lane import LaneServer

log = logging.getLogger("snakepit_trio.worker")

EXIT_ADAPTER_ERROR = 3
EXIT_HOST_GONE = 70

# How long, at most, an orphaned worker waits for its cancelled calls to end before it exits
# anyway (the orphan timeout itself when shorter): no host will SIGKILL it, so a tool that
# ignores cancellation must not keep it alive.
ORPHAN_DRAIN = 10.0


# Delivered by Linux (PR_SET_PDEATHSIG) when the *thread* that started us exits, which is not
# always the host's death: trio starts processes from a thread-cache thread that exits after
# a few idle seconds. So the handler checks that the host process itself is gone (we were
# re-parented) before acting. Not SIGKILL: that would kill only this process and leave the
# processes the adapter started running; the handler takes the whole group down instead.
PARENT_DEATH_SIGNAL = signal.SIGUSR1


def _die_with_parent(host_pid: int) -> None:
    """Die, with our process group, when the host dies; exit now if it is already gone."""

    def host_gone() -> bool:
        return bool(host_pid) and os.getppid() != host_pid

    if sys.platform.startswith("linux"):
        import ctypes

        def on_parent_death(signum: int, frame: object) -> None:
            if host_gone():
                _kill_own_group()

        signal.signal(PARENT_DEATH_SIGNAL, on_parent_death)
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, PARENT_DEATH_SIGNAL)
    if host_gone():
        _kill_own_group()


def _kill_own_group() -> None:
    """The host is gone: take everything we started down with us, now.

    Our descendants (also those that left our process group), then the group, then any
    process still carrying our tag (a daemon that double-forked away from us).
    """
    try:
        kill_descendants()
        token, worker_id = os.environ.get(POOL_TOKEN), os.environ.get(WORKER_ID)
        if token and worker_id:
            kill_tagged(token, worker_id)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(EXIT_HOST_GONE)


async def serve(args: argparse.Namespace) -> int:
    from ._connection import describe_map
    from ._grpc_socket import GrpcSocket
    from ._runtime import Runtime

    loop = asyncio.get_running_loop()
    if args.watch_stdin:

        def on_stdin() -> None:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                _kill_own_group()

        loop.add_reader(0, on_stdin)

    try:
        adapter_cls = load_adapter(args.adapter) if args.adapter else Adapter
        functions = load_functions(args.tool)
        adapter = adapter_cls()
        tools = collect_all(adapter, functions)
        await adapter.initialize()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(f"snakepit worker: adapter failed to start: {exc}", file=sys.stderr, flush=True)
        return EXIT_ADAPTER_ERROR

    runtime = Runtime(
        tools,
        capacity=args.capacity,
        max_payload=args.max_payload,
        shm_threshold=args.shm_threshold,
        on_session_end=adapter.on_session_end,
        thread_safe=adapter_cls.thread_safe is True,
    )
    served = label(args.adapter, args.tool)
    stop = asyncio.Event()
    broken = asyncio.Event()  # set when the gRPC server fails to start: exit 1

    def on_broken() -> None:
        broken.set()
        stop.set()

    grpc_socket = None
    if args.socket:
        grpc_socket = GrpcSocket(runtime, served, on_broken)
        grpc_socket.listen(args.socket)
    lane = None
    ready = f"READY {os.getpid()}"
    if args.lane or args.listen:
        from ._lane import LaneServer

        # A batch holds at most one payload over MAX_BATCH_BYTES, plus small frames.
        max_message = args.max_payload + 2 * w.MAX_BATCH_BYTES
        lane = LaneServer(runtime, describe_map(runtime, served), max_message)
        if args.lane:
            await lane.start(args.lane)
        else:
            host, port = args.listen
            port = await lane.start_tcp(host, port, args.token, args.tls)
            ready += f" {port}"
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    orphaned = asyncio.Event()
    watching = None
    if lane is not None and args.orphan_timeout is not None:
        watching = asyncio.ensure_future(_watch_for_host(lane, args.orphan_timeout, orphaned))
        watching.add_done_callback(lambda _: stop.set())

    if args.ready_fd >= 0:
        os.write(args.ready_fd, f"{ready}\n".encode())
        os.close(args.ready_fd)
    elif args.listen:
        print(ready, flush=True)  # started by hand or by a service manager: say the port

    await stop.wait()
    if watching is not None:
        watching.cancel()
    # Graceful stop: the host sends SIGTERM once it wants no more results (its drain is
    # over, or its caller was cancelled), so running calls are cancelled, and their code
    # gets to clean up (generators closed, async code cancelled, sync code sees
    # ctx.cancelled) before the host's SIGKILL after shutdown_grace.
    runtime.cancel_all()
    if orphaned.is_set():
        grace = min(ORPHAN_DRAIN, args.orphan_timeout)
        try:
            await asyncio.wait_for(runtime.drain(), grace)
        except TimeoutError:
            # No SIGKILL is coming: leave without the calls that ignore cancellation
            # (their threads would hold the interpreter's exit).
            print(
                f"snakepit worker: calls still running {grace:g} s after they were "
                "cancelled: exiting without them",
                file=sys.stderr,
                flush=True,
            )
            os._exit(0)
    else:
        await runtime.drain()
    if lane is not None:
        await lane.close()
    if grpc_socket is not None:
        await grpc_socket.close()
    runtime.executor.shutdown(wait=False, cancel_futures=True)
    runtime.threads.close()
    try:
        await adapter.cleanup()
    except Exception:
        log.exception("adapter cleanup() failed")
    flush_traces()  # spans the worker exports itself, if it traced calls
    return 1 if broken.is_set() else 0


async def _watch_for_host(lane: LaneServer, timeout: float, orphaned: asyncio.Event) -> None:
    """Return once no host has sent ``lane`` anything for ``timeout`` seconds; until then,
    drop each connection silent that long.

    A host that is connected but silent counts as gone: a healthy one PINGs every heartbeat
    interval, so silence means it died or the network between us did.
    """
    loop = asyncio.get_running_loop()
    tick = min(timeout / 4, 1.0)  # how late past the timeout a silence may be noticed
    while loop.time() - lane.last_heard < timeout:
        lane.drop_silent(timeout)
        await asyncio.sleep(tick)
    orphaned.set()
    print(
        f"snakepit worker: no host for {timeout:g} s (--orphan-timeout): cancelling every "
        "call and exiting",
        file=sys.stderr,
        flush=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if not (args.adapter or args.tool):
        parser.error("give --adapter, --tool, or both")
    if not (args.socket or args.listen):
        parser.error("give --socket (started by a host) or --listen tcp://HOST:PORT")
    if args.lane and args.listen:
        parser.error(
            "--lane and --listen: give one (a host that starts the worker serves it with "
            "--lane; --listen is for workers started elsewhere)"
        )
    args.token = args.tls = None
    if args.listen:
        _tcp_options(parser, args)
    elif (
        args.token_file
        or args.tls_cert
        or args.tls_key
        or args.tls_client_ca
        or args.orphan_timeout is not None
    ):
        parser.error(
            "--token-file, --tls-cert, --tls-key, --tls-client-ca and --orphan-timeout go "
            "with --listen"
        )
    if args.orphan_timeout is not None and not (0 < args.orphan_timeout < math.inf):
        parser.error(
            f"--orphan-timeout must be a positive number of seconds, not {args.orphan_timeout!r}"
        )
    return args


def _tcp_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check --listen and its companions; load the token and the TLS context into ``args``."""
    try:
        args.listen = parse_tcp_url(args.listen)
    except ValueError as exc:
        parser.error(f"--listen: {exc}")
    if not args.token_file:
        parser.error("--listen needs --token-file: a file holding the token hosts must prove")
    try:
        args.token = read_token(args.token_file)
    except (OSError, ValueError) as exc:
        parser.error(f"--token-file: {exc}")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("give both --tls-cert and --tls-key, or neither (plain TCP)")
    if args.tls_client_ca and not args.tls_cert:
        parser.error(
            "--tls-client-ca needs --tls-cert and --tls-key: client certificates are "
            "checked inside TLS only"
        )
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            parser.error(f"--tls-cert/--tls-key: cannot load them: {exc}")
        if args.tls_client_ca:
            # Mutual TLS: only hosts whose certificate this CA signed finish the handshake;
            # the others are refused before the token proof (LaneServer logs each once).
            try:
                context.load_verify_locations(cafile=args.tls_client_ca)
            except (OSError, ssl.SSLError) as exc:
                parser.error(f"--tls-client-ca: cannot load {args.tls_client_ca}: {exc}")
            context.verify_mode = ssl.CERT_REQUIRED
        args.tls = context


@functools.cache
def _parser() -> argparse.ArgumentParser:  # cached: a template builds it once for its forks
    parser = argparse.ArgumentParser(prog="python -m snakepit_trio.worker")
    parser.add_argument("--adapter", default="", help="'package.module:AdapterClass'")
    parser.add_argument(
        "--tool",
        action="append",
        default=[],
        help="'package.module:function' to serve as a tool (repeat it for more)",
    )
    parser.add_argument("--socket", default="", help="unix socket path to serve gRPC on")
    parser.add_argument("--ready-fd", type=int, default=-1)
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD)
    parser.add_argument("--host-pid", type=int, default=0)
    parser.add_argument("--watch-stdin", action="store_true")
    parser.add_argument("--shm-threshold", type=int, default=0, help="0: no shared memory")
    parser.add_argument("--lane", default="", help="also serve the local lane on this socket")
    parser.add_argument(
        "--listen", default="", help="serve the lane on tcp://HOST:PORT (port 0: any free port)"
    )
    parser.add_argument("--token-file", default="", help="the token hosts must prove (TCP)")
    parser.add_argument("--tls-cert", default="", help="PEM certificate chain for TLS (TCP)")
    parser.add_argument("--tls-key", default="", help="PEM private key for TLS (TCP)")
    parser.add_argument(
        "--tls-client-ca",
        default="",
        help="PEM CA file: require hosts to present a certificate it signed (mutual TLS)",
    )
    parser.add_argument(
        "--orphan-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=(
            "with --listen: drop a connection whose host sent nothing for this long "
            "(cancelling its calls; hosts PING every heartbeat interval), and once no host "
            "has sent anything for this long, cancel every call and exit 0 (default: never)"
        ),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    serves = " ".join([*([args.adapter] if args.adapter else []), *args.tool])
    set_title(os.environ.get(WORKER_ID, ""), serves)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A tool that crashes the interpreter (a segfault in C code, an abort) leaves the Python
    # stack of the crashing thread on stderr, whose last lines the host attaches to
    # WorkerCrashed. Only that thread's: the idle tool threads' stacks would push it out of
    # the host's tail (40 lines) at a capacity of 4 or more.
    faulthandler.enable(file=sys.stderr, all_threads=False)
    _die_with_parent(args.host_pid)
    logging.basicConfig(
        level=os.environ.get("SNAKEPIT_WORKER_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Decided outside an except block, so errors while serving do not chain to ImportError.
    uvloop = _uvloop()
    if uvloop is None:
        return asyncio.run(serve(args))
    return int(uvloop.run(serve(args)))


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop
