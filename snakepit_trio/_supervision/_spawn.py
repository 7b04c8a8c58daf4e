"""Starting worker processes (forked from the template, or fresh) and signalling their groups."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import Protocol

import trio

from .._config import PoolConfig
from .._shared._placement import Overrides, apply
from .._shared._tagging import POOL_TOKEN, SLACK, WORKER_ID
from ._runtimes import Program, node_env
from ._template import Templates, TemplateUnavailable

log = logging.getLogger("snakepit_trio")


class WorkerProcess(Protocol):
    """What the supervisor needs of a worker process: a ``trio.Process`` or a forked one."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def stdout(self) -> trio.abc.ReceiveStream | None: ...
    @property
    def stderr(self) -> trio.abc.ReceiveStream | None: ...
    async def wait(self) -> int: ...


def worker_env(
    config: PoolConfig, tags: dict[str, str], placement: Overrides | None = None
) -> dict[str, str]:
    """The environment of a worker (or, without tags, of the template): the host's, its
    import path, ``config.env``, then ``placement`` (its device and thread variables, from
    ``_placement.py``: one thread per BLAS/OpenMP library by default, so N workers do not
    start N x cores threads; the user's own settings win), then the pool's tags."""
    env = dict(os.environ)
    for name in (POOL_TOKEN, WORKER_ID, SLACK):  # a pool opened inside a worker
        env.pop(name, None)
    paths = list(config.pythonpath)
    if config.inherit_path:
        # '' on sys.path means "the current directory" of the host: make it explicit.
        paths += [p or os.getcwd() for p in sys.path]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(config.env)
    apply(env, placement or {})
    env.update(tags)  # last: the pool's tags are how its workers' children are found
    return env


def worker_args(
    config: PoolConfig, socket_path: str, parent_pid: int, adapter: str | None = None
) -> list[str]:
    """Arguments of a worker (all but ``--ready-fd``), the same for every runtime.

    ``adapter``: what ``--adapter`` names, when not ``config.adapter`` (a file adapter made
    absolute, ``_runtimes.Program``). A pool without an adapter passes none: its Python
    workers serve the ``--tool`` functions alone.
    """
    return [
        *served_args(config, adapter),
        "--socket",
        socket_path,
        "--host-pid",
        str(parent_pid),
        "--watch-stdin",
        "--shm-threshold",
        str(config.shm_threshold or 0),
        *(["--lane", lane_path(socket_path)] if config.transport == "local" else []),
    ]


def served_args(config: PoolConfig, adapter: str | None = None) -> list[str]:
    """What a worker serves and how much of it at once: the flags that do not depend on
    where it runs or how it is reached (also those of a worker a launcher starts elsewhere).
    """
    named = config.adapter if adapter is None else adapter
    return [
        *(["--adapter", named] if named is not None else []),
        *tool_args(config),
        "--capacity",
        str(config.worker_capacity),
        "--max-payload",
        str(config.max_payload_bytes),
    ]


def tool_args(config: PoolConfig) -> list[str]:
    """``--tool ENTRY`` for each of the pool's function tools (Python workers only)."""
    return [arg for entry in config.tools for arg in ("--tool", entry)]


def lane_path(socket_path: str) -> str:
    """Where a worker serves the local lane, next to its gRPC socket."""
    return socket_path.removesuffix(".sock") + ".lane"


HOST_STDERR = 2  # where workers write with worker_output="inherit": the host's fd 2


def _env_of(
    program: Program, config: PoolConfig, tags: dict[str, str], placement: Overrides | None
) -> dict[str, str]:
    env = worker_env(config, tags, placement)
    if program.node:
        node_env(env, config.env)
    return env


async def spawn(
    config: PoolConfig,
    program: Program,
    socket_path: str,
    tags: dict[str, str],
    template: Templates | None,
    placement: Overrides | None = None,
) -> tuple[WorkerProcess, int]:
    """Start a worker in its own session (so its children share its process group).

    ``program`` starts it (``_runtimes.py``: its runtime's, or the pool's worker_command).
    Forked from ``template`` when there is one (it falls back to a fresh interpreter if the
    template cannot fork). Its stdout and stderr are pipes to the host, or with
    ``worker_output="inherit"`` the host's stderr itself. ``placement`` is its device and
    thread variables (a fork applies them itself). Returns the process and the read end of
    its ready pipe.
    """
    if template is not None:
        try:
            return await template.fork(
                lambda parent: worker_args(config, socket_path, parent),
                tags[WORKER_ID],
                placement,
            )
        except TemplateUnavailable as exc:
            log.warning("%s: starting a fresh interpreter instead: %s", tags[WORKER_ID], exc)
    ready_r, ready_w = os.pipe()
    argv = [*program.argv, *worker_args(config, socket_path, os.getpid(), program.adapter)]
    argv += ["--ready-fd", str(ready_w)]
    output = subprocess.PIPE if config.worker_output == "log" else HOST_STDERR
    try:
        proc = await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=output,
            start_new_session=True,
            pass_fds=(ready_w,),
            env=_env_of(program, config, tags, placement),
            cwd=config.cwd,
        )
    except BaseException:
        os.close(ready_r)
        raise
    finally:
        os.close(ready_w)
    return proc, ready_r


async def close_pipes(proc: WorkerProcess) -> None:
    """Close the host's ends of a reaped worker's pipes (a forked worker closes its stdin
    itself, when it ends)."""
    streams: list[trio.abc.AsyncResource | None] = [proc.stdout, proc.stderr]
    if isinstance(proc, trio.Process):
        streams.append(proc.stdin)
    for stream in streams:
        if stream is not None:
            await stream.aclose()


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a worker's process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def stop(proc: WorkerProcess, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace``, SIGKILL the group, reap. Shielded, bounded."""
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGTERM)
            with trio.move_on_after(grace):
                await proc.wait()
        # Always: the worker's own children may outlive it in its group.
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
