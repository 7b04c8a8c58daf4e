"""Answers over what ``detect()`` found: capabilities, a device choice, an identity. Pure."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .._core import _checks as checks
from ._model import KINDS, Device, HardwareInfo
from ._plan import visible

# CPU features worth a name: they decide which wheels and kernels run fast.
FEATURES = (
    # x86
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni",
    "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8",
    # ARM
    "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm",
)  # fmt: skip

MIB = 1 << 20


def capabilities(info: HardwareInfo) -> dict[str, bool]:
    """What this machine can run: each device kind, and each notable CPU feature."""
    found = {
        "cuda": bool(info.cuda),
        "rocm": bool(info.rocm),
        "mps": info.mps,
        "cpu": True,
    }
    found.update((feature, feature in info.cpu.flags) for feature in FEATURES)
    return found


def select(
    info: HardwareInfo,
    preferences: Sequence[str],
    min_free_mb: float | None,
    env: Mapping[str, str],
) -> Device:
    """The first kind in ``preferences`` that is here (see ``select_with_fallback``)."""
    if isinstance(preferences, str):
        raise TypeError(
            f"preferences must be a list of kinds; got {preferences!r}: pass [{preferences!r}]"
        )
    for kind in preferences:
        if kind not in KINDS:
            raise ValueError(
                f"preferences: unknown kind {checks.shown(kind)}"
                f"{checks.did_you_mean(str(kind), KINDS)}; kinds are {', '.join(map(repr, KINDS))}"
            )
    checks.number("min_free_mb", min_free_mb, zero=True, none="any", unit="megabytes")
    for kind in preferences:
        if kind == "cpu":
            return Device(kind="cpu", index=0, uuid=None, name=info.cpu.model or info.cpu.arch)
        if kind == "mps":
            if info.mps:
                return Device(kind="mps", index=0, uuid=None, name="Apple GPU (MPS)")
            continue
        try:
            usable, _ = visible(kind, info.devices(kind), env)
        except ValueError:  # a mask by index in an unknown order: consider them all
            usable = list(info.devices(kind))
        if min_free_mb is not None:
            usable = [
                d for d in usable if d.memory_free is None or d.memory_free >= min_free_mb * MIB
            ]
        if usable:
            return max(usable, key=lambda d: (d.memory_free or -1, -d.index))
    wanted = ", ".join(preferences) or "nothing"
    why = "; ".join(info.notes)
    raise LookupError(f"none of {wanted} is available here" + (f" ({why})" if why else ""))


def identity(info: HardwareInfo, *, instance: bool) -> dict[str, Any]:
    """What code built or tuned here depends on (see ``hardware.identity``)."""

    def device(d: Device) -> dict[str, Any]:
        out: dict[str, Any] = {"name": d.name, "compute_capability": d.compute_capability}
        if d.parent:
            out["mig"] = True
        if instance:
            out["uuid"] = d.uuid
        return out

    ident: dict[str, Any] = {
        "platform": sys.platform,
        "arch": info.cpu.arch,
        "cpu": {
            "model": info.cpu.model,
            "features": sorted(f for f in FEATURES if f in info.cpu.flags),
        },
        "accelerator": info.accelerator,
    }
    if info.cuda:
        driver = info.cuda_driver.split(".")[0] if info.cuda_driver else None
        ident["cuda"] = {"driver_major": driver, "devices": [device(d) for d in info.cuda]}
    if info.rocm:
        ident["rocm"] = {"devices": [device(d) for d in info.rocm]}
    if info.mps:
        ident["mps"] = True
    return ident
