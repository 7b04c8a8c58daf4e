"""Which program starts a worker of each runtime, and what its ``--adapter`` names.

Every worker takes the same flags (``_spawn.worker_args``), whatever its language: only the
program in front of them differs. A Python worker is ``python -m snakepit_trio.worker``; a
Node.js worker is the ``snakepit-trio-worker`` npm package's script, run by ``node``; a worker
in any other language is the user's ``worker_command``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import attrs

from .._config import PoolConfig
from .._errors import WorkerStartError

NODE_PACKAGE = "snakepit-trio-worker"
NODE_SCRIPT = ("bin", "snakepit-worker.mjs")
NODE_WORKER_VARIABLE = "SNAKEPIT_TRIO_NODE_WORKER"  # the script's path, to pick one by hand
# Where the package sits in a checkout of this project (beside the Python package).
_CHECKOUT = Path(__file__).resolve().parents[2] / "workers" / "node"


@attrs.frozen
class Program:
    """How to start one worker: ``argv`` then the worker flags, ``--adapter`` ``adapter``
    (None: a Python worker that serves its ``--tool`` functions alone)."""

    argv: tuple[str, ...]
    adapter: str | None
    maps_segments: bool  # a snakepit_trio Python worker: it reads and makes shm segments
    forks: bool  # ... started as config.python runs it: the template can fork it instead
    node: bool = False  # a Node.js worker (its environment is scrubbed: node_env)


def program(config: PoolConfig, cwd: str | None = None) -> Program:
    """The program that starts the pool's workers, found now (when the pool opens).

    Args:
        config: the pool's configuration (``runtime``, ``worker_command``, ``adapter``).
        cwd: what a relative adapter path is relative to (default: the current directory).

    Returns:
        The program and the adapter argument (a file adapter made absolute).

    Raises:
        WorkerStartError: ``node`` is not on PATH, the adapter file does not exist, or the
            Node worker package cannot be found; the message says what to install or set.
    """
    if config.runtime == "python":
        if config.worker_command is not None:
            return Program(config.worker_command, config.adapter, True, forks=False)
        argv = (config.python, "-m", "snakepit_trio.worker")
        return Program(argv, config.adapter, maps_segments=True, forks=True)
    assert config.adapter is not None  # PoolConfig requires one for other runtimes
    adapter = os.path.join(cwd or os.getcwd(), os.path.expanduser(config.adapter))
    if config.worker_command is not None:
        known = os.path.exists(adapter)  # else it is the command's own kind of name
        named = adapter if known else config.adapter
        return Program(config.worker_command, named, maps_segments=False, forks=False)
    if not os.path.isfile(adapter):
        raise WorkerStartError(
            config.name,
            f"the adapter {config.adapter!r} is not a file (looked at {adapter}); with "
            f"runtime={config.runtime!r} the adapter is the path of its module file",
        )
    node = shutil.which("node")
    if node is None:
        raise WorkerStartError(
            config.name,
            "runtime='node' needs Node.js 20 or later: no 'node' on PATH; install it, or "
            "pass worker_command=['/path/to/node', '/path/to/snakepit-worker.mjs']",
        )
    return Program(
        (node, node_script(adapter)), adapter, maps_segments=False, forks=False, node=True
    )


_INSPECT = re.compile(r"^--inspect(-brk|-wait|-port)?(=|$)")


def node_env(env: dict[str, str], chosen: Mapping[str, str]) -> None:
    """Drop ``--inspect`` flags that a Node worker would inherit through ``NODE_OPTIONS``.

    Each would open a debugger port in every worker (anyone who reaches it runs code in the
    worker). The host's own ``NODE_OPTIONS`` is dropped of them; one given in the pool's
    ``env`` (``chosen``) is the user's choice for the workers, and is kept as it is.
    """
    if "NODE_OPTIONS" in chosen or "NODE_OPTIONS" not in env:
        return
    kept = [flag for flag in env["NODE_OPTIONS"].split() if not _INSPECT.match(flag)]
    if kept:
        env["NODE_OPTIONS"] = " ".join(kept)
    else:
        del env["NODE_OPTIONS"]


def node_script(adapter: str) -> str:
    """The Node worker's script: ``$SNAKEPIT_TRIO_NODE_WORKER``, else the npm package in a
    ``node_modules`` beside the adapter or above it (as Node itself resolves packages),
    else the package in this project's checkout.

    Raises:
        WorkerStartError: none of them exists.
    """
    chosen = os.environ.get(NODE_WORKER_VARIABLE)
    if chosen:
        if not os.path.isfile(chosen):
            raise WorkerStartError(
                "node", f"${NODE_WORKER_VARIABLE}={chosen!r} is not a file; unset it or fix it"
            )
        return chosen
    for folder in Path(adapter).parents:
        script = folder.joinpath("node_modules", NODE_PACKAGE, *NODE_SCRIPT)
        if script.is_file():
            return str(script)
    script = _CHECKOUT.joinpath(*NODE_SCRIPT)
    if script.is_file():
        if not _CHECKOUT.joinpath("node_modules").is_dir():
            raise WorkerStartError(
                "node",
                f"the Node.js worker's dependencies are not installed: run 'npm ci' in {_CHECKOUT}",
            )
        return str(script)
    raise WorkerStartError(
        "node",
        f"the Node.js worker package is not installed: run 'npm install {NODE_PACKAGE}' "
        f"where the adapter is, or set ${NODE_WORKER_VARIABLE} to its "
        f"{'/'.join(NODE_SCRIPT)}",
    )
