"""End-to-end, Node.js workers only: what the contract suite cannot say for both runtimes.

How a Node adapter that cannot start is reported, and Arrow tables carried through a worker
that does not read them (it keeps their IPC bytes and sends them back unchanged).
"""

from __future__ import annotations

import pathlib

import pyarrow as pa
import pytest
import trio

import snakepit_trio as sp

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTRACT = str(ROOT / "tests" / "adapters" / "contract.mjs")


async def test_an_adapter_that_throws_at_import_is_a_start_error_with_its_cause(
    tmp_path: pathlib.Path,
) -> None:
    adapter = tmp_path / "broken.mjs"
    adapter.write_text('throw new TypeError("broken at import: check the config");\n')
    with trio.fail_after(60), pytest.raises(sp.WorkerStartError) as info:
        async with sp.open_pool(str(adapter), runtime="node", size=1):
            pass
    assert "broken at import: check the config" in str(info.value)
    assert info.value.stderr_tail  # the worker's own account


async def test_an_adapter_without_a_default_class_is_a_start_error(
    tmp_path: pathlib.Path,
) -> None:
    adapter = tmp_path / "empty.mjs"
    adapter.write_text("export const tools = {};\n")
    with trio.fail_after(60), pytest.raises(sp.WorkerStartError) as info:
        async with sp.open_pool(str(adapter), runtime="node", size=1):
            pass
    assert "default" in str(info.value)


async def test_arrow_tables_pass_through_a_node_worker_unchanged() -> None:
    table = pa.table({"region": ["north", None, "south"], "amount": [120.0, 80.5, None]})
    with trio.fail_after(60):
        async with sp.open_pool(CONTRACT, runtime="node", size=1) as pool:
            back = await pool.execute("echo", {"value": {"sales": table, "n": 3}})
    assert back["n"] == 3 and back["sales"].equals(table)
