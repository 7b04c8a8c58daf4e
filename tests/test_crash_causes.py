"""Crash classification: what a WorkerCrashed says about how the worker died."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from snakepit_trio._supervision import _crash
from snakepit_trio._supervision._crash import classify, oom_kill_count

MB = 2**20


def test_the_pools_own_kills_keep_their_reason() -> None:
    v = classify(
        exit_code=None,
        signal=signal.SIGKILL,
        killed_by_pool=("unresponsive", "no answer to heartbeats"),
        last_rss=10 * MB,
        oom_kills_rose=True,
    )
    assert (v.cause, v.detail) == ("unresponsive", "no answer to heartbeats")


def test_a_broken_connection_does_not_hide_the_workers_own_exit() -> None:
    # The pool kills with signals: an exit code means the worker ended by itself, and its
    # connection broke because of that.
    exited = classify(
        exit_code=5, signal=None, killed_by_pool=("disconnected", "the worker closed the lane"),
        last_rss=None, oom_kills_rose=False,
    )  # fmt: skip
    assert exited.cause == "exit"
    killed = classify(
        exit_code=None, signal=signal.SIGKILL,
        killed_by_pool=("disconnected", "the worker closed the lane"), last_rss=None,
        oom_kills_rose=False,
    )  # fmt: skip
    assert (killed.cause, killed.detail) == ("disconnected", "the worker closed the lane")


def test_sigkill_with_oom_evidence_is_likely_oom() -> None:
    v = classify(
        exit_code=None, signal=signal.SIGKILL, killed_by_pool=None, last_rss=900 * MB,
        oom_kills_rose=True,
    )  # fmt: skip
    assert v.cause == "oom" and "oom_kill count rose" in v.detail and "900 MB" in v.detail
    near = classify(
        exit_code=None, signal=signal.SIGKILL, killed_by_pool=None, last_rss=95 * MB,
        oom_kills_rose=False, memory_limit_mb=100,
    )  # fmt: skip
    assert near.cause == "oom" and "max_memory_mb" in near.detail


def test_sigkill_without_evidence_and_other_exits() -> None:
    v = classify(
        exit_code=None, signal=signal.SIGKILL, killed_by_pool=None, last_rss=None,
        oom_kills_rose=False, memory_limit_mb=100,
    )  # fmt: skip
    assert v.cause == "signal" and "RSS unknown" in v.detail
    assert (
        classify(
            exit_code=None,
            signal=signal.SIGSEGV,
            killed_by_pool=None,
            last_rss=1,
            oom_kills_rose=False,
        ).cause
        == "signal"
    )
    assert (
        classify(
            exit_code=3, signal=None, killed_by_pool=None, last_rss=None, oom_kills_rose=False
        ).cause
        == "exit"
    )


def _oom_kills_in_cgroup_files() -> int | None:
    """What this process's memory cgroup files say, read directly (v2 memory.events or
    v1 memory.oom_control): the oom_kill count of the first that has one."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    files = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            files.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events")
        elif "memory" in controllers.split(","):
            files.append(Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control")
    for file in files:
        try:
            fields = dict(line.split(" ", 1) for line in file.read_text().splitlines())
        except OSError:
            continue
        if "oom_kill" in fields:
            return int(fields["oom_kill"])
    return None


def test_oom_counter_reads_what_this_cgroup_says() -> None:
    count = oom_kill_count()
    assert count is None or (type(count) is int and count >= 0)
    # The same number the files hold; None only where no cgroup file has one.
    assert count == _oom_kills_in_cgroup_files()


def _fake_root(monkeypatch: pytest.MonkeyPatch, root: Path, files: dict[str, str]) -> None:
    """Serve the absolute paths oom_kill_count reads from ``root`` instead of ``/``."""
    for name, text in files.items():
        target = root / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    monkeypatch.setattr(
        _crash, "Path", lambda *parts: root.joinpath(*(str(p).lstrip("/") for p in parts))
    )


def test_oom_counter_reads_cgroup_v2_memory_events(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_root(monkeypatch, tmp_path, {
        "/proc/self/cgroup": "0::/user.slice/app.scope\n",
        "/sys/fs/cgroup/user.slice/app.scope/memory.events":
            "low 0\nhigh 0\nmax 4\noom 3\noom_kill 2\n",
    })  # fmt: skip
    assert oom_kill_count() == 2


def test_oom_counter_reads_cgroup_v1_oom_control(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_root(monkeypatch, tmp_path, {
        "/proc/self/cgroup": "9:pids:/\n4:memory:/box/42\n0::/\n",
        "/sys/fs/cgroup/memory/box/42/memory.oom_control":
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
    })  # fmt: skip
    assert oom_kill_count() == 5


def test_oom_counter_is_none_without_a_readable_count(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_root(monkeypatch, tmp_path, {"/proc/self/cgroup": "0::/gone\n"})
    assert oom_kill_count() is None
