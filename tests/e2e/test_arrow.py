"""Arrow tables and DLPack tensors through real workers, over both transports.

Small tables travel inline, large ones through shared memory, read in place on both sides
(proved by address against /proc/self/maps); a segment is reused once no table viewing it is
left. A worker without pyarrow is named as such: the host refuses to send it a table, and a
worker whose pyarrow cannot be imported fails the call with what to install, and serves on.
"""

from __future__ import annotations

import gc
import os
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _shm
from tests.adapters.tables import Tensor, make_table, where_buffers_are
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")

TABLES = "tests.adapters.tables:Tables"
MB = 2**20


def _segments(pool: sp.Pool, maker: str | None = None) -> list[str]:
    prefix = _shm.prefix(pool._engine.launcher.records.token, maker)
    return sorted(name for name in os.listdir(_shm.SHM_DIR) if name.startswith(prefix))


def _worker(pool: sp.Pool) -> str:
    [worker] = pool.workers()
    return worker.id


def _capabilities(pool: sp.Pool) -> set[frozenset[str]]:
    return {worker.capabilities for worker in pool._engine.workers.values()}


async def test_tables_travel_inline_both_ways() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(TABLES, size=1) as pool:
            assert all("arrow" in caps for caps in _capabilities(pool))
            table = pa.table({"s": ["a", None, "c"], "l": [[1], [], None], "f": [1.5, 2.5, None]})
            batch = table.to_batches()[0]
            back = await pool.execute("echo", {"value": {"t": table, "b": [batch]}})
            assert type(back["t"]) is pa.Table and back["t"].equals(table)
            assert type(back["b"][0]) is pa.Table and back["b"][0].to_batches()[0].equals(batch)
            # Below the threshold: views of the message, in no segment.
            assert where_buffers_are(back["t"])["segments"] == []
            made = await pool.execute("table", {"megabytes": 0.01})
            assert made.equals(make_table(0.01))
            assert await pool.execute("summary", {"value": table}) == {
                "type": "pyarrow.lib.Table",
                "rows": 3,
            }
            assert _segments(pool) == []


async def test_a_10_mb_table_is_read_in_place_and_its_segments_reused() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(TABLES, size=1, shm_threshold=MB) as pool:
            host = pool._engine.payloads.segments
            assert host is not None
            worker = _worker(pool)
            table = make_table(10)
            assert table.nbytes >= 10 * MB

            # In the worker, the argument's buffers lie in the segment the host made.
            seen = await pool.execute("where", {"table": table})
            assert seen["outside"] == 0 and seen["aligned"] and seen["count"] == 5
            [argument_segment] = seen["segments"]
            assert argument_segment in _segments(pool, "host")

            # Back on the host, the result's buffers lie in the segment the worker made.
            back = await pool.execute("echo", {"value": table})
            assert back.equals(table)
            here = where_buffers_are(back)
            assert here["outside"] == 0 and here["aligned"]
            [result_segment] = here["segments"]
            assert result_segment in _segments(pool, worker)

            # While it lives, the worker never rewrites that segment: it makes another.
            made = _segments(pool, worker)
            second = await pool.execute("echo", {"value": table})  # `back` still lives
            [other] = where_buffers_are(second)["segments"]
            assert other != result_segment and len(_segments(pool, worker)) == len(made) + 1

            # Once no table views them, the host unmaps them and tells the worker (UNMAPPED).
            del back, second
            gc.collect()
            assert where_buffers_are(table)["segments"] == []  # the proof can fail: ours
            assert not any(s in _on_maps() for s in (result_segment, other))
            await wait_for(lambda: not pool._engine.payloads.pending)
            await wait_for(lambda: not host.out_names())  # and the worker let go of ours

            # From now on the same segments carry every round trip: none is made.
            everything = _segments(pool)
            reused = host.reused
            for seed in range(3):
                value = make_table(10, seed)
                back = await pool.execute("echo", {"value": value})
                assert back.equals(value)  # new contents in the old segments
                assert where_buffers_are(back)["segments"][0] in (result_segment, other)
                del back
                gc.collect()
                await wait_for(lambda: not pool._engine.payloads.pending)
                await wait_for(lambda: not host.out_names())
            assert _segments(pool) == everything
            assert host.reused == reused + 3


