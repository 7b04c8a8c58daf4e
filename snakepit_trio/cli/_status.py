"""``snakepit-trio status``: every pool on this machine, asked through its control endpoint.

Pools list themselves in the registry's ``pools`` table (state dir); for each, status checks
that the host is still the process that recorded it, then asks its control socket
(``snakepit_trio/_control.py``) for a snapshot. Hosts that died are shown as dead, with their
recorded workers, and a hint to run ``snakepit-trio cleanup``. Status never changes a pool
or a row of the registry (it makes the state directory if there is none).
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time
from typing import Any

import msgpack

from .._control import REPLY, REQUEST, pack
from .._supervision import _pool_table as pool_table
from .._supervision._registry import Registry, host_alive
from ._table import dumps

_HEADER = struct.Struct("<I")
_ASK_TIMEOUT = 5.0


def add_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="show the live pools on this machine and their workers",
        description=(
            "Ask every pool this user runs on this machine for its workers, queue and "
            "sessions; pools whose host died are shown with what cleanup would remove."
        ),
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--watch", type=float, metavar="N", help="refresh every N seconds")
    status.add_argument("--state-dir", default=None, help="the registry's directory")


def run(args: argparse.Namespace) -> int:
    try:
        registry = Registry(args.state_dir)
    except Exception as exc:
        print(f"snakepit-trio status: {exc}", file=sys.stderr)
        return 2
    try:
        while True:
            report = collect(registry)
            if args.json:
                print(dumps(report), flush=True)
            else:
                if args.watch and sys.stdout.isatty():
                    print("\033[H\033[J", end="")
                print(render(report), flush=True)
            if not args.watch:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


def ask(path: str, timeout: float = _ASK_TIMEOUT) -> dict[str, Any]:
    """One status request to a control socket (blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(pack([REQUEST, "status"]))
        data = b""
        while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError("the pool closed the connection")
            data += chunk
    (size,) = _HEADER.unpack_from(data)
    kind, body = msgpack.unpackb(data[_HEADER.size : _HEADER.size + size], raw=False)
    if kind != REPLY or not isinstance(body, dict):
        raise ConnectionError(f"unexpected answer kind {kind!r}")
    if "error" in body:
        raise ConnectionError(body["error"])
    return body


def collect(registry: Registry) -> dict[str, Any]:
    pools: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    seen_tokens = set()
    for row in pool_table.rows(registry):
        seen_tokens.add(row.token)
        base = {
            "name": row.name,
            "adapter": row.adapter,
            "host_pid": row.host_pid,
            "control": row.control,
        }
        if not row.host_alive():
            dead.append({**base, "workers": []})
            continue
        try:
            pools.append({**base, "alive": True, **ask(row.control)})
        except (OSError, ValueError) as exc:
            pools.append({**base, "alive": True, "error": f"no answer: {exc}"})
    for entry in registry.entries():
        if host_alive(entry):
            continue
        owner = next((d for d in dead if d["host_pid"] == entry.host_pid), None)
        if owner is None:
            owner = {"name": None, "adapter": None, "host_pid": entry.host_pid, "workers": []}
            dead.append(owner)
        owner["workers"].append({"id": entry.worker_id, "pid": entry.worker_pid})
    for d in dead:
        d["alive"] = False
        d["hint"] = "the host died: run `snakepit-trio cleanup`"
    return {"pools": pools, "dead": dead, "registry": str(registry.path)}


def _mib(rss: int | None) -> str:
    return "-" if rss is None else f"{rss / 2**20:.1f}M"


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    if not report["pools"] and not report["dead"]:
        return f"no pools running (registry: {report['registry']})"
    for p in report["pools"]:
        head = f"pool {p['name']}  adapter {p['adapter']}  host pid {p['host_pid']}"
        if "error" in p:
            lines += [head, f"  {p['error']}", ""]
            continue
        s = p["stats"]
        lines.append(f"{head}  health {s['health']}")
        lines.append(
            f"  queue {s['queued']}  in flight {s['in_flight']}  requests {s['requests']}  "
            f"errors {s['errors']}  crashes {s['crashes']}  restarts {s['restarts']}  "
            f"sessions {s['sessions']}"
        )
        lines.append(
            f"  {'WORKER':<16} {'PID':>7} {'STATE':<9} {'IN-FLIGHT':>9} {'RSS':>8} "
            f"{'UPTIME':>8}  DEVICE"
        )
        for w in p["workers"]:
            lines.append(
                f"  {w['id']:<16} {w['pid']:>7} {w['state']:<9} {w['in_flight']:>9} "
                f"{_mib(w['rss']):>8} {w['uptime']:>7.0f}s  {w.get('device') or '-'}"
            )
        for session in p["sessions"]:
            lines.append(
                f"  session {session['id']} -> {session['worker_id'] or '-'} "
                f"({session['affinity']}, {session['calls']} calls)"
            )
        lines.append("")
    for d in report["dead"]:
        name = d["name"] or "(unnamed)"
        pids = ", ".join(str(w["pid"]) for w in d["workers"]) or "none recorded"
        lines.append(f"DEAD pool {name}  host pid {d['host_pid']}  workers {pids}: {d['hint']}")
    return "\n".join(lines).rstrip()
