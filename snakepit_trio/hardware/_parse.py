"""Reading what the system says about its hardware: text in, values out. Pure.

``_probe.py`` reads the files (``/proc/cpuinfo``, cgroup files, the KFD topology in sysfs)
and runs ``nvidia-smi``; everything it reads is turned into values here, so each format is
tested on its own with the text real machines give.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._model import Device

MIB = 1 << 20

# /proc/cpuinfo keys: x86 first, then ARM's spelling.
_MODEL_KEYS = ("model name", "Model", "Hardware", "cpu model")
_FLAG_KEYS = ("flags", "Features")


def cpuinfo(text: str) -> tuple[str | None, frozenset[str], int | None]:
    """``/proc/cpuinfo`` -> (model name, flags, physical cores or None).

    Physical cores are the distinct (``physical id``, ``core id``) pairs; None when the
    file does not give them (ARM, some virtual machines).
    """
    model: str | None = None
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    package = core = None
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        if model is None:
            model = next((fields[k] for k in _MODEL_KEYS if fields.get(k)), None)
        for key in _FLAG_KEYS:
            flags.update(fields.get(key, "").lower().split())
        package, core = fields.get("physical id"), fields.get("core id")
        if core is not None:
            cores.add((package or "0", core))
    return model, frozenset(flags), (len(cores) or None)


def processors(text: str) -> int:
    """How many processors ``/proc/cpuinfo`` lists (0 if none)."""
    return sum(1 for line in text.splitlines() if line.partition(":")[0].strip() == "processor")


def cpu_list(text: str) -> tuple[int, ...]:
    """``"0-3,8,10-11"`` (the kernel's CPU list format) -> (0, 1, 2, 3, 8, 10, 11).

    Raises:
        ValueError: not a CPU list.
    """
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, sep, last = part.partition("-")
        if sep:
            cpus.update(range(int(first), int(last) + 1))
        else:
            cpus.add(int(first))
    return tuple(sorted(cpus))


def allowed_cpus(status: str) -> tuple[int, ...] | None:
    """The ``Cpus_allowed_list`` of ``/proc/<pid>/status`` (the affinity), or None."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "Cpus_allowed_list":
            try:
                return cpu_list(value)
            except ValueError:
                return None
    return None


def cgroups(text: str) -> tuple[str | None, dict[str, str]]:
    """``/proc/self/cgroup`` -> (the cgroup v2 path or None, {v1 controller: path}).

    Lines are ``hierarchy:controllers:path``; v2's is ``0::path``.
    """
    unified: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            unified = path
        else:
            for controller in controllers.split(","):
                if controller:
                    v1[controller] = path
    return unified, v1


def cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` (``"max 100000"``, ``"150000 100000"``) -> CPUs, or None
    when unlimited or unreadable."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cfs_quota(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` -> CPUs, or None (-1: none)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def tightest(quotas: Iterable[float | None]) -> float | None:
    """The smallest quota of a cgroup and its ancestors (each one limits those below)."""
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


# nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader,nounits
SMI_FIELDS = "index,uuid,name,memory.total,memory.free,compute_cap,driver_version"


def nvidia_smi(text: str) -> tuple[list[Device], str | None]:
    """``nvidia-smi --query-gpu=SMI_FIELDS --format=csv,noheader,nounits`` -> devices and
    driver version. Memory comes in MiB; ``[N/A]`` and ``[Not Supported]`` are None. A
    query without ``compute_cap`` (drivers before 510) may give one field fewer."""
    devices: list[Device] = []
    driver: str | None = None
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6 or not fields[0].isdigit():
            continue
        if len(fields) == 6:  # no compute_cap column
            fields.insert(5, "")
        index, uuid, name, total, free, capability, version = fields[:7]
        driver = driver or _known(version)
        devices.append(
            Device(
                kind="cuda",
                index=int(index),
                uuid=_known(uuid),
                name=name,
                memory_total=_mib(total),
                memory_free=_mib(free),
                compute_capability=_known(capability),
            )
        )
    return devices, driver


def _known(value: str) -> str | None:
    return None if not value or value.startswith("[") else value


def _mib(value: str) -> int | None:
    try:
        return int(float(value) * MIB)
    except ValueError:
        return None


def kfd_properties(text: str) -> dict[str, int]:
    """A KFD topology node's ``properties`` file (``name value`` lines) -> {name: value}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        try:
            out[name] = int(value.strip())
        except ValueError:
            continue
    return out


def gfx_target(version: int) -> str | None:
    """KFD's ``gfx_target_version`` -> the gfx name: 90010 -> ``gfx90a``, 110000 -> ``gfx1100``."""
    if version <= 0:
        return None
    major, minor, stepping = version // 10000, (version // 100) % 100, version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def rocm_uuid(unique_id: int) -> str | None:
    """The uuid ROCm shows for a KFD ``unique_id`` (``GPU-`` and 16 hex digits), as
    ``ROCR_VISIBLE_DEVICES`` accepts it; None for 0 (a card without one)."""
    return f"GPU-{unique_id:016x}" if unique_id > 0 else None


def mps_likely(system: str, machine: str) -> bool:
    """Apple's MPS backend runs on Apple silicon (macOS on arm64) only."""
    return system == "Darwin" and machine == "arm64"
