"""A check to run on a machine with NVIDIA GPUs (the test suite only has a fake NVML).

    python -m tests.hardware.gpu_check        # from the repository root; about a minute

It checks what the fakes cannot: that ``detect()`` agrees with ``nvidia-smi -L``, that a
process whose ``CUDA_VISIBLE_DEVICES`` is one device's uuid sees exactly that device through
the CUDA driver itself (``libcuda.so.1`` through ctypes: no framework needed), and that a
pool with ``devices="cuda"`` gives each worker its own device, in spawned and forked workers.
It prints what it found and exits 1 on any disagreement, 0 otherwise (also when there is no
GPU: then there is nothing to check).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from snakepit_trio.worker import Adapter, placement, tool


def cuda_view() -> dict[str, Any]:
    """What the CUDA driver shows this process: its device count and device 0's uuid."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return {"error": f"libcuda.so.1: {exc}"}
    if cuda.cuInit(0) != 0:
        return {"error": "cuInit failed"}
    count = ctypes.c_int()
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return {"error": "cuDeviceGetCount failed"}
    uuid = None
    if count.value:
        device = ctypes.c_int()
        raw = (ctypes.c_ubyte * 16)()
        if (
            cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
            and cuda.cuDeviceGetUuid(raw, device) == 0
        ):
            h = bytes(raw).hex()
            uuid = f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return {"count": count.value, "uuid": uuid}


class CudaProbe(Adapter):
    @tool
    def view(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "placed": placement().uuid, **cuda_view()}


def _child_view(uuid: str) -> dict[str, Any]:
    code = (
        "import json; from tests.hardware.gpu_check import cuda_view; "
        "print(json.dumps(cuda_view()))"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": uuid}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}


def main() -> int:
    import trio  # here: workers import this module for CudaProbe, and never import trio

    import snakepit_trio as sp
    from snakepit_trio import hardware as hw
    from snakepit_trio.hardware._report import report

    info = hw.detect()
    print("\n".join(report(info, os.environ)))
    if not info.cuda:
        print("no NVIDIA device here: nothing to check")
        return 0
    failures: list[str] = []
    smi = shutil.which("nvidia-smi")
    if smi:
        listed = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
        theirs = set(re.findall(r"UUID: ((?:GPU|MIG)-[0-9a-fA-F-]+)", listed))
        ours = {d.uuid for d in info.cuda}
        if theirs != ours:
            failures.append(f"nvidia-smi -L lists {sorted(theirs)}, detect() {sorted(ours)}")
    for device in info.cuda:
        if device.parent or not device.uuid or not device.uuid.startswith("GPU-"):
            continue  # MIG instances: checked through the pool below
        seen = _child_view(device.uuid)
        print(f"CUDA_VISIBLE_DEVICES={device.uuid}: {seen}")
        if seen.get("count") != 1 or seen.get("uuid") != device.uuid:
            failures.append(f"a process masked to {device.uuid} sees {seen}")

    async def pools() -> None:
        for method in ("spawn", "zygote"):
            async with (
                sp.open_pool(
                    "tests.hardware.gpu_check:CudaProbe",
                    size=len(info.cuda),
                    devices="cuda",
                    start_method=method,
                ) as pool,
                contextlib.AsyncExitStack() as stack,
            ):
                sessions = [
                    await stack.enter_async_context(pool.session()) for _ in range(pool.config.size)
                ]
                for session in sessions:
                    seen = await session.execute("view")
                    print(f"{method} worker {seen['pid']}: {seen}")
                    if seen.get("count") != 1:
                        failures.append(f"{method} worker sees {seen}")
                    elif str(seen["placed"]).startswith("GPU-") and seen["uuid"] != seen["placed"]:
                        failures.append(f"{method} worker pinned to {seen['placed']} sees {seen}")

    trio.run(pools)
    for failure in failures:
        print("FAILED:", failure)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
