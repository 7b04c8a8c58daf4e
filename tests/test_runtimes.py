"""Which program starts a worker of each runtime (_supervision/_runtimes.py)."""

from __future__ import annotations

import pathlib
import sys

import pytest

import snakepit_trio as sp
from snakepit_trio._config import PoolConfig
from snakepit_trio._supervision import _runtimes as runtimes

ECHO = "tests.adapters.basic:Echo"


def test_python_workers_run_the_worker_module_and_may_fork() -> None:
    prog = runtimes.program(PoolConfig(adapter=ECHO, python="/opt/py/bin/python3"))
    assert prog.argv == ("/opt/py/bin/python3", "-m", "snakepit_trio.worker")
    assert prog.adapter == ECHO and prog.maps_segments and prog.forks


def test_a_python_worker_command_replaces_the_interpreter_and_is_never_forked() -> None:
    cfg = PoolConfig(adapter=ECHO, worker_command=["uv", "run", "python", "-m", "w"])
    prog = runtimes.program(cfg)
    assert prog.argv == ("uv", "run", "python", "-m", "w")
    assert prog.maps_segments and not prog.forks


def _adapter(tmp_path: pathlib.Path) -> pathlib.Path:
    adapter = tmp_path / "app" / "adapter.mjs"
    adapter.parent.mkdir()
    adapter.write_text("export default class A { static tools = {}; }\n")
    return adapter


def test_a_node_adapter_is_made_absolute_and_the_package_beside_it_is_found(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = _adapter(tmp_path)
    script = tmp_path.joinpath("node_modules", runtimes.NODE_PACKAGE, *runtimes.NODE_SCRIPT)
    script.parent.mkdir(parents=True)
    script.write_text("")
    monkeypatch.delenv(runtimes.NODE_WORKER_VARIABLE, raising=False)
    monkeypatch.setattr(runtimes.shutil, "which", lambda name: f"/usr/local/bin/{name}")
    prog = runtimes.program(PoolConfig(adapter="app/adapter.mjs", runtime="node"), str(tmp_path))
    assert prog.argv == ("/usr/local/bin/node", str(script))
    assert prog.adapter == str(adapter)
    assert not prog.maps_segments and not prog.forks


def test_the_variable_picks_the_node_worker_by_hand(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = _adapter(tmp_path)
    chosen = tmp_path / "mine.mjs"
    chosen.write_text("")
    monkeypatch.setenv(runtimes.NODE_WORKER_VARIABLE, str(chosen))
    assert runtimes.node_script(str(adapter)) == str(chosen)
    monkeypatch.setenv(runtimes.NODE_WORKER_VARIABLE, str(tmp_path / "gone.mjs"))
    with pytest.raises(sp.WorkerStartError, match=r"SNAKEPIT_TRIO_NODE_WORKER.*not a file"):
        runtimes.node_script(str(adapter))


def test_a_missing_adapter_file_or_node_is_a_start_error_saying_what_to_do(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = PoolConfig(adapter="missing.mjs", runtime="node")
    with pytest.raises(sp.WorkerStartError, match=r"'missing.mjs' is not a file"):
        runtimes.program(cfg, str(tmp_path))
    _adapter(tmp_path)
    monkeypatch.setattr(runtimes.shutil, "which", lambda name: None)
    with pytest.raises(sp.WorkerStartError, match="no 'node' on PATH"):
        runtimes.program(PoolConfig(adapter="app/adapter.mjs", runtime="node"), str(tmp_path))


def test_a_worker_command_runs_any_runtime(tmp_path: pathlib.Path) -> None:
    adapter = _adapter(tmp_path)
    cfg = PoolConfig(adapter="app/adapter.mjs", runtime="ruby", worker_command=["ruby", "w.rb"])
    prog = runtimes.program(cfg, str(tmp_path))
    assert prog.argv == ("ruby", "w.rb") and prog.adapter == str(adapter)
    # A name that is not a file here is the command's own business.
    cfg = PoolConfig(adapter="Echo::Adapter", runtime="ruby", worker_command=["ruby", "w.rb"])
    assert runtimes.program(cfg, str(tmp_path)).adapter == "Echo::Adapter"


def test_runtimes_without_a_builtin_worker_need_a_command() -> None:
    with pytest.raises(ValueError, match=r"runtime='ruby'.*worker_command"):
        PoolConfig(adapter="x.rb", runtime="ruby")
    # A file adapter is not held to the Python form.
    assert PoolConfig(adapter="./adapter.mjs", runtime="node").adapter == "./adapter.mjs"
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        PoolConfig(adapter="./adapter.mjs")


async def test_a_pool_runs_python_workers_through_a_worker_command() -> None:
    async with sp.open_pool(
        ECHO, size=1, worker_command=[sys.executable, "-m", "snakepit_trio.worker"]
    ) as pool:
        assert await pool.execute("add", {"a": 1, "b": 2}) == 3
        assert pool.config.start_method == "spawn"  # never forked from the template
        assert pool.workers()[0].runtime == "python"


def test_the_node_worker_carries_the_same_proto() -> None:
    """The npm package ships its own copy of the contract: it must be this one."""
    root = pathlib.Path(__file__).resolve().parents[1]
    ours = root / "proto" / "snakepit" / "v1" / "worker.proto"
    theirs = root / "workers" / "node" / "proto" / "snakepit" / "v1" / "worker.proto"
    assert theirs.read_bytes() == ours.read_bytes(), "copy proto/ into workers/node/proto/"


@pytest.mark.parametrize(
    ("inherited", "left"),
    [
        ("--inspect", None),
        ("--inspect=0.0.0.0:9229 --max-old-space-size=512", "--max-old-space-size=512"),
        ("--inspect-brk --inspect-port=1 --inspect-wait", None),
        ("--max-old-space-size=512", "--max-old-space-size=512"),
    ],
)
def test_node_workers_inherit_no_inspect_flags(inherited: str, left: str | None) -> None:
    env = {"NODE_OPTIONS": inherited, "PATH": "/bin"}
    runtimes.node_env(env, {})
    assert env.get("NODE_OPTIONS") == left and env["PATH"] == "/bin"
    chosen = {"NODE_OPTIONS": "--inspect"}  # the pool's env: the user's own choice
    env = {"NODE_OPTIONS": "--inspect"}
    runtimes.node_env(env, chosen)
    assert env == {"NODE_OPTIONS": "--inspect"}
