"""End-to-end, Node.js workers only: what the contract suite cannot say for both runtimes.

How a Node adapter that cannot start is reported, and Arrow tables carried through a worker
that does not read them (it keeps their IPC bytes and sends them back unchanged).
"""

from __future__ import annotations

import pathlib

import psutil
import pyarrow as pa
import pytest
import trio

import snakepit_trio as sp

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTRACT = str(ROOT / "tests" / "adapters" / "contract.mjs")


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ('throw new TypeError("broken at import: check the config");\n', "check the config"),
        ("export const tools = {};\n", "default"),  # no default class
    ],
    ids=["throws at import", "no default class"],
)
async def test_an_adapter_that_cannot_load_is_a_start_error_with_its_cause(
    tmp_path: pathlib.Path, source: str, said: str
) -> None:
    adapter = tmp_path / "broken.mjs"
    adapter.write_text(source)
    with trio.fail_after(60), pytest.raises(sp.WorkerStartError) as info:
        async with sp.open_pool(str(adapter), runtime="node", size=1):
            pass
    assert said in str(info.value)
    assert info.value.stderr_tail  # the worker's own account


async def test_arrow_tables_pass_through_a_node_worker_unchanged() -> None:
    table = pa.table({"region": ["north", None, "south"], "amount": [120.0, 80.5, None]})
    with trio.fail_after(60):
        async with sp.open_pool(CONTRACT, runtime="node", size=1) as pool:
            back = await pool.execute("echo", {"value": {"sales": table, "n": 3}})
    assert back["n"] == 3 and back["sales"].equals(table)


async def test_an_inherited_inspect_flag_opens_no_debugger_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NODE_OPTIONS", "--inspect=127.0.0.1:0")
    with trio.fail_after(60):
        async with sp.open_pool(CONTRACT, runtime="node", size=1) as pool:
            pid = await pool.execute("pid")
            environ = pathlib.Path(f"/proc/{pid}/environ").read_bytes()  # noqa: ASYNC240
            assert b"--inspect" not in environ
            listening = [
                c for c in psutil.Process(pid).net_connections("inet") if c.status == "LISTEN"
            ]
            assert listening == []
