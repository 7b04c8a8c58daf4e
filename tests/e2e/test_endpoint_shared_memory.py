"""Shared memory with endpoints: only with a worker the handshake proves is on this host.

e2e: real workers listening on 127.0.0.1 (``tests/tcp_workers.py``). A worker on this host
gets large arguments as views of the host's segments and sends large results so; a worker
that is "elsewhere" gets everything inline. Elsewhere, honestly: the worker runs in a mount
namespace (``unshare``) with either another /etc/machine-id (another host id) or a /dev/shm
of its own (the same host id, but the probe segment cannot be opened), so the real checks
of the handshake decide (``_shared/_samehost.py``).
"""

from __future__ import annotations

import mmap
import os
import pathlib
import shutil
from collections.abc import Sequence

import numpy as np
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _samehost, _shm
from tests.tcp_workers import TOKEN, tcp_worker

TRANSPORT_AGNOSTIC = True
BUFFERS = "tests.adapters.basic:Buffers"
MB = 2**20

pytestmark = pytest.mark.skipif(
    not _shm.available() or _samehost.host_id() is None, reason="needs /dev/shm and a host id"
)
needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0,
    reason="a worker elsewhere is made with unshare --mount (root)",
)


def _is_mapped(array: object) -> bool:
    base = getattr(array, "base", None)
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return isinstance(base, mmap.mmap)


def _segments_of(prefix: str) -> list[str]:
    return sorted(name for name in os.listdir(_shm.SHM_DIR) if name.startswith(prefix))


def _pool_prefix(pool: sp.Pool) -> str:
    return _shm.prefix(pool._engine.launcher.token)  # type: ignore[attr-defined]


def other_machine(folder: pathlib.Path) -> list[str]:
    """Run the worker where /etc/machine-id says another machine: another host id."""
    machine_id = folder / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    script = f'mount --bind {machine_id} /etc/machine-id && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


def own_dev_shm(folder: pathlib.Path) -> list[str]:
    """Run the worker with a /dev/shm of its own: this host's id, but not our segments."""
    script = 'mount -t tmpfs tmpfs /dev/shm && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


async def test_a_worker_on_this_host_maps_the_segments_both_ways(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(60):
        async with (
            tcp_worker(tmp_path, BUFFERS, tls=None) as worker,
            sp.open_pool(
                BUFFERS, endpoints=[worker.endpoint], token=TOKEN, shm_threshold=MB
            ) as pool,
        ):
            prefix = _pool_prefix(pool)
            [info] = pool.workers()
            array = np.random.default_rng(3).random(MB)  # 8 MB
            assert await pool.execute("mapped", {"value": array}) == [worker.process.pid, True]
            back = await pool.execute("echo", {"value": array})
            assert np.array_equal(back, array)
            assert _is_mapped(back) and not back.flags.writeable  # the worker's segment,
            assert _segments_of(prefix + info.id + "-")  # named as the HELLO told it
            blob = os.urandom(3 * MB)
            assert await pool.execute("echo", {"value": blob}) == blob
            small = await pool.execute("echo", {"value": np.arange(10.0)})
            assert not _is_mapped(small)  # below the threshold: inline
            del back
    assert _segments_of(prefix) == []  # nothing outlives the pool, probes included


async def test_without_a_threshold_nothing_is_offered(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(60):
        async with (
            tcp_worker(tmp_path, BUFFERS, tls=None) as worker,
            sp.open_pool(
                BUFFERS, endpoints=[worker.endpoint], token=TOKEN, shm_threshold=None
            ) as pool,
        ):
            array = np.random.default_rng(4).random(MB)
            assert await pool.execute("mapped", {"value": array}) == [worker.process.pid, False]
            back = await pool.execute("echo", {"value": array})
            assert np.array_equal(back, array) and not _is_mapped(back)
            assert _segments_of(_pool_prefix(pool)) == []


@needs_unshare
@pytest.mark.parametrize(
    ("elsewhere", "logged"),
    [(other_machine, "another host"), (own_dev_shm, "probe segment cannot be opened")],
    ids=["another-machine-id", "own-dev-shm"],
)
async def test_a_worker_elsewhere_gets_everything_inline(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, elsewhere: object, logged: str
) -> None:
    monkeypatch.setenv("SNAKEPIT_WORKER_LOG_LEVEL", "INFO")  # its reason, on its stderr
    wrap: Sequence[str] = elsewhere(tmp_path)  # type: ignore[operator]
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, BUFFERS, tls=None, wrap=wrap) as worker:
            async with sp.open_pool(
                BUFFERS, endpoints=[worker.endpoint], token=TOKEN, shm_threshold=MB
            ) as pool:
                prefix = _pool_prefix(pool)
                array = np.random.default_rng(5).random(MB)
                assert await pool.execute("mapped", {"value": array}) == [worker.process.pid, False]
                back = await pool.execute("echo", {"value": array})
                assert np.array_equal(back, array) and not _is_mapped(back)
                blob = os.urandom(3 * MB)
                assert await pool.execute("echo", {"value": {"b": blob}}) == {"b": blob}
                assert _segments_of(prefix) == []  # no segment made for nothing
            log = worker.log()
    assert logged in log, log
    assert _segments_of(prefix) == []


@needs_unshare
async def test_a_pool_with_workers_here_and_elsewhere_sends_each_what_it_can_read(
    tmp_path: pathlib.Path,
) -> None:
    with trio.fail_after(90):
        async with (
            tcp_worker(tmp_path, BUFFERS, tls=None) as here,
            tcp_worker(tmp_path, BUFFERS, tls=None, wrap=other_machine(tmp_path)) as away,
            sp.open_pool(
                BUFFERS,
                endpoints=[here.endpoint, away.endpoint],
                token=TOKEN,
                shm_threshold=MB,
                prefetch=0,  # one call per worker at a time: two calls take both
            ) as pool,
        ):
            array = np.random.default_rng(6).random(MB)
            answers: list[list[object]] = []

            async def one() -> None:
                # Made for segments (a worker of the pool maps them), re-encoded inline for
                # the worker that does not.
                answers.append(await pool.execute("mapped", {"value": array, "seconds": 1.0}))

            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(one)
            assert sorted(map(tuple, answers)) == sorted(
                [(here.process.pid, True), (away.process.pid, False)]
            )
            for _ in range(4):
                back = await pool.execute("echo", {"value": array})
                assert np.array_equal(back, array)


async def test_a_probe_that_cannot_be_made_leaves_the_connection_inline(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_samehost, "offer", full)
    with trio.fail_after(60):
        async with (
            tcp_worker(tmp_path, BUFFERS, tls=None) as worker,
            sp.open_pool(
                BUFFERS, endpoints=[worker.endpoint], token=TOKEN, shm_threshold=MB
            ) as pool,
        ):
            array = np.random.default_rng(7).random(MB)
            assert await pool.execute("mapped", {"value": array}) == [worker.process.pid, False]
            back = await pool.execute("echo", {"value": array})
            assert np.array_equal(back, array) and not _is_mapped(back)
    assert "no shared memory offered: [Errno 28] No space left on device" in caplog.text
