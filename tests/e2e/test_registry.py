"""The worker registry: leftovers of a dead host are swept, and nothing else is touched."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._supervision._registry import Entry, Registry, started_at
from tests.conftest import pid_alive
from tests.helpers import host_process, wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py

HOST = textwrap.dedent(
    """
    import json, os, sys, psutil, trio
    import snakepit_trio as sp

    async def main():
        async with sp.open_pool("tests.adapters.broken:Parent", size=2,
                                state_dir=sys.argv[1]) as pool:
            children = await pool.execute("spawn_escapees")
            pids = [w.pid for w in pool.workers()]
            # Workers forked from a template process are its children, not ours.
            template = sorted({psutil.Process(p).ppid() for p in pids} - {os.getpid()})
            print(json.dumps({"workers": pids, "children": children, "template": template}),
                  flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


@pytest.fixture
def orphans() -> Iterator[list[psutil.Process]]:
    """The processes a test orphans on purpose, SIGKILLed at its end whatever happened: a
    sweep that failed must not leave them stopped on the machine (psutil checks that each
    is still that process, not a reused pid)."""
    made: list[psutil.Process] = []
    yield made
    for proc in made:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


async def _orphan_stopped_workers(
    state_dir: Path, orphans: list[psutil.Process]
) -> tuple[list[int], int]:
    """Run a pool in a host process, SIGSTOP its workers, SIGKILL the host.

    Stopped workers (and a stopped template process) cannot act on the host's death, so
    they and their children stay: what a sweep is for. Returns their pids, and how many
    rows the registry holds for them (a worker or a template each).
    """
    async with host_process(HOST, str(state_dir)) as (host, report):
        for pid in report["template"] + report["workers"] + report["children"]:
            orphans.append(psutil.Process(pid))
            os.kill(pid, signal.SIGSTOP)
        host.send_signal(signal.SIGKILL)
        await host.wait()
    left: list[int] = report["template"] + report["workers"] + report["children"]
    assert all(pid_alive(pid) for pid in left)
    return left, len(report["workers"]) + len(report["template"])


def _cli(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "snakepit_trio", "cleanup", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout


async def test_open_pool_sweeps_leftovers_of_a_dead_host_only(
    tmp_path: Path, orphans: list[psutil.Process]
) -> None:
    with trio.fail_after(60):
        left, rows = await _orphan_stopped_workers(tmp_path, orphans)
        registry = Registry(tmp_path)
        assert len(registry.entries()) == rows  # recorded, and nobody removed them

        # An unrelated process holding a recorded pid (pid reuse), under a dead host, and
        # a row of a live host (this process): neither may be touched.
        bystander = await trio.lowlevel.open_process(
            [sys.executable, "-c", "import time; time.sleep(60)"]
        )
        try:
            me, started = os.getpid(), started_at(os.getpid()) or 0.0
            registry.add(Entry("deadbeef", 1_000_000, 1.0, "x-0", bystander.pid, 1.0, 1))
            registry.add(Entry("alive", me, started, "y-0", bystander.pid, 1.0, 1))

            async with sp.open_pool(
                "tests.adapters.basic:Echo", size=1, state_dir=str(tmp_path)
            ) as pool:
                await wait_for(lambda: not any(pid_alive(pid) for pid in left))
                assert pid_alive(bystander.pid)
                tokens = {e.token for e in registry.entries()}
                assert tokens == {"alive", pool._engine.launcher.records.token}
                assert await pool.execute("add", {"a": 1}) == 2
            assert {e.token for e in registry.entries()} == {"alive"}  # ours are gone
        finally:
            bystander.kill()
            await bystander.wait()


async def test_cleanup_command_lists_then_kills(
    tmp_path: Path, orphans: list[psutil.Process]
) -> None:
    with trio.fail_after(60):
        left, rows = await _orphan_stopped_workers(tmp_path, orphans)
        listing = await trio.to_thread.run_sync(_cli, "--dry-run", "--state-dir", str(tmp_path))
        assert listing.count("would kill") == rows
        for pid in left:
            assert str(pid) in listing
        assert all(pid_alive(pid) for pid in left)  # a dry run kills nothing

        done = await trio.to_thread.run_sync(_cli, "--state-dir", str(tmp_path))
        assert done.count("killed") == rows
        await wait_for(lambda: not any(pid_alive(pid) for pid in left))
        assert Registry(tmp_path).entries() == []
        again = await trio.to_thread.run_sync(_cli, "--state-dir", str(tmp_path))
        assert "no leftovers" in again


async def test_an_unusable_registry_is_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with trio.fail_after(30):
        async with sp.open_pool(
            "tests.adapters.basic:Echo", size=1, state_dir=str(blocker / "state")
        ) as pool:
            assert pool._engine.launcher.records.registry is None
            assert await pool.execute("add", {"a": 1}) == 2


async def test_registry_can_be_turned_off(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with sp.open_pool(
            "tests.adapters.basic:Echo", size=1, registry=False, state_dir=str(tmp_path)
        ) as pool:
            assert pool._engine.launcher.records.registry is None
            assert await pool.execute("add", {"a": 1}) == 2
    assert os.listdir(tmp_path) == []


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("snakepit-trio")
    assert script.exists(), "pyproject's [project.scripts] entry is not installed"
    out = subprocess.run(
        [str(script), "cleanup", "--dry-run", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "no leftovers" in out.stdout
