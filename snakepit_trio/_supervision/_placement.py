"""Where each worker slot runs: its device and its threads, decided once when the pool opens.

``resolve`` reads the machine (``hardware.detect``, in a thread) only when it must:
``devices=`` to check and plan against what the host may use, ``threads_per_worker="auto"``
to count this process's CPUs. Everything it decides is in the returned ``Placement``, so a
replacement worker, forked or fresh, gets exactly what its slot got the first time: no
device is detected again, and a bad option fails ``open_pool`` before any worker starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import trio

from .._config import PoolConfig
from .._shared._placement import (
    THREADS,
    Overrides,
    device_env,
    template_thread_env,
    thread_env,
)
from ..hardware._detect import detect
from ..hardware._plan import plan
from ..hardware._probe import cpu as read_cpu

log = logging.getLogger("snakepit_trio")


@attrs.frozen
class Placement:
    """The resolved ``devices`` and ``threads_per_worker`` of a pool."""

    devices: tuple[str, ...] = ()  # one per slot ("cuda:GPU-…"), or none: not pinned
    threads: int | None = None  # None: the thread variables are left alone
    given: Mapping[str, str] = attrs.field(factory=dict)  # the user's environment

    def device(self, slot: int) -> str | None:
        """The device of ``slot``'s workers, or None."""
        return self.devices[slot % len(self.devices)] if self.devices else None

    def worker(self, slot: int) -> Overrides:
        """What a worker of ``slot`` changes in the environment it starts with."""
        out = device_env(self.device(slot))
        out.update(
            {THREADS: None} if self.threads is None else thread_env(self.threads, self.given)
        )
        return out

    def template(self) -> Overrides:
        """What the template changes: no device, and one thread per library (each fork then
        applies its own ``worker(slot)``)."""
        out = device_env(None)
        out[THREADS] = None
        if self.threads is not None:
            out.update(template_thread_env())
        return out


async def resolve(config: PoolConfig) -> Placement:
    """The placement of ``config``'s slots.

    Raises:
        ValueError: a device the host cannot use, no device of the kind asked for, or a
            device mask that cannot be read (each message names what to change).
    """
    given = {**os.environ, **config.env}
    threads = config.threads_per_worker
    if threads == "auto":
        usable = (await trio.to_thread.run_sync(read_cpu, Path("/"))).usable
        threads = max(1, usable // (config.size * config.worker_capacity))
    devices: tuple[str, ...] = ()
    if config.devices is not None:
        info = await trio.to_thread.run_sync(detect)
        devices = plan(
            config.devices,
            config.size,
            detected=info.cuda + info.rocm,
            env=given,
            notes=info.notes,
        )
        log.info("%s: workers pinned by slot to %s", config.name, ", ".join(devices))
    return Placement(devices=devices, threads=threads, given=given)
