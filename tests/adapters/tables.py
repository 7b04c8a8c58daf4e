"""Arrow tables and DLPack tensors in real workers (tests/e2e/test_arrow.py).

pyarrow is imported inside the tools only: the same module serves workers where it is hidden.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snakepit_trio.worker import Adapter, tool

SHM = "/dev/shm/"


class Tensor:
    """A DLPack producer backed by a numpy array, on the device it claims (a torch tensor's
    stand-in: ``(1, 0)`` is the CPU, ``(2, 0)`` the first CUDA device)."""

    def __init__(self, array: Any, device: tuple[int, int] = (1, 0)) -> None:
        self.array = array
        self.device = device

    def __dlpack__(self, **kwargs: Any) -> Any:
        if self.device[0] != 1:
            raise AssertionError("a device tensor must be refused before it is exported")
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.device


def _mappings() -> list[tuple[int, int, str]]:
    """This process's mappings of /dev/shm files: (start, end, file name)."""
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith(SHM):
                low, high = (int(x, 16) for x in fields[0].split("-"))
                found.append((low, high, fields[5].strip().removeprefix(SHM).split(" ")[0]))
    return found


def where_buffers_are(table: Any) -> dict[str, Any]:
    """Which shared-memory segments the buffers of ``table``'s columns lie in (by address,
    from /proc/self/maps), how many lie in none, and whether all are 8-byte aligned."""
    maps = _mappings()
    segments: set[str] = set()
    outside, aligned, count = 0, True, 0
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is None or not buffer.size:
                    continue
                count += 1
                aligned = aligned and buffer.address % 8 == 0
                hits = [
                    name
                    for low, high, name in maps
                    if low <= buffer.address and buffer.address + buffer.size <= high
                ]
                if hits:
                    segments.update(hits)
                else:
                    outside += 1
    return {"segments": sorted(segments), "outside": outside, "aligned": aligned, "count": count}


def make_table(megabytes: float, seed: int = 0) -> Any:
    """About ``megabytes`` MB of columns: floats, ints, and strings with nulls."""
    import pyarrow as pa

    rows = int(megabytes * 2**20 / 20)  # about 22 bytes a row: a little over
    rng = np.random.default_rng(seed)
    words = pa.array([None if i % 11 == 0 else f"w{i % 97}" for i in range(min(rows, 5000))])
    return pa.table(
        {
            "x": rng.random(rows),
            "n": np.arange(rows, dtype=np.int64) + seed,
            "s": pa.concat_arrays([words] * (rows // len(words)) + [words[: rows % len(words)]]),
        }
    )


class Tables(Adapter):
    @tool
    def echo(self, value: object = None) -> object:
        return value

    @tool
    def where(self, table: object) -> dict[str, Any]:
        """Where the argument's buffers lie here (the zero-copy proof on the worker's side)."""
        return where_buffers_are(table)

    @tool
    def table(self, megabytes: float, seed: int = 0) -> object:
        return make_table(megabytes, seed)

    @tool
    def summary(self, value: object) -> dict[str, Any]:
        """What the argument arrived as."""
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        out: dict[str, Any] = {"type": kind}
        if isinstance(value, np.ndarray):
            out.update(writeable=bool(value.flags.writeable), sum=float(value.sum()))
        else:
            out["rows"] = getattr(value, "num_rows", None)
        return out

    @tool
    def tensor(self, n: int, device: int = 1) -> object:
        return Tensor(np.arange(n, dtype=np.float64), (device, 0))
