"""Which device each worker slot gets: ``open_pool(devices=...)``, checked and planned. Pure.

Rules:
- Devices are named by uuid (``GPU-…``, ``MIG-…``): an index means a different device
  under each ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER``, a uuid never does.
- Slot ``i`` gets device ``i % n``, for the life of the pool: a replacement (crash,
  recycling) gets its slot's device again. ``devices=[A, B]`` with ``size=4`` runs two
  workers on each; naming a device twice gives it twice the share.
- A pool uses only what its host may: the mask the workers would otherwise inherit
  (``CUDA_VISIBLE_DEVICES``; for ROCm ``ROCR_VISIBLE_DEVICES``, then ``HIP_VISIBLE_DEVICES``
  or, without it, ``CUDA_VISIBLE_DEVICES``) bounds the plan. ``"cuda"`` means every device
  the mask lets through, in the mask's order; a device named outside it is refused. A
  worker's own mask is its device's uuid, which CUDA resolves against the machine, so
  composing happens here, before any worker starts.
- A mask by index can be read only where the order is known: NVML lists devices in PCI bus
  order, and CUDA numbers them fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; the two
  agree when every device is the same model.
- A GPU in MIG mode runs CUDA work only in its MIG instances: chosen (by index or uuid), it
  stands for its instances, each a device of its own (an index counts whole GPUs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._core import _checks as checks
from ._model import Device

PINNABLE = ("cuda", "rocm")
_UUID_PREFIXES = ("GPU-", "MIG-")
_ALLOWED = (
    "devices must be 'cuda', 'rocm', a list of device uuids ('GPU-…', 'MIG-…', optionally "
    "after 'cuda:' or 'rocm:') or None (no pinning)"
)


def normalize(value: object) -> str | tuple[str, ...] | None:
    """The ``devices`` option as given -> ``"cuda"``, ``"rocm"``, ``("cuda:GPU-…", ...)`` or None.

    Raises:
        TypeError: not a str, a list or None, or an entry that is not a str or a Device.
        ValueError: an entry that is not a uuid (an index, say), an empty list, or kinds
            mixed in one pool.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value in PINNABLE:
            return value
        raise ValueError(
            f"{_ALLOWED}; got {checks.shown(value)}: to pin every worker to one device, pass "
            f"[{checks.shown(value)}]"
        )
    if isinstance(value, Device):
        raise TypeError(f"{_ALLOWED}; got one Device: pass [{value.spec!r}] (a list)")
    if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray):
        raise TypeError(f"{_ALLOWED}; got {checks.shown(value)} ({checks.a_type(value)})")
    specs = tuple(_entry(item) for item in value)
    if not specs:
        raise ValueError(f"{_ALLOWED}; got an empty list: pass None for no pinning")
    kinds = sorted({spec.partition(":")[0] for spec in specs})
    if len(kinds) > 1:
        raise ValueError(
            f"devices mixes {' and '.join(kinds)} devices ({checks.shown(list(value))}); "
            "open one pool per kind"
        )
    return specs


def _entry(item: object) -> str:
    if isinstance(item, Device):
        if item.kind not in PINNABLE or not item.uuid:
            raise ValueError(
                f"devices can pin workers to cuda and rocm devices with a uuid; got "
                f"{item.kind} device {item.name!r} (uuid {item.uuid!r})"
            )
        return item.spec
    if not isinstance(item, str):
        raise TypeError(
            f"devices entries must be device uuids (str) or Devices from hardware.detect(); "
            f"got {checks.shown(item)} ({checks.a_type(item)}) in it"
        )
    kind, sep, uuid = item.strip().partition(":")
    if not sep:
        kind, uuid = "cuda", kind
    elif kind not in PINNABLE:
        kind, uuid = "cuda", item.strip()  # not a prefix we know: judged whole below
    if uuid.startswith(_UUID_PREFIXES) and len(uuid) > 4:
        return f"{kind}:{uuid}"
    if uuid.isdigit():
        raise ValueError(
            f"devices names device {item!r} by index; name it by uuid ('GPU-…': "
            "`snakepit-trio hardware` lists them): an index means another device under "
            "each CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER"
        )
    raise ValueError(
        f"devices entry {checks.shown(item)} is not a device uuid ('GPU-…' or 'MIG-…', "
        "optionally after 'cuda:' or 'rocm:')"
    )


