"""Asking the system: files under a root, NVML, ``nvidia-smi``, the platform.

Every path is read under ``root`` (``"/"`` normally), so a test can hand in a fake tree of
``proc/`` and ``sys/`` files. Nothing here initialises a GPU or imports a framework: NVML
(through ``nvidia-ml-py``) is NVIDIA's management library, which works without CUDA and
touches no device context; ROCm devices come from the KFD topology in sysfs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs

from ._model import CpuInfo, Device
from ._parse import (
    SMI_FIELDS,
    allowed_cpus,
    cfs_quota,
    cgroups,
    cpu_list,
    cpu_max,
    cpuinfo,
    gfx_target,
    kfd_properties,
    mps_likely,
    nvidia_smi,
    processors,
    rocm_uuid,
    tightest,
)

SMI_TIMEOUT = 10.0  # seconds nvidia-smi may take (it can be slow while the driver loads)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


# --- CPU ---------------------------------------------------------------------------------
def cpu(root: Path) -> CpuInfo:
    real = root == Path("/")
    listing = _read(root / "proc/cpuinfo") or ""
    model, flags, physical = cpuinfo(listing)
    logical = _online(root) or processors(listing) or (os.cpu_count() if real else 1) or 1
    if physical is None:
        physical = _cores_from_topology(root)
    status = _read(root / "proc/self/status")
    affinity = allowed_cpus(status) if status else None
    if affinity is None and real and hasattr(os, "sched_getaffinity"):
        affinity = tuple(sorted(os.sched_getaffinity(0)))
    return CpuInfo(
        model=model,
        arch=platform.machine(),
        logical=logical,
        physical=physical,
        affinity=affinity or tuple(range(logical)),
        quota=_quota(root),
        flags=flags,
    )


def _online(root: Path) -> int | None:
    text = _read(root / "sys/devices/system/cpu/online")
    try:
        return len(cpu_list(text)) if text else None
    except ValueError:
        return None


def _cores_from_topology(root: Path) -> int | None:
    cores = set()
    for name in ("core_cpus_list", "thread_siblings_list"):
        for path in sorted((root / "sys/devices/system/cpu").glob(f"cpu[0-9]*/topology/{name}")):
            text = _read(path)
            if text:
                cores.add(text.strip())
        if cores:
            return len(cores)
    return None


def _quota(root: Path) -> float | None:
    """The tightest CPU quota on this process's cgroups (v2, v1, or both on hybrid hosts).

    A container usually sees its own cgroup as the root of the mount while
    ``/proc/self/cgroup`` names a path of the host's tree; walking up from the path (as far
    as it exists) to the mount's root finds the container's limit either way.
    """
    text = _read(root / "proc/self/cgroup")
    if text is None:
        return None
    unified, v1 = cgroups(text)
    quotas: list[float | None] = []
    mount = root / "sys/fs/cgroup"
    if unified is not None:
        for directory in _up_from(mount, unified):
            quotas.append(cpu_max(_read(directory / "cpu.max") or ""))
    if "cpu" in v1:
        for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            if (mount / name).is_dir():
                for directory in _up_from(mount / name, v1["cpu"]):
                    quota, period = (
                        _read(directory / "cpu.cfs_quota_us"),
                        _read(directory / "cpu.cfs_period_us"),
                    )
                    if quota is not None and period is not None:
                        quotas.append(cfs_quota(quota, period))
                break
    return tightest(quotas)


def _up_from(mount: Path, path: str) -> list[Path]:
    """``mount/path`` and each of its ancestors up to ``mount`` itself."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


# --- NVIDIA ------------------------------------------------------------------------------
def cuda() -> tuple[list[Device], str | None, str | None, list[str]]:
    """(devices, driver version, source, notes): NVML first, then ``nvidia-smi``."""
    notes: list[str] = []
    found = _nvml(notes)
    if found is not None:
        return found[0], found[1], "nvml", notes
    smi = _nvidia_smi(notes)
    if smi is not None:
        return smi[0], smi[1], "nvidia-smi", notes
    return [], None, None, notes


