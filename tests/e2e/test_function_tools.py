"""End-to-end (real workers, both transports): module-level functions served as tools
(``open_pool(tools=[...])``), alone or beside an adapter, in spawned, forked and
``worker_command`` workers; and every way an entry can be wrong, refused with what to do."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest
import trio

import snakepit_trio as sp
from tests.adapters import functions
from tests.helpers import run_script

F = "tests.adapters.functions"
ECHO = "tests.adapters.basic:Echo"


@pytest.mark.parametrize("start_method", ["spawn", "zygote"])
async def test_functions_alone_are_served_sync_async_and_streaming(start_method: str) -> None:
    entries = [f"{F}:{name}" for name in ("score", "ascore", "count", "acount", "where")]
    with trio.fail_after(30):
        async with sp.open_pool(tools=entries, size=2, start_method=start_method) as pool:
            assert pool.config.adapter is None and pool.config.tools == tuple(entries)
            assert await pool.execute("score", {"x": 3, "weight": 0.5}) == 1.5
            assert await pool.execute("score", {"x": 3}) == 3
            assert await pool.execute("ascore", {"x": 4}) == {"x": 8, "loop": True}
            async with pool.stream("count", {"n": 500}, window=8) as chunks:
                assert [c async for c in chunks] == list(range(500))
            async with pool.stream("acount", {"n": 20}) as chunks:
                assert [c async for c in chunks] == list(range(20))
            with pytest.raises(sp.InvalidArguments, match="weigth"):
                await pool.execute("score", {"x": 1, "weigth": 2})
            specs = {t.name: t for t in pool.tools()}
            assert set(specs) == {"score", "ascore", "count", "acount", "lineage"}
            assert specs["score"].description == "Score one item."
            assert specs["lineage"].description == "Where this worker came from"
            assert specs["count"].streaming and not specs["score"].streaming
            assert [(p.name, p.type, p.required) for p in specs["score"].params] == [
                ("x", "int", True),
                ("weight", "float", False),
            ]
            lineage = await pool.execute("lineage")
            assert lineage["pid"] in {w.pid for w in pool.workers()}
            forked = lineage["ppid"] != os.getpid()  # its parent is the template
            assert forked is (start_method == "zygote")
            assert "tools=5" in repr(pool)


async def test_map_over_ten_thousand_items_in_chunks() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(tools=[f"{F}:score"], size=2) as pool:
            items = ({"x": i, "weight": 2.0} for i in range(10_000))
            async with pool.map("score", items, chunksize=256) as results:
                got = [r async for r in results]
            assert got == [2.0 * i for i in range(10_000)]
            assert pool.stats().requests < 10_000 // 256 + 20  # chunks, not items, were calls


async def test_functions_join_an_adapter_and_may_be_given_as_functions() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, tools=[functions.score, f"{F}:acount"], size=1) as pool:
            assert pool.config.tools == (f"{F}:score", f"{F}:acount")
            names = {t.name for t in pool.tools()}
            assert {"score", "acount", "echo", "add", "count"} <= names
            assert await pool.execute("add", {"a": 2, "b": 40}) == 42
            assert await pool.execute("score", {"x": 2, "weight": 3.0}) == 6.0
            async with pool.stream("acount", {"n": 3}) as chunks:
                assert [c async for c in chunks] == [0, 1, 2]


async def test_a_python_worker_command_gets_the_tools_too() -> None:
    command = [sys.executable, "-m", "snakepit_trio.worker"]
    with trio.fail_after(30):
        async with sp.open_pool(tools=[f"{F}:score"], size=1, worker_command=command) as pool:
            assert await pool.execute("score", {"x": 5}) == 5


async def _start_error(*adapter: str, **options: object) -> str:
    with trio.fail_after(60):
        with pytest.raises(sp.WorkerStartError) as info:
            async with sp.open_pool(*adapter, size=1, registry=False, **options):  # type: ignore[call-overload]
                raise AssertionError("open_pool must not yield")  # pragma: no cover
    return str(info.value)


@pytest.mark.parametrize(
    ("entry", "first_line", "advice"),
    [
        (
            "tests.adapters.nowhere:score",
            "No module named 'tests.adapters.nowhere' (cannot import module "
            "'tests.adapters.nowhere' of tools entry 'tests.adapters.nowhere:score')",
            "pythonpath=['/that/directory']",
        ),
        (
            "tests.adapters.raises_on_import:score",
            "RuntimeError: config file missing: /etc/app.toml (raised while importing module "
            "'tests.adapters.raises_on_import' of tools entry",
            "",
        ),
        (
            f"{F}:scroe",
            f"module '{F}' has no attribute 'scroe' (did you mean 'score'?) "
            f"(tools entry '{F}:scroe')",
            "Functions defined in ",
        ),
        (
            f"{F}:THRESHOLD",
            f"tools entry '{F}:THRESHOLD' is a float, not a function",
            "Name a function defined with def",
        ),
        (
            f"{F}:Scorer",
            f"tools entry '{F}:Scorer' is a class, not a function",
            "An Adapter subclass is served as the pool's adapter",
        ),
        (
            f"{F}:takes_args",
            f"TypeError: tools entry '{F}:takes_args': parameter 'values' is positional-only "
            "or *args",
            "",
        ),
    ],
)
@pytest.mark.parametrize("start_method", ["auto", "spawn"])
async def test_an_entry_the_worker_cannot_serve_is_named_first(
    entry: str, first_line: str, advice: str, start_method: str
) -> None:
    lines = (await _start_error(tools=[entry], start_method=start_method)).splitlines()
    assert lines[0].startswith(f"worker pool-0 failed to start: {first_line}"), lines[0]
    assert advice in "\n".join(lines[1:])
    assert "(exited with code 3 before it was ready)" in lines


async def test_a_template_that_cannot_load_the_tools_says_so() -> None:
    message = await _start_error(tools=[f"{F}:THRESHOLD"], start_method="zygote")
    assert message.startswith(
        "worker pool-template failed to start: the template process cannot fork workers: "
        f"the tools do not load: tools entry '{F}:THRESHOLD' is a float, not a function"
    )


@pytest.mark.parametrize(
    ("adapter", "entries", "first_line"),
    [
        (
            (ECHO,),
            [f"{F}:echo"],
            f"TypeError: tools entry '{F}:echo' makes a tool named 'echo', and so does "
            f"Echo.echo of adapter '{ECHO}'; rename one with @tool(name=...)",
        ),
        (
            (),
            [f"{F}:score", f"{F}:score_again"],
            f"TypeError: tools entry '{F}:score_again' makes a tool named 'score', and so does "
            f"tools entry '{F}:score'; rename one with @tool(name=...)",
        ),
    ],
)
async def test_a_name_clash_names_both_tools(
    adapter: tuple[str, ...], entries: list[str], first_line: str
) -> None:
    message = await _start_error(*adapter, tools=entries)
    assert message.splitlines()[0] == f"worker pool-0 failed to start: {first_line}"


def _outer() -> object:
    def inner(x: int) -> int:
        return x

    return inner


@pytest.mark.parametrize(
    ("entry", "error", "says"),
    [
        (lambda x: x, ValueError, "is a lambda: workers import a tool by its name"),
        (_outer(), ValueError, "is defined inside _outer(): workers can import only"),
        (f"{F}:<lambda>", ValueError, "define it with def at the top level of a module"),
        ("__main__:score", ValueError, "move it into a module of its own"),
        (functions.Scorer, TypeError, "is a class"),
        (f"{F}:Scorer.__call__", ValueError, "a method is served by an Adapter"),
    ],
)
async def test_what_workers_cannot_import_is_refused_before_any_starts(
    entry: object, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=r"^tools") as info:
        async with sp.open_pool(tools=[entry], size=1, registry=False):  # type: ignore[list-item]
            raise AssertionError("open_pool must not yield")  # pragma: no cover
    assert says in str(info.value)


SCRIPT = """
import json, trio, snakepit_trio as sp

def score(x: int) -> int:  # defined in the script the user runs: its module is __main__
    return x

async def main():
    try:
        async with sp.open_pool(tools=[score], size=1, registry=False):
            pass
    except ValueError as exc:
        print(json.dumps(str(exc)))

trio.run(main)
"""


def test_a_function_of_the_script_is_refused_with_its_fix(tmp_path: pathlib.Path) -> None:
    said = run_script(tmp_path, SCRIPT, timeout=60)
    assert said == (
        "tools entry '__main__:score' is a function of __main__, the script you ran: "
        "workers do not run your script, so they cannot import it; move it into a module "
        "of its own (e.g. tasks.py beside the script) and pass 'tasks:score'"
    )
