"""Directories other local users share: /dev/shm and the registry's state directory.

Another user cannot be played by a test that runs as one user, so each attack is staged
with what that user could leave behind, made by us: a registry row naming a process of
ours that is not a worker, a state directory or registry file others may write to, an
entry under a pool's shared-memory prefix that cannot be removed, segments that are not
ours (owner given to the sweep, a mode we never create them with, a symbolic link).
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _shm
from snakepit_trio._shared._tagging import POOL_TOKEN, WORKER_ID
from snakepit_trio._supervision._registry import Entry, Registry, started_at
from tests.conftest import pid_alive

TRANSPORT_AGNOSTIC = True  # see conftest.py

ECHO = "tests.adapters.basic:Echo"
BUFFERS = "tests.adapters.basic:Buffers"
MB = 2**20
DEAD_HOST = 1_000_000  # a host pid recorded with a start time no process has
NOBODY = 65534


def _dead_host_row(worker_pid: int, worker_started: float, token: str = "") -> Entry:
    token = token or secrets.token_hex(8)
    return Entry(token, DEAD_HOST, 1.0, "w-0", worker_pid, worker_started, 1)


@asynccontextmanager
async def _sleeper(env: dict[str, str] | None = None) -> AsyncIterator[trio.Process]:
    """A process of ours that is no worker (with ``env`` added to its environment)."""
    proc = await trio.lowlevel.open_process(["sleep", "60"], env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        proc.kill()
        await proc.wait()


def _warnings(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")
async def test_segment_names_do_not_reveal_the_pool_token() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
            token = pool._engine.launcher.records.token
            prefix = _shm.prefix(token)
            blob = os.urandom(2 * MB)
            assert await pool.execute("echo", {"value": blob}) == blob
            # Both the host's argument and the worker's result stay cached for reuse.
            names = [n for n in os.listdir(_shm.SHM_DIR) if n.startswith(prefix)]
            assert len(names) >= 2
            pieces = {token[i : i + 8] for i in range(len(token) - 7)}
            leaks = [(name, piece) for name in names for piece in pieces if piece in name]
            assert leaks == []
        # Found by that prefix all the same: nothing outlives the pool.
        assert [n for n in os.listdir(_shm.SHM_DIR) if n.startswith(prefix)] == []


async def test_a_row_naming_a_process_that_is_no_worker_kills_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    with trio.fail_after(30):
        async with _sleeper() as bystander:
            # Its pid and its true start time: what anyone can read in /proc.
            started = started_at(bystander.pid)
            assert started is not None
            Registry(tmp_path).add(_dead_host_row(bystander.pid, started))
            async with sp.open_pool(ECHO, size=1, state_dir=str(tmp_path)) as pool:
                assert pool._engine.launcher.records.registry is not None
                assert await pool.execute("add", {"a": 1}) == 2
            assert pid_alive(bystander.pid)
            assert f"pid {bystander.pid}" in _warnings(caplog)
            assert "left alone" in _warnings(caplog)
            assert Registry(tmp_path).entries() == []  # the row itself is forgotten


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
async def test_a_state_dir_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with trio.fail_after(30):
        with pytest.raises(PermissionError) as caught:
            async with sp.open_pool(ECHO, size=1, state_dir=str(shared)):
                pytest.fail("the pool opened")  # pragma: no cover
    message = str(caught.value)
    assert str(shared) in message and f"chmod 700 {shared}" in message
    assert "registry=False" in message
    assert not (shared / "workers.sqlite3").exists()  # nothing was read or written there


def test_the_cleanup_command_refuses_a_state_dir_others_may_write(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    out = subprocess.run(
        [sys.executable, "-m", "snakepit_trio", "cleanup", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert f"chmod 700 {tmp_path}" in out.stderr and "Traceback" not in out.stderr


def _give_to_nobody(path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    os.chown(path, NOBODY, NOBODY)
    return f"owned by uid {NOBODY}"


def _open_to_all(path: Path) -> str:
    path.chmod(0o666)
    return "mode 0o666"


def _a_link(path: Path) -> str:
    real = path.with_name("elsewhere.sqlite3")
    path.rename(real)
    path.symlink_to(real)
    return "a symbolic link"


@pytest.mark.parametrize("plant", [_open_to_all, _give_to_nobody, _a_link])
async def test_a_registry_file_others_may_write_is_not_acted_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, plant: Callable[[Path], str]
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    token = secrets.token_hex(8)
    with trio.fail_after(30):
        # What would be a leftover of a dead host: a process carrying a pool's tags.
        async with _sleeper({POOL_TOKEN: token, WORKER_ID: "w-0"}) as tagged:
            started = started_at(tagged.pid)
            assert started is not None
            registry = Registry(tmp_path)
            registry.add(_dead_host_row(tagged.pid, started, token))
            why = plant(registry.path)  # anyone could have written that row
            async with sp.open_pool(ECHO, size=1, state_dir=str(tmp_path)) as pool:
                assert pool._engine.launcher.records.registry is None
                assert await pool.execute("add", {"a": 1}) == 2
            assert pid_alive(tagged.pid)
            warned = _warnings(caplog)
            assert str(registry.path) in warned and why in warned


@pytest.fixture
def planted() -> Iterator[tuple[str, Path]]:
    """A dead pool's token, and an entry under its shared-memory prefix that no sweep can
    remove (a directory: unlink() fails), as another user's file would be."""
    token = secrets.token_hex(8)
    entry = Path(_shm.SHM_DIR, _shm.prefix(token) + "planted")
    entry.mkdir()
    yield token, entry
    assert entry.is_dir()  # left alone
    entry.rmdir()


@pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")
async def test_an_entry_planted_under_a_dead_pools_prefix_does_not_disable_the_registry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, planted: tuple[str, Path]
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    token, entry = planted
    Registry(tmp_path).add(_dead_host_row(os.getpid(), 1.0, token))
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, state_dir=str(tmp_path)) as pool:
            assert pool._engine.launcher.records.registry is not None
            assert await pool.execute("add", {"a": 1}) == 2
    assert entry.name in _warnings(caplog)  # left alone, and said so
    assert Registry(tmp_path).entries() == []


@pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")
@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_segment_of_another_user_is_left_alone_and_not_mapped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    prefix = _shm.prefix(secrets.token_hex(8))
    path = Path(_shm.SHM_DIR, _shm.create(prefix, memoryview(b"x" * 4096)))
    try:
        os.chown(path, NOBODY, NOBODY)  # as if that user had planted it
        assert _shm.sweep(prefix) == 0
        assert path.exists() and path.name in _warnings(caplog)
        with pytest.raises(PermissionError, match=f"owned by uid {NOBODY}"):
            _shm.attach(path.name, 4096)
        assert not _shm.rewrite(path.name, memoryview(b"secret"))
    finally:
        path.unlink()


@pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")
def test_segments_of_another_user_or_mode_are_not_trusted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    prefix = _shm.prefix(secrets.token_hex(8), "w-0")
    name = _shm.create(prefix, memoryview(b"x" * 4096))
    path = Path(_shm.SHM_DIR, name)
    target = Path(_shm.SHM_DIR, _shm.create(prefix + "target-", memoryview(b"t" * 16)))
    link = Path(_shm.SHM_DIR, prefix + "link")
    try:
        with _shm.attach(name, 4096) as mapping:  # ours, as create() makes them
            assert mapping[:1] == b"x"

        # The sweep of another user's entries: it leaves them and says so.
        assert _shm.sweep(prefix, owner=os.geteuid() + 1) == 0
        assert path.exists() and name in _warnings(caplog)

        # A segment anyone may read or write is not one we made.
        path.chmod(0o644)
        with pytest.raises(PermissionError, match="mode 0o644"):
            _shm.attach(name, 4096)
        assert not _shm.rewrite(name, memoryview(b"secret"))
        assert path.read_bytes()[:6] == b"xxxxxx"

        # A symbolic link under a segment's name is neither followed nor written through.
        link.symlink_to(target)
        with pytest.raises(OSError):
            _shm.attach(link.name, 16)
        assert not _shm.rewrite(link.name, memoryview(b"secret"))
        assert target.read_bytes() == b"t" * 16
        assert _shm.sweep(prefix) == 2  # ours (whatever their mode), not the link
        assert link.is_symlink()
    finally:
        for leftover in (path, target, link):
            leftover.unlink(missing_ok=True)
