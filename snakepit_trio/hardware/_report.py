"""What ``snakepit-trio hardware`` prints: a ``detect()`` result as lines of text. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._model import Device, HardwareInfo
from ._plan import mask_variables, visible
from ._select import FEATURES

GIB = 1 << 30


def report(info: HardwareInfo, env: Mapping[str, str]) -> list[str]:
    """The lines ``snakepit-trio hardware`` prints for ``info``, with what the device masks
    in ``env`` let this process use."""
    cpu = info.cpu
    quota = "no cgroup CPU quota" if cpu.quota is None else f"cgroup quota {cpu.quota:g} CPUs"
    physical = "" if cpu.physical is None else f", {cpu.physical} physical cores"
    features = [f for f in FEATURES if f in cpu.flags]
    lines = [
        f"CPU    {cpu.model or 'unknown model'} ({cpu.arch}): {cpu.logical} logical CPUs{physical}",
        f"       this process may use {cpu.usable} (affinity {ranges(cpu.affinity)}; {quota})",
        f"       features: {' '.join(features) or 'none of note'}",
    ]
    for kind, label, devices in (("cuda", "CUDA", info.cuda), ("rocm", "ROCm", info.rocm)):
        lines += _devices(kind, label, devices, info, env)
    lines.append(f"MPS    {'likely (macOS on Apple silicon)' if info.mps else 'no'}")
    lines.append(f"best   {info.accelerator}")
    return lines


def _devices(
    kind: str, label: str, devices: Sequence[Device], info: HardwareInfo, env: Mapping[str, str]
) -> list[str]:
    why = "; ".join(n.partition(": ")[2] for n in info.notes if n.startswith(f"{kind}:"))
    head = f"{label:<6} "
    if not devices:
        return [head + "none" + (f" ({why})" if why else "")]
    source = f" via {info.cuda_source}" if kind == "cuda" and info.cuda_source else ""
    driver = f", driver {info.cuda_driver}" if kind == "cuda" and info.cuda_driver else ""
    lines = [head + f"{len(devices)} device{'s' if len(devices) != 1 else ''}{driver}{source}"]
    lines += [f"         {_device(d)}" for d in devices]
    masks = [f"{v}={env[v]!r}" for v in mask_variables(kind, env) if v in env]
    if masks:
        try:
            usable, _ = visible(kind, devices, env)
            seen = ", ".join(d.uuid or "?" for d in usable) or "none"
        except ValueError as exc:
            seen = f"cannot tell ({str(exc).removeprefix('devices: ')})"
        lines.append(f"       {' '.join(masks)} lets this process use: {seen}")
    return lines


def _device(d: Device) -> str:
    facts = []
    if d.memory_total is not None:
        facts.append(f"{d.memory_total / GIB:.1f} GiB")
    if d.memory_free is not None:
        facts.append(f"{d.memory_free / GIB:.1f} GiB free")
    if d.compute_capability:
        facts.append(f"compute {d.compute_capability}")
    if d.parent:
        facts.append(f"MIG instance of {d.parent}")
    detail = f" ({', '.join(facts)})" if facts else ""
    return f"[{d.index}] {d.uuid or 'no uuid'} {d.name}{detail}"


def ranges(cpus: Sequence[int]) -> str:
    """(0, 1, 2, 5, 7, 8) -> ``"0-2,5,7-8"``: the kernel's CPU list format."""
    parts: list[str] = []
    start = prev = None
    for cpu in sorted(cpus):
        if prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        start = prev = cpu
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(parts) or "none"
