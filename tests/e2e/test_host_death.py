"""End-to-end: when the host process dies, its workers and their children die too.

A worker has two ways to notice: stdin EOF (the host held the pipe) and PR_SET_PDEATHSIG
(Linux). Each is tested alone, then both together with a real pool in a SIGKILLed host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import msgpack
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._proto.snakepit import v1 as pb
from tests.conftest import pid_alive
from tests.e2e.wire_helpers import run, start_worker
from tests.helpers import all_gone, host_process, wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py

PARENT = "tests.adapters.broken:Parent"

HOST = textwrap.dedent(
    """
    import json, trio
    import snakepit_trio as sp

    async def main():
        async with sp.open_pool("tests.adapters.broken:Parent", size=2) as pool:
            children = [await pool.execute("spawn_child") for _ in range(2)]
            children += await pool.execute("spawn_escapees")
            pids = [w.pid for w in pool.workers()]
            print(json.dumps({"workers": pids, "children": children}), flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


def _spawn_child(sock: str) -> int:
    response = run(
        sock, lambda ch: pb.WorkerStub(ch).execute(pb.ExecuteRequest(tool="spawn_child"))
    )
    pid = msgpack.unpackb(response.result)
    assert isinstance(pid, int) and pid_alive(pid)
    return pid


def test_stdin_eof_kills_the_worker_and_its_children() -> None:
    with start_worker(PARENT, "--watch-stdin", stdin=subprocess.PIPE) as (sock, proc):
        child = _spawn_child(sock)
        assert proc.stdin is not None
        proc.stdin.close()  # what the kernel does when the host dies
        assert all_gone([proc.pid, child], within=10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_parent_death_signal_kills_the_worker_and_its_children() -> None:
    # An intermediate parent starts the worker without the stdin watch, reports, and waits.
    launcher = textwrap.dedent(
        """
        import os, subprocess, sys, tempfile, time
        sock = os.path.join(tempfile.mkdtemp(), "w.sock")
        r, w = os.pipe()
        worker = subprocess.Popen(
            [sys.executable, "-m", "snakepit_trio.worker", "--adapter", sys.argv[1],
             "--socket", sock, "--ready-fd", str(w), "--host-pid", str(os.getpid())],
            pass_fds=(w,), start_new_session=True, stdin=subprocess.DEVNULL)
        os.close(w)
        os.read(r, 100)
        print(worker.pid, sock, flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", launcher, PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            worker_pid, sock = parent.stdout.readline().split()
            child = _spawn_child(sock)
            parent.kill()
            parent.wait()
            assert all_gone([int(worker_pid), child], within=10)
        finally:
            parent.kill()


def test_worker_outlives_the_thread_that_started_it() -> None:
    # trio starts processes from a thread-cache thread that exits when idle; the parent-death
    # signal fires then, and must not be taken for the host's death.
    launcher = textwrap.dedent(
        """
        import os, signal, subprocess, sys, tempfile, threading
        sock = os.path.join(tempfile.mkdtemp(), "w.sock")
        box = []

        def spawn():
            r, w = os.pipe()
            box.append(subprocess.Popen(
                [sys.executable, "-m", "snakepit_trio.worker", "--adapter", sys.argv[1],
                 "--socket", sock, "--ready-fd", str(w), "--host-pid", str(os.getpid())],
                pass_fds=(w,), start_new_session=True, stdin=subprocess.DEVNULL))
            os.close(w)
            os.read(r, 100)  # READY: the worker has armed PR_SET_PDEATHSIG by now

        thread = threading.Thread(target=spawn)
        thread.start()
        thread.join()  # the spawning thread is gone: the worker got its signal
        print(box[0].pid, sock, flush=True)
        sys.stdin.read()
        os.killpg(box[0].pid, signal.SIGKILL)  # as the pool does: the whole group
        box[0].wait()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", launcher, PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        assert parent.stdout is not None and parent.stdin is not None
        worker_pid, sock = parent.stdout.readline().split()
        child = _spawn_child(sock)  # it still answers ...
        assert pid_alive(int(worker_pid)) and pid_alive(child)  # ... and nothing was killed
        parent.stdin.close()
        assert parent.wait(timeout=10) == 0
        assert all_gone([int(worker_pid), child], within=10)


async def test_sigkilled_host_leaves_no_worker_or_grandchild() -> None:
    with trio.fail_after(60):
        async with host_process(HOST) as (host, report):
            doomed = report["workers"] + report["children"]
            assert all(pid_alive(pid) for pid in doomed)
            host.send_signal(signal.SIGKILL)
            await host.wait()
            await wait_for(lambda: not any(pid_alive(pid) for pid in doomed))


async def test_children_that_left_the_process_group_die_with_a_crashed_worker() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(PARENT, size=1) as pool:
            assert await pool.execute("try_setsid") == "PermissionError"
            escapees = await pool.execute("spawn_escapees")
            assert all(pid_alive(pid) for pid in escapees)
            [worker] = pool.workers()
            os.kill(worker.pid, signal.SIGKILL)
            await wait_for(lambda: not any(pid_alive(pid) for pid in escapees))
            await wait_for(lambda: pool.stats().restarts == 1 and pool.stats().workers == 1)
            escapees = await pool.execute("spawn_escapees")
        # A normal exit takes them down too.
        await wait_for(lambda: not any(pid_alive(pid) for pid in escapees))
