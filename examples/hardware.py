"""Hardware: what this machine has, and a pool placed on it.

Run from the repository root:  python examples/hardware.py

It detects the CPU and accelerators, chooses a device kind, and opens a pool whose workers
are pinned one per device (``devices="cuda"`` or ``"rocm"``, when there are some) and whose
BLAS/OpenMP libraries share this process's CPUs (``threads_per_worker="auto"``). Without a
GPU the pool runs all the same, its workers unpinned. ``snakepit-trio hardware`` prints
the same detection.
"""

from __future__ import annotations

import contextlib
import json

import trio

import snakepit_trio as sp
from snakepit_trio import hardware as hw


async def main() -> None:
    info = await trio.to_thread.run_sync(hw.detect)  # reads /proc, /sys, NVML: not async
    cpu = info.cpu
    print(f"CPU: {cpu.model} ({cpu.arch}), {cpu.logical} logical, {cpu.usable} usable here")
    print(f"devices: {len(info.cuda)} cuda, {len(info.rocm)} rocm, mps {info.mps}")
    print(f"best: {info.accelerator}")
    chosen = hw.select_with_fallback(["cuda", "rocm", "mps", "cpu"], info=info)
    print(f"select_with_fallback -> {chosen.kind}: {chosen.name}")
    print("identity:", json.dumps(hw.identity(info), sort_keys=True))

    kind = "cuda" if info.cuda else "rocm" if info.rocm else None
    async with sp.open_pool(
        "placement_adapter:Placed", size=2, devices=kind, threads_per_worker="auto"
    ) as pool:
        print(f"2 workers ready, devices={kind!r}, threads_per_worker='auto'")
        # Two sessions open at once bind to the two workers: ask each where it runs.
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(pool.session()) for _ in range(2)]
            for session in sessions:
                where = await session.execute("where")
                device = where["device"] or "none (not pinned)"
                print(f"worker {where['pid']}: device {device}, target {where['target']}")
                print(f"  CUDA_VISIBLE_DEVICES={where['CUDA_VISIBLE_DEVICES']}")
                print(f"  {where['threads']} BLAS/OpenMP threads")
        print("pool.workers() devices:", [w.device for w in pool.workers()])
    print("pool closed")


if __name__ == "__main__":
    trio.run(main)
