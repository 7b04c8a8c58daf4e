"""``snakepit-trio doctor``: is this machine (and an adapter) ready to run pools?

Each check returns one row (PASS, WARN or FAIL with a one-line fix). The machine checks only
read: versions, /dev/shm, the state directory and its registry, the unix-socket path limit,
pidfd and the parent-death signal, the cgroup memory limit, open-file limits, leftovers of
dead hosts. With ``--adapter``, the adapter module is imported in a fresh interpreter the way
a template imports it (so what makes forking unsafe shows up), then a real one-worker pool
starts, answers a call, and is closed before doctor returns: it leaves no process behind.
The exit status is 1 when a row FAILs (with ``--strict``, also when one WARNs).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._supervision._registry import Registry, default_state_dir, host_alive
from ._table import FAIL, PASS, WARN, Check, dumps, render

SUN_PATH_MAX = 107  # bytes a unix socket path may hold on Linux (sun_path is 108 with its NUL)
_WORKER_SOCKET = "pool-1234.lane"  # the longest name a worker's socket usually gets
_DEPENDENCIES = ("trio", "grpclib", "betterproto2", "attrs", "psutil", "msgpack", "platformdirs")
_PROBE_TIMEOUT = 120.0


def add_parser(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check this machine (and an adapter) for running worker pools",
        description=(
            "Check versions, /dev/shm, the state directory, socket paths, process "
            "supervision, memory and file limits and leftovers; with --adapter, import it "
            "and run a real one-worker pool. Exit status 1 when a check fails."
        ),
    )
    doctor.add_argument("--adapter", help="module:Class to import and start in one worker")
    doctor.add_argument(
        "--call", help="a tool to call in that worker (default: `ping`, if it has one)"
    )
    doctor.add_argument("--args", default="{}", help="the call's arguments as JSON")
    doctor.add_argument("--state-dir", default=None, help="the registry's directory")
    doctor.add_argument("--size", type=int, default=os.cpu_count() or 1, help="planned workers")
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    doctor.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    machine: list[Callable[[], Check]] = [
        _python,
        _dependencies,
        _uvloop,
        _dev_shm,
        lambda: _state_dir(state_dir),
        _socket_paths,
        _pidfd,
        _parent_death,
        _cgroup_memory,
        lambda: _open_files(args.size),
        lambda: _leftovers(state_dir),
    ]
    checks = [_guarded(check) for check in machine]
    if args.adapter:
        checks.append(_guarded(lambda: _adapter_import(args.adapter)))
        if checks[-1].status != FAIL:
            checks.extend(_real_pool(args.adapter, args.call, args.args, args.state_dir))
    failed = any(c.status == FAIL or (args.strict and c.status == WARN) for c in checks)
    if args.json:
        print(dumps({"ok": not failed, "checks": [c.as_json() for c in checks]}))
    else:
        print(render(checks))
    return 1 if failed else 0


def _guarded(check: Callable[[], Check]) -> Check:
    """A check that raised becomes a WARN row saying so, never a crash of doctor."""
    try:
        return check()
    except Exception as exc:
        name = getattr(check, "__name__", "check").strip("_<>") or "check"
        return Check(name, WARN, f"could not check: {exc!r}", "report this as a doctor bug")


# --- versions ---------------------------------------------------------------------------


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    build = "GIL" if gil else "free-threaded"
    detail = f"{version} ({sys.implementation.name}, {build}) at {sys.executable}"
    return Check("python", PASS, detail)


def _dependencies() -> Check:
    found, missing = [], []
    for name in _DEPENDENCIES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return Check(
            "dependencies",
            FAIL,
            "missing: " + ", ".join(missing),
            f"pip install {' '.join(missing)} (or reinstall snakepit_trio)",
        )
    betterproto = importlib.metadata.version("betterproto2")
    if not betterproto.startswith("0.10."):
        return Check(
            "dependencies",
            FAIL,
            f"betterproto2 {betterproto}: the generated code needs the 0.10 runtime",
            'pip install "betterproto2[grpclib]>=0.10,<0.11"',
        )
    return Check("dependencies", PASS, ", ".join(found))


def _uvloop() -> Check:
    try:
        version = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        return Check("uvloop", PASS, "not installed (optional: about 8% lower call latency)")
    return Check("uvloop", PASS, f"{version}: workers run on it")


# --- files and paths --------------------------------------------------------------------


def _dev_shm() -> Check:
    shm = Path("/dev/shm")
    fix = "mount a tmpfs on /dev/shm (docker: --shm-size=1g); until then buffers are copied"
    if not shm.is_dir():
        return Check("/dev/shm", WARN, "missing: large buffers cannot use shared memory", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=shm, prefix="snakepit-doctor-"):
            pass
    except OSError as exc:
        return Check("/dev/shm", WARN, f"not writable ({exc.strerror})", fix)
    free = shutil.disk_usage(shm).free
    detail = f"writable, {free / 2**20:.0f} MiB free"
    if free < 64 * 2**20:
        return Check("/dev/shm", WARN, detail + " (large payloads may not fit)", fix)
    return Check("/dev/shm", PASS, detail)


def _state_dir(directory: Path) -> Check:
    fix = (
        f"make {directory} a directory of yours that only you can write (chmod 700), or "
        "point $SNAKEPIT_TRIO_STATE_DIR (or state_dir=) at one"
    )
    try:
        registry = Registry(directory)
        probe = directory / f".doctor-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except Exception as exc:  # UnsafeStateDir, UntrustedRegistry, OSError, sqlite3.Error
        why = str(exc) or repr(exc)
        return Check(
            "state dir",
            FAIL,
            f"{directory}: {why}; pools run without a registry (no cleanup after crashes)",
            fix,
        )
    return Check("state dir", PASS, f"{registry.path} (writable, private)")


def _socket_paths() -> Check:
    # Worker sockets live in a fresh 0700 directory made by tempfile.mkdtemp (under $TMPDIR).
    example = os.path.join(tempfile.gettempdir(), "snakepit-abcdefgh", _WORKER_SOCKET)
    size = len(os.fsencode(example))
    detail = f"{size} of {SUN_PATH_MAX} bytes for a worker socket under {tempfile.gettempdir()}"
    fix = "set TMPDIR to a short directory (e.g. /tmp) for the host process"
    if size > SUN_PATH_MAX:
        return Check("socket paths", FAIL, detail + ": too long, workers cannot listen", fix)
    if size > SUN_PATH_MAX - 24:
        return Check("socket paths", WARN, detail + ": a longer pool name will not fit", fix)
    return Check("socket paths", PASS, detail)


# --- process supervision ----------------------------------------------------------------


def _pidfd() -> Check:
    fix = "Linux 5.3 or newer (and a seccomp profile that allows pidfd_open)"
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError) as exc:
        why = getattr(exc, "strerror", None) or "not in this os module"
        detail = f"pidfd_open unavailable ({why}): workers start as fresh interpreters (slower)"
        return Check("pidfd", WARN, detail, fix)
    return Check("pidfd", PASS, "pidfd_open works: workers fork from a template")


def _parent_death() -> Check:
    fix = "on Linux workers die with the host; elsewhere run `snakepit-trio cleanup` after crashes"
    if not sys.platform.startswith("linux"):
        return Check("parent death", WARN, "no PR_SET_PDEATHSIG on this platform", fix)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_get_pdeathsig = 2
    signal_number = ctypes.c_int(0)
    if libc.prctl(pr_get_pdeathsig, ctypes.byref(signal_number), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        return Check("parent death", WARN, f"prctl refused ({os.strerror(err)})", fix)
    return Check("parent death", PASS, "PR_SET_PDEATHSIG available: workers die with the host")


def _cgroup_memory() -> Check:
    base = _own_cgroup()
    if base is None:
        return Check("memory limit", PASS, "no cgroup v2 memory controller seen")
    limit = (base / "memory.max").read_text().strip() if (base / "memory.max").exists() else ""
    ooms = 0
    events = base / "memory.events"
    if events.exists():
        for line in events.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                ooms = int(value)
    if not limit or limit == "max":
        detail = f"no cgroup memory limit ({base})"
    else:
        detail = f"cgroup limit {int(limit) / 2**20:.0f} MiB for host and workers together"
    if ooms:
        return Check(
            "memory limit",
            WARN,
            f"{detail}; the OOM killer struck {ooms} time(s) in this cgroup",
            "raise the limit, use fewer workers, or set max_memory_mb= to recycle big ones",
        )
    return Check("memory limit", PASS, detail)


def _own_cgroup() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            path = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            for candidate in (path, Path("/sys/fs/cgroup")):
                if (candidate / "memory.max").exists() or (candidate / "memory.events").exists():
                    return candidate
    return None


def _open_files(size: int) -> Check:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The host holds about 8 descriptors per worker (pipes, sockets, pidfd), plus its own.
    needed = 64 + 8 * size
    detail = f"soft {soft}, hard {hard}; {size} workers need about {needed}"
    if soft != resource.RLIM_INFINITY and soft < needed:
        return Check(
            "open files",
            WARN,
            detail,
            f"`ulimit -n {min(max(needed, 4096), hard) if hard > 0 else needed}` before "
            "starting the host",
        )
    return Check("open files", PASS, detail)


def _leftovers(state_dir: Path) -> Check:
    try:
        registry = Registry(state_dir)
        dead = [e for e in registry.entries() if not host_alive(e)]
    except Exception:
        return Check("leftovers", PASS, "no registry to read (see state dir)")
    if dead:
        hosts = sorted({e.host_pid for e in dead})
        return Check(
            "leftovers",
            WARN,
            f"{len(dead)} worker record(s) of dead host(s) {', '.join(map(str, hosts))}",
            "run `snakepit-trio cleanup` (see `snakepit-trio cleanup --dry-run` first)",
        )
    return Check("leftovers", PASS, "no workers of dead hosts recorded")


# --- the adapter ------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, sys
from snakepit_trio.worker._zygote import preload
print(json.dumps(preload(sys.argv[1])))
"""


