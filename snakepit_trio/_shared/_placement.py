"""Where a worker runs, as environment variables: its device and its thread budget. Pure.

The host writes them (``open_pool(devices=..., threads_per_worker=...)``); a worker reads
them before its adapter's ``__init__`` (``snakepit_trio.worker.placement()``). A fresh
interpreter is started with them; a worker forked from the template applies them as its
first act (the template's own environment holds no device and one thread per library).

Thread variables follow one rule: the user's value wins. The pool sets a variable only
when the user (the host's environment, or ``open_pool(env=...)``) set neither it nor a
variable the library falls back to (``OMP_NUM_THREADS`` for most of them), so a user's
``OMP_NUM_THREADS=4`` reaches OpenBLAS as it would without the pool.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

DEVICE = "SNAKEPIT_TRIO_DEVICE"  # "cuda:GPU-…": the device a worker is pinned to
THREADS = "SNAKEPIT_TRIO_THREADS"  # the thread budget the pool gave each worker

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
# Variables each library reads, first set wins (OpenBLAS, MKL, BLIS, numexpr fall back to
# OpenMP's); keyed by threadpoolctl's ``internal_api``.
LIBRARY_VARS: dict[str, tuple[str, ...]] = {
    "openblas": ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
    "mkl": ("MKL_NUM_THREADS", "OMP_NUM_THREADS"),
    "blis": ("BLIS_NUM_THREADS", "OMP_NUM_THREADS"),
    "openmp": ("OMP_NUM_THREADS",),
}
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "OPENBLAS_NUM_THREADS": ("GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
    "MKL_NUM_THREADS": ("OMP_NUM_THREADS",),
    "BLIS_NUM_THREADS": ("OMP_NUM_THREADS",),
    "NUMEXPR_NUM_THREADS": ("OMP_NUM_THREADS",),
}

# What a device of each kind takes: its mask, and the masks that would index into it.
_MASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cuda": ("CUDA_VISIBLE_DEVICES", ()),
    # HIP reads HIP_VISIBLE_DEVICES (or CUDA_VISIBLE_DEVICES) as indices into what
    # ROCR_VISIBLE_DEVICES lets through: with one device left, an inherited index would
    # name nothing.
    "rocm": (
        "ROCR_VISIBLE_DEVICES",
        ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"),
    ),
}

Overrides = dict[str, str | None]  # None: remove the variable


def thread_env(threads: int, given: Mapping[str, str]) -> Overrides:
    """Each thread variable as a worker gets it: the user's value where ``given`` (the
    environment the user gave) sets it, else ``threads`` (or nothing, where the user set a
    variable it falls back to). A value for every variable, so a forked worker, whose
    template ran with one thread, ends up with what a fresh one would have."""
    out: Overrides = {}
    for var in THREAD_VARS:
        if var in given:
            out[var] = given[var]
        elif any(fallback in given for fallback in _FALLBACKS.get(var, ())):
            out[var] = None
        else:
            out[var] = str(threads)
    out[THREADS] = str(threads)
    return out


def template_thread_env() -> Overrides:
    """The template's: one thread per library, so importing numpy there starts no thread
    pool (which would make forking unsafe); each fork then sets its own."""
    return {var: "1" for var in THREAD_VARS}


def device_env(spec: str | None) -> Overrides:
    """The variables that pin a worker to ``spec`` (``"cuda:GPU-…"``), or None: no pin."""
    if spec is None:
        return {DEVICE: None}
    kind, _, uuid = spec.partition(":")
    mask, clear = _MASKS[kind]
    out: Overrides = dict.fromkeys(clear)
    out[mask] = uuid
    out[DEVICE] = spec
    return out


def apply(env: MutableMapping[str, str], overrides: Mapping[str, str | None]) -> None:
    """Set each variable of ``overrides`` in ``env``; remove those whose value is None."""
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def library_threads(internal_api: str, env: Mapping[str, str]) -> int | None:
    """The thread count ``env`` asks of a library (threadpoolctl's ``internal_api``:
    ``"openblas"``, ``"mkl"``, ``"blis"``, ``"openmp"``), or None when it asks nothing.
    ``OMP_NUM_THREADS`` may list one count per nesting level: the first is the outer one."""
    for var in LIBRARY_VARS.get(internal_api, ()):
        value = env.get(var)
        if value is None:
            continue
        try:
            count = int(value.split(",")[0])
        except ValueError:
            return None  # the library ignores it too (and uses its default)
        return count if count > 0 else None
    return None
