"""Partitions between a host and workers in other network namespaces (root only).

Each worker listens on its namespace's address, with TLS and a token; the pool reaches them
from the root namespace over a veth pair whose root side is the switch: ``ip link set ...
down`` cuts the link without a FIN or RST reaching either side, so only heartbeats (on the
host) and ``--orphan-timeout`` (on the worker) can tell.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for
from tests.lost_host import waiting_host
from tests.netns.conftest import Certificates, Namespace, ns_worker
from tests.tcp_workers import TOKEN

MARKED = "tests.adapters.orphans:Marked"
HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT = 0.25, 2.0
SLACK = 15.0  # on top of heartbeat_timeout: a loaded 2-core machine


def _pool(
    namespaces: list[Namespace], certificates: Certificates
) -> AbstractAsyncContextManager[sp.Pool]:
    return sp.open_pool(
        MARKED,
        endpoints=[ns.endpoint for ns in namespaces],
        token=TOKEN,
        tls=sp.TLSConfig(ca=str(certificates.ca)),
        # Reconnect quickly, and never give up on a partitioned endpoint.
        restart=sp.RestartPolicy(initial=0.1, factor=1.5, max_delay=0.5),
        crash_threshold=None,
        heartbeat_interval=HEARTBEAT_INTERVAL,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    )


async def test_a_partition_fails_the_cut_worker_and_a_healed_link_restores_it(
    tmp_path: pathlib.Path,
    make_namespace: Callable[[], Namespace],
    certificates: Certificates,
) -> None:
    one, two = make_namespace(), make_namespace()
    marker = tmp_path / "marker"
    # The cut worker's held call ends when the host's FIN reaches it over the healed link,
    # or, if TCP's backed-off retransmission is late, when the worker drops the connection
    # that has been silent for its orphan timeout: short enough for the deadlines below,
    # far longer than the partition (the reconnected host PINGs it again within seconds).
    orphan = ["--orphan-timeout", "20"]
    with trio.fail_after(150):
        async with (
            ns_worker(tmp_path, one, certificates, extra=orphan) as w1,
            ns_worker(tmp_path, two, certificates, extra=orphan) as w2,
            _pool([one, two], certificates) as pool,
        ):
            pids = {w1.process.pid: w1, w2.process.pid: w2}
            assert {w.pid for w in pool.workers()} == set(pids)
            session = await pool.open_session()  # strict: bound to one worker
            bound = pids[await session.execute("pid")]
            other = w2 if bound is w1 else w1
            failures: list[BaseException] = []

            async def held_call() -> None:
                try:
                    await session.execute("marked", {"marker": str(marker)})
                except sp.WorkerCrashed as exc:
                    failures.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(held_call)
                await wait_for(marker.exists, timeout=30)
                bound.namespace.link(up=False)
                cut = trio.current_time()
            took = trio.current_time() - cut
            (crash,) = failures
            assert isinstance(crash, sp.WorkerCrashed)
            assert crash.cause == "disconnected", crash
            assert "went silent for" in str(crash)  # the heartbeats told, not the socket
            assert crash.running == ("marked",)
            assert took < HEARTBEAT_TIMEOUT + SLACK
            with pytest.raises(sp.SessionLost):
                await session.execute("pid")
            # The other worker serves on while the link is down.
            assert await pool.execute("pid") == other.process.pid
            assert bound.process.returncode is None  # alive, behind the partition

            bound.namespace.link(up=True)
            await wait_for(
                lambda: (
                    sorted((w.pid, w.state) for w in pool.workers())
                    == sorted((pid, "ready") for pid in pids)
                ),
                timeout=60,
            )
            # Both slots serve again: two calls held at once take one worker each (the cut
            # worker's old call ends once the healed link delivers the host's FIN).
            got: list[int] = []

            async def held_pid() -> None:
                got.append(await pool.execute("held_pid", {"seconds": 0.5}))

            with trio.fail_after(60):
                while sorted(got[-2:]) != sorted(pids):
                    got.clear()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(held_pid)
                        nursery.start_soon(held_pid)
            assert marker.read_text() == "cancelled"


@pytest.mark.parametrize("link", ["up", "down"])
async def test_a_killed_host_leaves_workers_that_exit_after_the_orphan_timeout(
    tmp_path: pathlib.Path,
    make_namespace: Callable[[], Namespace],
    certificates: Certificates,
    link: str,
) -> None:
    """Link up, the host's kernel closes the connection (the call is cancelled at once);
    link down, nothing reaches the worker and only its orphan timeout ends the call."""
    namespace = make_namespace()
    marker = tmp_path / "marker"
    with trio.fail_after(90):
        async with (
            waiting_host(tmp_path, "marked", marker, certificates.ca) as (host, connect),
            ns_worker(tmp_path, namespace, certificates, extra=["--orphan-timeout", "2"]) as w,
        ):
            connect(namespace.endpoint)
            await wait_for(marker.exists, timeout=30)  # its call runs
            if link == "down":
                namespace.link(up=False)
            host.kill()
            await host.wait()
            with trio.fail_after(2 + SLACK):
                await w.process.wait()
            assert w.process.returncode == 0
            assert "snakepit worker: no host for 2 s (--orphan-timeout)" in w.log()
            assert marker.read_text() == "cancelled"