def _nvml(notes: list[str]) -> tuple[list[Device], str | None] | None:
    try:
        import pynvml
    except ImportError:
        notes.append("cuda: NVML: nvidia-ml-py is not installed (the 'gpu' extra)")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        notes.append(f"cuda: NVML: {_nvml_error(pynvml, exc)}")
        return None
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        devices: list[Device] = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                device = _nvml_device(pynvml, handle, index)
            except pynvml.NVMLError as exc:
                notes.append(f"cuda: NVML: device {index}: {_nvml_error(pynvml, exc)}")
                continue
            devices.append(device)
            devices.extend(_mig_devices(pynvml, handle, device))
        return devices, driver
    except pynvml.NVMLError as exc:
        notes.append(f"cuda: NVML: {_nvml_error(pynvml, exc)}")
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _nvml_device(nvml: Any, handle: Any, index: int, parent: str | None = None) -> Device:
    memory = _optional(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
    capability = None
    if parent is None:
        pair = _optional(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
        capability = None if pair is None else f"{pair[0]}.{pair[1]}"
    return Device(
        kind="cuda",
        index=index,
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        name=_text(nvml.nvmlDeviceGetName(handle)),
        memory_total=None if memory is None else int(memory.total),
        memory_free=None if memory is None else int(memory.free),
        compute_capability=capability,
        parent=parent,
    )


def _mig_devices(nvml: Any, handle: Any, gpu: Device) -> list[Device]:
    """The MIG instances of a GPU in MIG mode (CUDA can use only those there)."""
    mode = _optional(nvml, nvml.nvmlDeviceGetMigMode, handle)
    if not mode or mode[0] != 1:
        return []
    found = []
    for slot in range(_optional(nvml, nvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            device = _nvml_device(nvml, mig, slot, parent=gpu.uuid)
        except nvml.NVMLError:
            continue  # an empty slot
        found.append(attrs.evolve(device, compute_capability=gpu.compute_capability))
    return found


def _optional(nvml: Any, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or None where this driver or device does not support it."""
    try:
        return fn(*args)
    except nvml.NVMLError:
        return None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _nvml_error(nvml: Any, exc: Exception) -> str:
    try:
        text = str(exc)
    except Exception:  # its message is looked up in the library, which may be the problem
        text = ""
    name = type(exc).__name__.removeprefix("NVMLError_")
    return f"{name} ({text})" if text and text != name else name


def _nvidia_smi(notes: list[str]) -> tuple[list[Device], str | None] | None:
    program = shutil.which("nvidia-smi")
    if program is None:
        notes.append("cuda: nvidia-smi: not found on PATH")
        return None
    fields = SMI_FIELDS
    for _ in range(2):
        try:
            done = subprocess.run(
                [program, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=SMI_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            notes.append(f"cuda: nvidia-smi: {exc}")
            return None
        if done.returncode == 0:
            return nvidia_smi(done.stdout)
        said = (done.stdout + done.stderr).strip().splitlines()
        if "compute_cap" in fields and "compute_cap" in " ".join(said):
            fields = fields.replace(",compute_cap", "")  # drivers before 510
            continue
        notes.append(f"cuda: nvidia-smi: exit {done.returncode}: {said[0] if said else ''}")
        return None
    return None


# --- AMD -----------------------------------------------------------------------------------
def rocm(root: Path) -> tuple[list[Device], list[str]]:
    """GPU nodes of the KFD topology, in node order (the order ROCm numbers them)."""
    nodes_dir = root / "sys/class/kfd/kfd/topology/nodes"
    if not nodes_dir.is_dir():
        return [], ["rocm: no KFD topology (/sys/class/kfd: no amdgpu driver)"]
    nodes = sorted((p for p in nodes_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    devices: list[Device] = []
    for node in nodes:
        props = kfd_properties(_read(node / "properties") or "")
        if props.get("simd_count", 0) <= 0:
            continue  # a CPU node
        name = (_read(node / "name") or "").strip()
        target = gfx_target(props.get("gfx_target_version", 0))
        devices.append(
            Device(
                kind="rocm",
                index=len(devices),
                uuid=rocm_uuid(props.get("unique_id", 0)),
                name=name or target or "AMD GPU",
                memory_total=_vram(node),
                compute_capability=target,
            )
        )
    return devices, ([] if devices else ["rocm: the KFD topology lists no GPU"])


def _vram(node: Path) -> int | None:
    total = 0
    for bank in sorted(node.glob("mem_banks/*/properties")):
        props = kfd_properties(_read(bank) or "")
        if props.get("heap_type") in (1, 2):  # frame buffer, public and private
            total += props.get("size_in_bytes", 0)
    return total or None


# --- Apple ---------------------------------------------------------------------------------
def mps() -> bool:
    return mps_likely(platform.system(), platform.machine())
