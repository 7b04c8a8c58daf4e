"""End-to-end (real workers): when the pool cannot start, or is used outside Trio, the
error's first line says why, and the next lines what to change."""

from __future__ import annotations

import asyncio
import pathlib

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import run_script

TRANSPORT_AGNOSTIC = True  # about starting workers, not about a transport (see conftest.py)


async def _start_error(adapter: str, **options: object) -> sp.WorkerStartError:
    with trio.fail_after(60):
        with pytest.raises(sp.WorkerStartError) as info:
            async with sp.open_pool(adapter, size=1, registry=False, **options):  # type: ignore[arg-type]
                raise AssertionError("open_pool must not yield")  # pragma: no cover
    return info.value


@pytest.mark.parametrize(
    ("adapter", "first_line", "advice"),
    [
        (
            "tests.adapters.basik:Echo",
            "No module named 'tests.adapters.basik' (cannot import adapter module "
            "'tests.adapters.basik') (did you mean 'tests.adapters.basic'?)",
            "pythonpath=",
        ),
        (
            "tests.adapters.raises_on_import:Model",
            "RuntimeError: config file missing: /etc/app.toml (raised while importing "
            "adapter module 'tests.adapters.raises_on_import'",
            "",
        ),
        (
            "tests.adapters.basic:Eco",
            "module 'tests.adapters.basic' has no attribute 'Eco' (did you mean 'Echo'?)",
            "Adapter classes in ",
        ),
        (
            "tests.adapters.import_error:Anything",
            "No module named 'a_module_that_does_not_exist' (adapter module "
            "'tests.adapters.import_error' imports it)",
            "Install it for the workers' interpreter",
        ),
        (
            "tests.adapters.broken:FailsInitialize",
            "RuntimeError: model weights not found at /nowhere",
            "",
        ),
    ],
)
@pytest.mark.parametrize("start_method", ["auto", "spawn"])
async def test_a_worker_start_error_puts_the_root_cause_first(
    adapter: str, first_line: str, advice: str, start_method: str
) -> None:
    error = await _start_error(adapter, start_method=start_method)
    lines = str(error).splitlines()
    assert lines[0].startswith(f"worker pool-0 failed to start: {first_line}"), lines[0]
    assert advice in "\n".join(lines[1:])
    assert "(exited with code 3 before it was ready)" in lines
    assert "--- worker stderr (last lines) ---" in lines  # the traceback follows
    assert error.reason == "exited with code 3 before it was ready"


async def test_a_module_outside_the_import_path_is_found_through_pythonpath(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "elsewhere_adapter.py").write_text(
        "from snakepit_trio.worker import Adapter, tool\n\n"
        "class Model(Adapter):\n"
        "    @tool\n"
        "    def ping(self) -> str:\n"
        "        return 'pong'\n"
    )
    error = await _start_error("elsewhere_adapter:Model")
    first, advice = str(error).splitlines()[:2]
    assert "No module named 'elsewhere_adapter'" in first
    assert "pythonpath=['/that/directory']" in advice and "cwd=" in advice
    with trio.fail_after(60):
        async with sp.open_pool(
            "elsewhere_adapter:Model", size=1, registry=False, pythonpath=[tmp_path]
        ) as pool:
            assert await pool.execute("ping") == "pong"


SCRIPT = """
import json, trio, snakepit_trio as sp
from snakepit_trio.worker import Adapter, tool

class Model(Adapter):  # defined in the script the user runs: its module is __main__
    @tool
    def ping(self) -> str:
        return "pong"

async def main():
    try:
        async with sp.open_pool("__main__:Model", size=1, registry=False):
            pass
    except sp.WorkerStartError as exc:
        print(json.dumps(str(exc)))

trio.run(main)
"""


def test_an_adapter_in_main_is_explained(tmp_path: pathlib.Path) -> None:
    said = run_script(tmp_path, SCRIPT, timeout=120)
    lines = said.splitlines()
    assert lines[0] == (
        "worker pool-0 failed to start: module '__main__' has no attribute 'Model': in a "
        "worker, __main__ is the worker program (python -m snakepit_trio.worker), not your "
        "script"
    )
    assert "Move the adapter class into a module of its own" in lines[1]
    assert "'adapters:Model'" in lines[1]


def test_open_pool_under_asyncio_says_it_needs_trio() -> None:
    async def main() -> None:
        async with sp.open_pool("tests.adapters.basic:Echo", size=1, registry=False):
            raise AssertionError("open_pool must not yield")  # pragma: no cover

    with pytest.raises(RuntimeError) as info:
        asyncio.run(main())
    message = str(info.value)
    assert message.startswith("snakepit_trio needs Trio: call open_pool from code run by trio.run")
    assert "(this is asyncio)" in message
    assert "asyncio.to_thread(trio.run, main)" in message
