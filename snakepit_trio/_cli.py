"""The ``snakepit-trio`` command: ``cleanup`` and ``hardware`` here; ``doctor``, ``status``
and ``new`` in ``snakepit_trio/cli/``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ._supervision import _pool_table as pool_table
from ._supervision._registry import (
    Registry,
    UnsafeStateDir,
    UntrustedRegistry,
    default_state_dir,
    host_alive,
)


def _cleanup(args: argparse.Namespace) -> int:
    try:
        registry = Registry(args.state_dir)
    except (UnsafeStateDir, UntrustedRegistry) as exc:
        print(f"snakepit-trio cleanup: {exc}", file=sys.stderr)
        return 2
    found = registry.sweep(dry_run=args.dry_run)
    if not args.dry_run:
        pool_table.forget_dead(registry)  # what `snakepit-trio status` listed as dead
    verb = "would kill" if args.dry_run else "killed"
    for left in found:
        e = left.entry
        what = ", ".join(map(str, left.pids)) if left.pids else "nothing (already gone)"
        age = time.time() - e.worker_started if e.worker_started else 0.0
        print(
            f"worker {e.worker_id} (pid {e.worker_pid}, started {age:.0f}s ago) of dead host "
            f"pid {e.host_pid}: {verb} {what}"
        )
    if not found:
        print(f"no leftovers in {registry.path}")
    live = sum(1 for e in registry.entries() if host_alive(e))
    if live:
        print(f"{live} worker(s) of live pools left alone")
    return 0


def _hardware(args: argparse.Namespace) -> int:
    from .hardware import detect
    from .hardware._report import report

    info = detect()
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print("\n".join(report(info, os.environ)))
    return 0


def _subcommands() -> dict[str, Any]:
    from .cli import _doctor, _new, _status

    return {"doctor": _doctor, "new": _new, "status": _status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="snakepit-trio", description="Tools for snakepit_trio worker pools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cleanup = commands.add_parser(
        "cleanup",
        help="kill worker processes left behind by hosts that died",
        description=(
            "Kill worker processes (and their children) recorded by pools whose host "
            "process is gone. Workers of live pools and unrelated processes are never "
            "touched."
        ),
    )
    cleanup.add_argument("--dry-run", action="store_true", help="only list what would be killed")
    cleanup.add_argument(
        "--state-dir",
        default=None,
        help=f"the registry's directory (default: {default_state_dir()})",
    )
    hardware = commands.add_parser(
        "hardware",
        help="show the CPU and accelerators found here (what open_pool(devices=...) can use)",
        description=(
            "Show what snakepit_trio.hardware.detect() finds: the CPU (model, features, "
            "cores, this process's affinity and cgroup quota), NVIDIA devices (NVML, else "
            "nvidia-smi), AMD devices (the KFD topology), Apple MPS, and which devices the "
            "masks in the environment (CUDA_VISIBLE_DEVICES, ...) let this process use."
        ),
    )
    hardware.add_argument("--json", action="store_true", help="print it as JSON")
    subcommands = _subcommands()
    for module in subcommands.values():
        module.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "cleanup":
        return _cleanup(args)
    if args.command == "hardware":
        return _hardware(args)
    if args.command in subcommands:
        return int(subcommands[args.command].run(args))
    return 2  # unreachable: argparse refuses unknown commands


if __name__ == "__main__":
    sys.exit(main())