# --- what the host may use -----------------------------------------------------------------
def mask_variables(kind: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """The variables that bound what a process of ``kind`` with ``env`` sees, outermost
    first. HIP reads ``HIP_VISIBLE_DEVICES``, or ``CUDA_VISIBLE_DEVICES`` without it, as
    indices into what ``ROCR_VISIBLE_DEVICES`` lets through."""
    if kind == "rocm":
        hip = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in env else "CUDA_VISIBLE_DEVICES"
        return ("ROCR_VISIBLE_DEVICES", hip)
    return ("CUDA_VISIBLE_DEVICES",)


def visible(
    kind: str, detected: Sequence[Device], env: Mapping[str, str]
) -> tuple[list[Device], bool]:
    """The devices of ``kind`` a process with ``env`` may use, in the order it numbers them,
    and whether that list is known (False: nothing detected and no mask naming uuids).

    Raises:
        ValueError: a mask by index whose order cannot be known (see the module's rules).
    """
    devices = [d for d in detected if d.kind == kind]
    known = bool(devices)
    for variable in mask_variables(kind, env):
        mask = env.get(variable)
        if mask is None:
            continue
        devices, known = _apply_mask(kind, devices, known, variable, mask, env)
    # A GPU in MIG mode runs CUDA work only in its instances.
    instances = [d for d in detected if d.kind == kind and d.parent]
    out: list[Device] = []
    for device in devices:
        mine = [m for m in instances if m.parent == device.uuid]
        for chosen in mine or [device]:
            if chosen not in out:
                out.append(chosen)
    return out, known


def _apply_mask(
    kind: str,
    devices: list[Device],
    known: bool,
    variable: str,
    mask: str,
    env: Mapping[str, str],
) -> tuple[list[Device], bool]:
    """CUDA's reading of a mask: entries in order, each an index or a uuid (or a unique
    prefix of one); an entry that names nothing ends the list, as it does for CUDA."""
    out: list[Device] = []
    physical = [d for d in devices if not d.parent]
    for raw in mask.split(","):
        entry = raw.strip()
        if entry.isdigit():
            if not known:
                raise ValueError(
                    f"devices: {variable}={mask!r} names devices by index, and no device "
                    f"was detected to tell which ones (install nvidia-ml-py, the 'gpu' "
                    f"extra, or put uuids in {variable})"
                )
            if kind == "cuda" and not _pci_order(physical, env):
                raise ValueError(
                    f"devices: {variable}={mask!r} names devices by index, and with "
                    f"different models CUDA numbers them fastest first, not in the PCI "
                    f"order NVML reports: put uuids in {variable} or set "
                    "CUDA_DEVICE_ORDER=PCI_BUS_ID"
                )
            index = int(entry)
            if index >= len(physical):
                break
            chosen = physical[index]
        elif entry.startswith(_UUID_PREFIXES):
            if not known:
                out.append(Device(kind=kind, index=len(out), uuid=entry, name=""))
                continue
            matches = [d for d in devices if d.uuid and d.uuid.startswith(entry)]
            if len(matches) != 1:
                break
            chosen = matches[0]
        else:
            break
        if chosen not in out:
            out.append(chosen)
    return out, known or bool(out)


def _pci_order(physical: Sequence[Device], env: Mapping[str, str]) -> bool:
    return env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" or len({d.name for d in physical}) <= 1


# --- the plan --------------------------------------------------------------------------------
def plan(
    requested: str | tuple[str, ...],
    size: int,
    *,
    detected: Sequence[Device],
    env: Mapping[str, str],
    notes: Sequence[str] = (),
) -> tuple[str, ...]:
    """The device of each slot (``"cuda:GPU-…"``), ``size`` of them.

    Args:
        requested: the ``devices`` option, normalized.
        size: the number of worker slots.
        detected: what ``hardware.detect()`` found (every kind).
        env: the environment the workers would get without pinning (its masks bound the plan).
        notes: why detection found nothing, for the message when that matters.

    Returns:
        One spec per slot.

    Raises:
        ValueError: no device of the kind is visible, a named device is not, or a mask
            cannot be read (each message names what to change).
    """
    kind = requested if isinstance(requested, str) else requested[0].partition(":")[0]
    devices, known = visible(kind, detected, env)
    masks = ", ".join(f"{v}={env[v]!r}" for v in mask_variables(kind, env) if v in env)
    seen = f" (with {masks})" if masks else ""
    if isinstance(requested, str):
        if not devices:
            why = "; ".join(n for n in notes if n.startswith(kind)) or "none detected"
            raise ValueError(f"devices={kind!r}: no {kind} device is visible here{seen}: {why}")
        chosen = [d.spec for d in devices]
    else:
        chosen = [_resolve(spec, devices, known, seen) for spec in requested]
    return tuple(chosen[slot % len(chosen)] for slot in range(size))


def _resolve(spec: str, devices: Sequence[Device], known: bool, seen: str) -> str:
    kind, _, uuid = spec.partition(":")
    if not known:
        return spec  # nothing to check against: the worker's runtime will say
    if any(d.uuid == uuid for d in devices):
        return spec
    # CUDA takes a unique prefix of a uuid, in a mask and in devices alike.
    close = [
        d.uuid for d in devices if d.uuid and (d.uuid.startswith(uuid) or uuid.startswith(d.uuid))
    ]
    if len(close) == 1:
        return f"{kind}:{max(close[0], uuid, key=len)}"
    listed = ", ".join(d.uuid or "?" for d in devices) or "none"
    if close:
        raise ValueError(f"devices names {uuid!r}, which fits several devices ({listed})")
    raise ValueError(
        f"devices names {uuid!r}, which this host cannot use{seen}; it may use: {listed}"
    )
