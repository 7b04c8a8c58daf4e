"""Workers listening on TCP, started by a test as an operator would, and TLS files for them.

``tls_files`` makes a throwaway CA and a certificate for 127.0.0.1 (trustme); ``tcp_worker``
runs ``python -m snakepit_trio.worker --listen tcp://127.0.0.1:PORT`` (port 0: any free
one), or the Node.js worker's script with the same flags (``runtime="node"``, the adapter a
``.mjs`` path), waits for its READY line, and stops it on exit (SIGTERM, then SIGKILL), so no
worker outlives its test.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import trio
import trustme

from snakepit_trio._supervision._runtimes import node_script

TOKEN = "a-test-token-0123456789abcdef"


@attrs.frozen
class TLSFiles:
    ca: pathlib.Path  # the CA's certificate (what a host trusts)
    cert: pathlib.Path  # the worker's certificate chain, for 127.0.0.1 and localhost
    key: pathlib.Path


def tls_files(folder: pathlib.Path, name: str = "worker") -> TLSFiles:
    """A new CA, and a certificate it signed for 127.0.0.1 and localhost (trustme's are good
    for both ends: a worker's, or a host's client certificate). ``name``: the files' stem."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(folder / f"{name}-ca.pem", folder / f"{name}.pem", folder / f"{name}.key")
    ca.cert_pem.write_to_path(str(files.ca))
    issued.private_key_pem.write_to_path(str(files.key))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(files.cert), append=True)
    return files


def token_file(folder: pathlib.Path, token: str = TOKEN) -> pathlib.Path:
    path = folder / f"token-{len(list(folder.glob('token-*')))}"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


@attrs.define
class TcpWorker:
    process: trio.Process
    port: int
    stderr: pathlib.Path  # everything the worker logged

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.stderr.read_text()


def new_log(folder: pathlib.Path) -> pathlib.Path:
    return folder / f"worker-{len(list(folder.glob('worker-*.log')))}.log"


def worker_command(
    adapter: str,
    tokens: pathlib.Path,
    tls: TLSFiles | None,
    port: int = 0,
    extra: Sequence[str] = (),
    runtime: str = "python",
) -> list[str]:
    command = [*worker_program(runtime, adapter), "--adapter", adapter, *extra]
    command += ["--listen", f"tcp://127.0.0.1:{port}", "--token-file", str(tokens)]
    if tls is not None:
        command += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    return command


def worker_program(runtime: str, adapter: str) -> list[str]:
    """What starts a worker of ``runtime``, as a pool would find it."""
    if runtime == "python":
        return [sys.executable, "-m", "snakepit_trio.worker"]
    assert runtime == "node", runtime
    node = shutil.which("node")
    assert node is not None, "the node runtime's tests need Node.js 20 or later on PATH"
    return [node, node_script(adapter)]


@asynccontextmanager
async def tcp_worker(
    folder: pathlib.Path,
    adapter: str = "tests.adapters.basic:Echo",
    *,
    tls: TLSFiles | None,
    tokens: pathlib.Path | None = None,
    port: int = 0,
    extra: Sequence[str] = (),
    runtime: str = "python",
    wrap: Sequence[str] = (),
) -> AsyncIterator[TcpWorker]:
    """Start a worker listening on 127.0.0.1; yield it once it has said READY.

    ``extra``: more worker arguments (``--capacity 2``, ``--max-payload N``); ``runtime``:
    ``"python"`` or ``"node"`` (then ``adapter`` is the path of a ``.mjs`` module). ``wrap``:
    a command the worker runs under, which must exec it in the same process (``unshare``).
    """
    tokens = tokens if tokens is not None else token_file(folder)
    command = [*wrap, *worker_command(adapter, tokens, tls, port, extra, runtime)]
    async with listening(folder, command) as (process, port_now, stderr_path):
        yield TcpWorker(process, port_now, stderr_path)


@asynccontextmanager
async def listening(
    folder: pathlib.Path, command: Sequence[str]
) -> AsyncIterator[tuple[trio.Process, int, pathlib.Path]]:
    """Run ``command`` (a worker with ``--listen``), its stderr in a new log in ``folder``;
    yield it, the port its READY line names and the log; stop it on exit."""
    stderr_path = new_log(folder)
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            list(command),
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                data = await process.stdout.receive_some(256)
                if not data:
                    raise AssertionError(f"the worker exited: {stderr_path.read_text()}")
                line += data
        word, pid, port = line.decode().split()
        assert (word, int(pid)) == ("READY", process.pid), line
        yield process, int(port), stderr_path
    finally:
        with trio.CancelScope(shield=True):
            await stop(process)


async def stop(process: trio.Process) -> None:
    """SIGTERM, a grace of 10 s, then SIGKILL; always waits for the process."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(10):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    if process.stdout is not None:
        await process.stdout.aclose()