def _on_maps() -> str:
    with open("/proc/self/maps") as maps:
        return maps.read()


def _hiding_pyarrow(directory: Path, *, broken: bool) -> str:
    """A sitecustomize that hides pyarrow from a worker: not installed (``broken`` False:
    finding it fails), or installed but failing to import (``broken``: as a bad build)."""
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.abc
            import importlib.machinery
            import sys


            class _Broken(importlib.abc.Loader):
                def create_module(self, spec):
                    return None

                def exec_module(self, module):
                    raise ImportError("this pyarrow is broken (the test's stand-in)")


            class _HidePyarrow(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name != "pyarrow" and not name.startswith("pyarrow."):
                        return None
                    if {broken!r}:
                        return importlib.machinery.ModuleSpec(name, _Broken())
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


            sys.meta_path.insert(0, _HidePyarrow())
            """
        )
    )
    return str(directory)


async def test_a_worker_without_pyarrow_is_sent_no_table(tmp_path: Path) -> None:
    path = _hiding_pyarrow(tmp_path / "site", broken=False)
    with trio.fail_after(30):
        async with sp.open_pool(TABLES, size=1, pythonpath=[path]) as pool:
            assert _capabilities(pool) and all("arrow" not in c for c in _capabilities(pool))
            with pytest.raises(sp.SerializationError) as info:
                await pool.execute("echo", {"value": [pa.table({"a": [1]})]})
            text = str(info.value)
            assert text.startswith("cannot encode arguments of 'echo': at ['value'][0]: an Arrow")
            assert "no 'arrow' capability" in text and "snakepit_trio[arrow]" in text
            assert pool.stats().requests == 0  # refused before it was sent
            assert await pool.execute("echo", {"value": [1, "two"]}) == [1, "two"]


async def test_a_worker_whose_pyarrow_fails_to_import_fails_the_call_and_serves_on(
    tmp_path: Path,
) -> None:
    path = _hiding_pyarrow(tmp_path / "site", broken=True)
    with trio.fail_after(30):
        async with sp.open_pool(TABLES, size=1, pythonpath=[path], shm_threshold=MB) as pool:
            host = pool._engine.payloads.segments
            assert host is not None
            [pid] = [w.pid for w in pool.workers()]
            assert "arrow" in next(iter(_capabilities(pool)))  # installed: named
            for table in (pa.table({"a": [1, 2]}), make_table(2)):  # inline, shared memory
                with pytest.raises(sp.SerializationError) as info:
                    await pool.execute("echo", {"value": table})
                text = str(info.value)
                assert text.startswith("cannot decode arguments of 'echo': an Arrow table"), text
                assert "ImportError: this pyarrow is broken" in text
                assert "install snakepit_trio[arrow] (pyarrow>=15)" in text
            # The segment it never mapped is handed back, and the worker lives on.
            await wait_for(lambda: not host.out_names())
            assert np.array_equal(await pool.execute("echo", {"value": np.arange(3)}), np.arange(3))
            assert [w.pid for w in pool.workers()] == [pid]


async def test_dlpack_tensors_in_host_memory_travel_as_arrays() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(TABLES, size=1, shm_threshold=MB) as pool:
            for n in (10, MB // 4):  # inline, shared memory
                array = np.arange(n, dtype=np.float64)
                arrived = await pool.execute("summary", {"value": Tensor(array)})
                assert arrived == {
                    "type": "numpy.ndarray",
                    "writeable": False,
                    "sum": float(array.sum()),
                }
                back = await pool.execute("tensor", {"n": n})
                assert type(back) is np.ndarray and np.array_equal(back, array)
                assert not back.flags.writeable
                assert sp.writable(back).flags.writeable
            with pytest.raises(sp.SerializationError) as info:
                await pool.execute("echo", {"value": Tensor(np.zeros(3), (2, 0))})
            assert "in CUDA memory (DLPack device type 2, id 0)" in str(info.value)
            assert "call .cpu()" in str(info.value)
            # One made on a device in the worker fails that call; the worker serves on.
            with pytest.raises(sp.SerializationError, match=r"result of 'tensor'.*\.cpu\(\)"):
                await pool.execute("tensor", {"n": 3, "device": 2})
            assert await pool.execute("echo", {"value": 1}) == 1
