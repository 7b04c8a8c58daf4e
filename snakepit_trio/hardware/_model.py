"""What ``detect()`` finds: frozen values, with a JSON-ready form. Pure."""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["CpuInfo", "Device", "HardwareInfo"]

KINDS = ("cuda", "rocm", "mps", "cpu")


@attrs.frozen
class CpuInfo:
    """The processor, and how much of it this process may use.

    Attributes:
        model: the model name (``/proc/cpuinfo``), or None where it is not given.
        arch: the machine architecture (``x86_64``, ``aarch64``, ``arm64``).
        logical: logical CPUs online on the machine.
        physical: physical cores, or None where the topology cannot be read.
        affinity: the CPUs this process may run on (``sched_getaffinity``).
        quota: the cgroup CPU quota in CPUs (``cpu.max`` / ``cpu.cfs_quota_us``: 1.5 means
            one and a half CPUs of time), or None when there is no limit.
        flags: instruction-set flags (``avx2``, ``avx512f``, ``amx_tile``; ``asimd`` on
            ARM), lower case.
    """

    model: str | None
    arch: str
    logical: int
    physical: int | None
    affinity: tuple[int, ...]
    quota: float | None
    flags: frozenset[str]

    @property
    def usable(self) -> int:
        """CPUs this process can keep busy: its affinity, capped by the cgroup quota
        (rounded up, as loky's ``cpu_count`` does); at least 1."""
        count = len(self.affinity) or self.logical
        if self.quota is not None:
            count = min(count, math.ceil(self.quota))
        return max(1, count)

    def to_dict(self) -> dict[str, Any]:
        """This value as JSON-ready data.

        Returns:
            Its fields (``flags`` sorted, ``affinity`` a list) and ``usable``.

        Raises:
            Nothing.
        """
        return {
            "model": self.model,
            "arch": self.arch,
            "logical": self.logical,
            "physical": self.physical,
            "affinity": list(self.affinity),
            "quota": self.quota,
            "usable": self.usable,
            "flags": sorted(self.flags),
        }


@attrs.frozen
class Device:
    """One accelerator (or, from ``select_with_fallback``, the CPU).

    Attributes:
        kind: ``"cuda"``, ``"rocm"``, ``"mps"`` or ``"cpu"``.
        index: its number as its detector lists it (NVML: PCI bus order, which may differ
            from CUDA's own default order; name devices by ``uuid``); for a MIG instance,
            its number within its GPU.
        uuid: ``GPU-…`` (NVIDIA, AMD), ``MIG-…`` (a MIG instance), or None where the device
            has none (MPS, CPU, an AMD card without a unique id).
        name: the model (``NVIDIA A100-SXM4-80GB``; ROCm: the gfx target, ``gfx90a``).
        memory_total: bytes, or None where unknown.
        memory_free: bytes free when detected, or None where unknown.
        compute_capability: ``"8.0"`` (CUDA), the gfx target (ROCm), or None.
        parent: for a MIG instance, the uuid of the GPU it is part of; else None.
    """

    kind: str
    index: int
    uuid: str | None
    name: str
    memory_total: int | None = None
    memory_free: int | None = None
    compute_capability: str | None = None
    parent: str | None = None

    @property
    def spec(self) -> str:
        """``"cuda:GPU-…"``: how ``open_pool(devices=...)`` and ``SNAKEPIT_TRIO_DEVICE``
        name it (just the kind when it has no uuid)."""
        return f"{self.kind}:{self.uuid}" if self.uuid else self.kind

    def to_dict(self) -> dict[str, Any]:
        """This value as JSON-ready data.

        Returns:
            Its fields by name.

        Raises:
            Nothing.
        """
        return attrs.asdict(self)


@attrs.frozen
class HardwareInfo:
    """Everything ``detect()`` found.

    Attributes:
        cpu: the processor and this process's share of it.
        cuda: NVIDIA devices (MIG instances of a GPU in MIG mode are listed after it, with
            ``parent`` set), as NVML (or ``nvidia-smi``) lists them: every device of the
            machine, whatever ``CUDA_VISIBLE_DEVICES`` says.
        cuda_driver: the driver version (``"550.54.15"``), or None.
        cuda_source: ``"nvml"``, ``"nvidia-smi"`` or None (nothing answered).
        rocm: AMD devices, from the KFD topology in sysfs.
        mps: whether Apple's Metal Performance Shaders backend is likely usable (macOS on
            arm64; only a framework such as torch can say for sure).
        notes: what a detector could not do, one line each (``"cuda: NVML: ..."``): why
            nothing was found, or why ``nvidia-smi`` answered instead of NVML.
    """

    cpu: CpuInfo
    cuda: tuple[Device, ...] = ()
    cuda_driver: str | None = None
    cuda_source: str | None = None
    rocm: tuple[Device, ...] = ()
    mps: bool = False
    notes: tuple[str, ...] = ()

    @property
    def accelerator(self) -> str:
        """The best kind found: ``"cuda"``, ``"rocm"``, ``"mps"`` or ``"cpu"``."""
        if self.cuda:
            return "cuda"
        if self.rocm:
            return "rocm"
        return "mps" if self.mps else "cpu"

    def devices(self, kind: str) -> tuple[Device, ...]:
        """The devices of one kind.

        Args:
            kind: ``"cuda"`` or ``"rocm"``.

        Returns:
            ``cuda`` or ``rocm``; an empty tuple for any other kind.

        Raises:
            Nothing.
        """
        return {"cuda": self.cuda, "rocm": self.rocm}.get(kind, ())

    def to_dict(self) -> dict[str, Any]:
        """This value as JSON-ready data (what ``snakepit-trio hardware --json`` prints).

        Returns:
            Its fields, each device and the CPU as dicts, and ``accelerator``.

        Raises:
            Nothing.
        """
        return {
            "cpu": self.cpu.to_dict(),
            "cuda": [d.to_dict() for d in self.cuda],
            "cuda_driver": self.cuda_driver,
            "cuda_source": self.cuda_source,
            "rocm": [d.to_dict() for d in self.rocm],
            "mps": self.mps,
            "accelerator": self.accelerator,
            "notes": list(self.notes),
        }
