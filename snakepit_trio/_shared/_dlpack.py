"""DLPack tensors as payloads: one in host memory travels as the numpy array viewing it.

A value that is not a numpy array but has ``__dlpack__`` and ``__dlpack_device__`` (torch,
JAX, CuPy, TensorFlow tensors, pyarrow arrays, ...) becomes ``np.from_dlpack(value)``, a view
without a copy, and takes the numpy path (codes 1 and 2): it arrives as a read-only numpy
array. DLPack shares memory within one process only, so a tensor in device memory (CUDA,
ROCm, Metal, ...) is refused before anything is exported: the caller copies it to the host.
Shared by host and worker; numpy is imported only when such a value is met.
"""

from __future__ import annotations

from typing import Any

from .._core._types import is_ndarray

# DLPack device types (dlpack.h, DLDeviceType) whose memory the CPU reads, as numpy's
# from_dlpack accepts them.
HOST_DEVICES = frozenset({1, 3, 11, 13})  # CPU, CUDA host (pinned), ROCm host, CUDA managed
_DEVICE_NAMES = {
    2: "CUDA",
    4: "OpenCL",
    7: "Vulkan",
    8: "Metal",
    9: "VPI",
    10: "ROCm",
    12: "ExtDev",
    14: "oneAPI",
    15: "WebGPU",
    16: "Hexagon",
    17: "MAIA",
}


def is_dlpack(value: Any) -> bool:
    """Whether ``value`` exports DLPack and is not a numpy array (checked on its type,
    nothing called)."""
    cls = type(value)
    return (
        hasattr(cls, "__dlpack__") and hasattr(cls, "__dlpack_device__") and not is_ndarray(value)
    )


def device_problem(value: Any) -> str | None:
    """Why this DLPack exporter cannot travel (its memory is not the host's), or None."""
    try:
        device_type, device_id = value.__dlpack_device__()
        kind = int(device_type)
    except Exception as exc:  # the exporter's own code
        return (
            f"a DLPack tensor of type {type(value).__name__!r} whose __dlpack_device__() "
            f"failed ({type(exc).__name__}: {exc})"
        )
    if kind in HOST_DEVICES:
        return None
    name = _DEVICE_NAMES.get(kind, "a device")
    return (
        f"a tensor of type {type(value).__name__!r} in {name} memory (DLPack device type "
        f"{kind}, id {device_id}): only host memory can travel; call .cpu() (or copy it to "
        "host memory) first"
    )


def as_ndarray(value: Any) -> Any:
    """The numpy array viewing a DLPack tensor in host memory (no copy).

    Raises:
        TypeError: the tensor is on a device, numpy is missing, or numpy cannot take it
            (a dtype it lacks, such as bfloat16; a tensor that requires grad; ...).
    """
    problem = device_problem(value)
    if problem is not None:
        raise TypeError(problem)
    try:
        import numpy as np
    except ImportError as exc:
        raise TypeError(
            f"a DLPack tensor of type {type(value).__name__!r} travels as a numpy array, but "
            f"numpy cannot be imported in this process ({exc}); install numpy"
        ) from exc
    try:
        return np.from_dlpack(value)
    except Exception as exc:  # the exporter's or numpy's refusal, named below
        raise TypeError(
            f"a DLPack tensor of type {type(value).__name__!r} that numpy cannot take "
            f"({type(exc).__name__}: {exc}); convert it to a numpy array first"
        ) from exc
