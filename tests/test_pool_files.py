"""Unit (synchronous, no workers): pool configurations from TOML (``load_pools``), from a
snakepit.toml or pyproject.toml's ``[tool.snakepit-trio]``; unknown keys are refused by name,
as ``PoolConfig.build`` refuses unknown options, and bad values name their table and file."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

import snakepit_trio as sp

SNAKEPIT_TOML = """
[defaults]
timeout = 30
max_queue = 100

[pools.default]
adapter = "tests.adapters.basic:Echo"
size = 4

[pools.compute]
adapter = "tests.adapters.basic:Echo"
size = 1
worker_capacity = 8
profile = "thread"
timeout = 120
heartbeat_timeout = false
pythonpath = ["src", "lib"]
env = { OMP_NUM_THREADS = "1" }
restart = { initial = 0.5, max_delay = 10 }
"""


def write(tmp_path: pathlib.Path, text: str, name: str = "snakepit.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_snakepit_toml_gives_one_config_per_pool(tmp_path: pathlib.Path) -> None:
    pools = sp.load_pools(write(tmp_path, SNAKEPIT_TOML))
    assert list(pools) == ["default", "compute"]  # the file's order
    default, compute = pools["default"], pools["compute"]
    assert (default.size, default.timeout, default.max_queue) == (4, 30, 100)
    assert (compute.size, compute.worker_capacity, compute.timeout) == (1, 8, 120)
    assert compute.max_queue == 100  # from [defaults]
    assert compute.heartbeat_timeout is None  # false: TOML's None
    assert compute.pythonpath == ("src", "lib")
    assert compute.env == {"OMP_NUM_THREADS": "1"}
    assert compute.restart == sp.RestartPolicy(initial=0.5, max_delay=10)
    assert compute.profile == "thread"


def test_a_pool_may_serve_functions_alone(tmp_path: pathlib.Path) -> None:
    text = """
    [pools.scoring]
    tools = ["tests.adapters.functions:score", "tests.adapters.functions:count"]
    size = 2
    """
    [scoring] = sp.load_pools(write(tmp_path, text)).values()
    assert scoring.adapter is None
    assert scoring.tools == ("tests.adapters.functions:score", "tests.adapters.functions:count")


def test_pyproject_holds_them_under_tool_snakepit_trio(tmp_path: pathlib.Path) -> None:
    text = """
    [project]
    name = "app"

    [tool.snakepit-trio.pools.default]
    adapter = "tests.adapters.basic:Echo"
    size = 2
    """
    pools = sp.load_pools(str(write(tmp_path, text, "pyproject.toml")))
    assert list(pools) == ["default"] and pools["default"].size == 2
    with pytest.raises(ValueError, match=r"has no \[tool\.snakepit-trio\] table"):
        sp.load_pools(write(tmp_path, "[project]\nname = 'app'\n", "pyproject.toml"))


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (
            "[pools.a]\nadapter = 'm:C'\ntimeuot = 5\n",
            TypeError,
            r"^unknown pool option 'timeuot' \(did you mean 'timeout'\?\) in \[pools\.a\] of "
            r".*snakepit\.toml; valid options: adapter, ",
        ),
        (
            "[pool.a]\nadapter = 'm:C'\n",
            TypeError,
            r"^unknown key 'pool' \(did you mean 'pools'\?\) in .*snakepit\.toml; "
            r"valid keys: defaults, pools$",
        ),
        (
            "[defaults]\nszie = 2\n[pools.a]\nadapter = 'm:C'\n",
            TypeError,
            r"unknown pool option 'szie' \(did you mean 'size'\?\) in \[defaults\]",
        ),
        (
            "[pools.a]\nadapter = 'm:C'\nrestart = { inital = 1 }\n",
            TypeError,
            r"unknown restart option 'inital' \(did you mean 'initial'\?\) in restart in "
            r"\[pools\.a\]",
        ),
        (
            "[pools.a]\nadapter = 'm:C'\ntimeout = nan\n",
            ValueError,
            r"^\[pools\.a\] of .*: timeout must be a number of seconds > 0",
        ),
        (
            "[pools.a]\nadapter = 'm:C'\nsize = '4'\n",
            TypeError,
            r"^\[pools\.a\] of .*: size must be a whole number",
        ),
        (
            "[pools.a]\nadapter = 'm:C'\nrestart = { factor = 0.5 }\n",
            ValueError,
            r"^\[pools\.a\] of .*: RestartPolicy factor must be",
        ),
        (
            "[pools.a]\nadapter = 'm:C'\nregistry = false\nkill_on_cancel = 1\n",
            TypeError,
            r"kill_on_cancel must be",
        ),
        ("[pools.a]\nsize = 2\n", ValueError, r"\[pools\.a\] of .* has no adapter; add adapter ="),
        ("[defaults]\nsize = 2\n", ValueError, r"defines no pools; add a table per pool"),
        ("pools = 3\n", TypeError, r"\[pools\] of .* must be a table; got 3 \(an int\)"),
        ("[pools]\na = 3\n", TypeError, r"\[pools\.a\] of .* must be a table"),
        ("[pools.a\n", ValueError, r"is not valid TOML"),
    ],
)
def test_bad_files_are_refused_naming_the_key_table_and_file(
    tmp_path: pathlib.Path, text: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        sp.load_pools(write(tmp_path, text))
    assert type(info.value) is error
    assert "\n" not in str(info.value)


def test_the_path_must_name_a_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        sp.load_pools(tmp_path / "missing.toml")
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        sp.load_pools(5)  # type: ignore[arg-type]