def _adapter_import(adapter: str) -> Check:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, adapter],
            check=False,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p or "." for p in sys.path)},
        )
    except subprocess.TimeoutExpired:
        return Check(
            "adapter import",
            FAIL,
            f"importing {adapter} took over {_PROBE_TIMEOUT:.0f}s",
            "make the module import quickly; load heavy things in initialize()",
        )
    took = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    reason = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    if done.returncode != 0 or (reason and reason.startswith("the adapter does not load")):
        tail = reason or done.stderr.strip().splitlines()[-1:] or ["no output"]
        quote = reason if reason else tail[-1]
        return Check(
            "adapter import",
            FAIL,
            f"{adapter}: {' '.join(quote.split())}",
            "fix the error above; the module must import in the workers' Python "
            "(PYTHONPATH, pythonpath=)",
        )
    if reason:
        return Check(
            "adapter import",
            WARN,
            f"{adapter}: {reason}, so workers start as fresh interpreters (slower)",
            "open files, threads and CUDA in initialize(), not at import",
        )
    return Check("adapter import", PASS, f"{adapter} imports cleanly in a template ({took:.2f}s)")


def _real_pool(
    adapter: str, call: str | None, call_args: str, state_dir: str | None
) -> list[Check]:
    """Start a one-worker pool, make a call, close it: two rows."""
    import trio

    from .._lifecycle import open_pool

    rows: list[Check] = []

    async def probe() -> None:
        started = time.monotonic()
        options: dict[str, Any] = {"size": 1, "handle_sigterm": False, "name": "doctor"}
        if state_dir is not None:
            options["state_dir"] = state_dir
        with trio.fail_after(_PROBE_TIMEOUT):
            async with open_pool(adapter, **options) as pool:
                took = time.monotonic() - started
                tools = [t.name for t in pool.tools()]
                rows.append(
                    Check(
                        "worker start",
                        PASS,
                        f"one worker ready in {took:.2f}s; tools: {', '.join(tools) or 'none'}",
                    )
                )
                tool = call or ("ping" if "ping" in tools else None)
                if tool is None:
                    rows.append(
                        Check("call", PASS, "no `ping` tool; pass --call TOOL to time a call")
                    )
                    return
                t0 = time.monotonic()
                result = await pool.execute(tool, json.loads(call_args))
                ms = (time.monotonic() - t0) * 1000
                shown = repr(result)
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                rows.append(Check("call", PASS, f"{tool}() returned {shown} in {ms:.1f} ms"))

    try:
        trio.run(probe)
    except Exception as exc:
        name = "worker start" if not rows else "call"
        message = str(exc).strip().splitlines()
        rows.append(
            Check(
                name,
                FAIL,
                f"{type(exc).__name__}: {' | '.join(message[:6])[:400]}",
                "run the adapter's initialize() by hand; the error above is the worker's",
            )
        )
    return rows
