"""Shared memory over TCP: is a worker reached over TCP on this host, seeing our ``/dev/shm``?

A pool of ``endpoints`` uses segments with a worker only if its HELLO's offer (see the
proto's "Carrier 1 over TCP") passes two checks on the worker:

1. the same ``host_id``: a hash of the kernel's boot id and the machine id, so another
   machine (or a reboot since) never matches, and a worker that cannot read either file
   never matches;
2. the probe: the host made a segment holding random bytes and named it in the offer; the
   worker opens it as any segment (this user's, private: ``_shm.attach``) and sends its bytes
   back in WELCOME. Two containers sharing a kernel, but not ``/dev/shm`` (or not the user),
   pass the first check and fail this one; only the bytes themselves prove the worker sees
   the host's segments. The host then compares them and removes the probe.

Both sides share this module, so it imports neither trio nor asyncio.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from typing import Any

import attrs

from . import _shm
from ._segments import SegmentCache

BOOT_ID = "/proc/sys/kernel/random/boot_id"
MACHINE_ID = "/etc/machine-id"
PROBE_BYTES = 16
# A maker prefix the host gives: "snakepit-<pool id>-<worker id>-" (see _shm.prefix).
MAX_PREFIX = 120


@functools.cache
def host_id() -> str | None:
    """This machine, as of this boot: a hash of the boot id and machine id (None: unknown)."""
    parts = []
    for path in (BOOT_ID, MACHINE_ID):
        try:
            with open(path, "rb") as f:
                parts.append(f.read().strip())
        except OSError:
            return None
    if not all(parts):
        return None
    return hashlib.blake2b(b"\0".join(parts), digest_size=16, person=b"snakepit-host").hexdigest()


@attrs.frozen
class Probe:
    """The host's side of one offer: the segment it made, and the bytes it holds."""

    name: str
    secret: bytes

    def matches(self, describe: dict[str, Any]) -> bool:
        """Did the worker read our probe's bytes (its WELCOME's ``shm``)?"""
        answer = describe.get("shm")
        return isinstance(answer, bytes) and secrets.compare_digest(answer, self.secret)

    def remove(self) -> None:
        _shm.unlink(self.name)


def offer(pool_token: str, worker_id: str, threshold: int) -> tuple[dict[str, Any], Probe] | None:
    """The HELLO's ``shm`` map for worker ``worker_id`` of a pool, and its probe; None when
    this host has no shared memory or no host id (then nothing is offered)."""
    me = host_id()
    if me is None or not _shm.available():
        return None
    secret = secrets.token_bytes(PROBE_BYTES)
    name = _shm.create(_shm.prefix(pool_token, "probe"), memoryview(secret))
    offered = {
        "host_id": me,
        "probe": name,
        "prefix": _shm.prefix(pool_token, worker_id),
        "threshold": threshold,
    }
    return offered, Probe(name, secret)


@attrs.frozen
class Accepted:
    """The worker's side of an offer it took: its bytes for WELCOME, its results' segments."""

    proof: bytes
    segments: SegmentCache
    threshold: int


def accept(offered: object) -> tuple[Accepted | None, str]:
    """Check a HELLO's ``shm`` offer on the worker; the result, and why not if refused."""
    if not isinstance(offered, dict):
        return None, "no offer"
    probe, prefix = offered.get("probe"), offered.get("prefix")
    threshold = offered.get("threshold")
    if not (
        isinstance(probe, str)
        and isinstance(prefix, str)
        and prefix.startswith("snakepit-")
        and len(prefix) <= MAX_PREFIX
        and "/" not in prefix
        and type(threshold) is int
        and threshold > 0
    ):
        return None, "a malformed offer"
    me = host_id()
    if me is None or offered.get("host_id") != me:
        return None, "another host (its host id differs from this worker's)"
    if not _shm.available():
        return None, "no /dev/shm here"
    try:
        mapping = _shm.attach(probe, PROBE_BYTES)
    except (OSError, ValueError) as exc:  # PermissionError is an OSError
        return None, f"its probe segment cannot be opened here ({exc})"
    with mapping:
        proof = bytes(mapping)
    return Accepted(proof, SegmentCache(prefix), threshold), ""
