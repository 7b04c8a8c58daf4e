"""Unit (synchronous, no workers): every pool option and session declaration refuses bad
values with one typed line naming the option, the value and what is allowed.

Table-driven: each PoolConfig field has a kind, and each kind a list of values it must
refuse; a test fails when a field is added without an entry, so new options are covered.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import attrs
import numpy as np
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._config import PoolConfig
from snakepit_trio._core._sessions import SessionStore
from snakepit_trio._core._variables import VariableError, make_spec
from snakepit_trio.contrib.ray import RayLauncher
from tests.adapters import functions

ADAPTER = "tests.adapters.basic:Echo"


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def _nested() -> Any:
    def inner(x: int) -> int:
        return x

    return inner


def _in_main(x: int) -> int:
    return x


_in_main.__module__ = "__main__"  # as a function of the script the user ran


# Values every numeric option must refuse, with the error each gives.
NOT_NUMBERS: list[tuple[Any, type[Exception]]] = [
    (True, TypeError),  # a bool is not 1
    (False, TypeError),
    ("10", TypeError),
    (b"1", TypeError),
    ([1], TypeError),
    (_Opaque(), TypeError),
    (1 + 2j, TypeError),
    (np.bool_(True), TypeError),
]
NUMBERS_NEVER_OK: list[tuple[Any, type[Exception]]] = [
    (math.nan, ValueError),
    (np.float64("nan"), ValueError),
    (-math.inf, ValueError),
    (-1, ValueError),
    (-0.5, ValueError),
]
COUNTS_NEVER_OK: list[tuple[Any, type[Exception]]] = [
    (math.nan, TypeError),  # a float is not a whole number, whatever its value
    (2.0, TypeError),
    (math.inf, TypeError),
    (-1, ValueError),
    (np.int64(-1), ValueError),
]

# kind -> (bad values, a good value that is not the default)
KINDS: dict[str, tuple[list[tuple[Any, type[Exception]]], Any]] = {
    "seconds>0": (
        [*NOT_NUMBERS, *NUMBERS_NEVER_OK, (0, ValueError), (math.inf, ValueError), (None, None)],
        np.float32(1.5),
    ),
    "seconds>0|None": (
        [*NOT_NUMBERS, *NUMBERS_NEVER_OK, (0, ValueError), (math.inf, ValueError)],
        2.5,
    ),
    "seconds>=0": (
        [*NOT_NUMBERS, *NUMBERS_NEVER_OK, (math.inf, ValueError), (None, None)],
        0,
    ),
    "count>=1": ([*NOT_NUMBERS, *COUNTS_NEVER_OK, (0, ValueError), (None, None)], np.int64(3)),
    "count>=1|None": ([*NOT_NUMBERS, *COUNTS_NEVER_OK, (0, ValueError)], 3),
    "count>=0": ([*NOT_NUMBERS, *COUNTS_NEVER_OK, (None, None)], 0),
    "count>=0|None": ([*NOT_NUMBERS, *COUNTS_NEVER_OK], 0),
    "megabytes>0|None": (
        [*NOT_NUMBERS, *NUMBERS_NEVER_OK, (0, ValueError), (math.inf, ValueError)],
        512.5,
    ),
    "bool": (
        [(1, TypeError), (0, TypeError), ("yes", TypeError), (np.bool_(True), TypeError)],
        True,
    ),
    "transport": ([("grcp", ValueError), ("", ValueError), (1, TypeError)], "grpc"),
    "start_method": ([("fork", ValueError), (None, None), (2, TypeError)], "spawn"),
    "worker_output": ([("logs", ValueError), ("", ValueError), (1, TypeError)], "inherit"),
    "profile": ([("threads", ValueError), ("", ValueError), (1, TypeError)], "thread"),
    "str": ([(1, TypeError), ("", ValueError), (b"pool", TypeError)], "mine"),
    "path": ([(1, TypeError), ("", ValueError), (b"/usr/bin/python3", TypeError)], "python3"),
    "path|None": ([(1, TypeError), ("", ValueError)], pathlib.Path("/tmp")),
    "env": (
        [
            ("A=1", TypeError),
            ({"A": 1}, TypeError),
            ({1: "a"}, TypeError),
            ([("A", "1")], TypeError),
        ],
        {"A": "1"},
    ),
    "pythonpath": (
        [("src", TypeError), (pathlib.Path("src"), TypeError), ([1], TypeError), (5, TypeError)],
        [pathlib.Path("src"), "lib"],
    ),
    "restart": ([({"initial": 1}, TypeError), (1, TypeError)], sp.RestartPolicy(initial=1)),
    "tools": (
        [
            ("tests.adapters.functions:score", TypeError),  # one entry, not a list of them
            (5, TypeError),
            ([5], TypeError),
            ([b"m:f"], TypeError),
            ([_Opaque], TypeError),  # a class
            (functions.score, TypeError),  # one function, not a list of them
            (["no_colon"], ValueError),
            ([":score"], ValueError),
            (["pkg.mod:"], ValueError),
            (["pkg mod:score"], ValueError),
            (["pkg.mod:Class.method"], ValueError),
            (["__main__:score"], ValueError),
            ([_in_main], ValueError),
            ([lambda x: x], ValueError),
            ([_nested()], ValueError),
            (["pkg.mod:f", "pkg.mod:f"], ValueError),
            (None, None),
        ],
        [functions.score, "pkg.mod:other"],
    ),
    # Another name needs a worker_command: the pool knows how to start only these.
    "runtime": ([("ruby", ValueError), ("", ValueError), (1, TypeError)], "node"),
    "command": (
        [("node w.mjs", TypeError), ([], ValueError), ([1], TypeError), (5, TypeError)],
        ["node", pathlib.Path("w.mjs")],
    ),
    "devices": (
        [
            ("GPU-8932f937", ValueError),  # one uuid, not a list of them
            ("cdua", ValueError),
            ("", ValueError),
            (5, TypeError),
            (b"cuda", TypeError),
            (math.nan, TypeError),
            ([], ValueError),
            (["0"], ValueError),  # by index
            (["cuda:1"], ValueError),
            ([0], TypeError),
            (["gpu0"], ValueError),
            (["GPU-a", "rocm:GPU-b"], ValueError),  # mixed kinds
        ],
        "cuda",
    ),
    # Alone, only "none" is a good value: endpoints need a token, a token or tls needs
    # endpoints (tests/test_endpoint_options.py checks them together).
    "endpoints": ([("tcp://h:1", TypeError), (["udp://h:1"], ValueError)], ()),
    "token": ([("", ValueError), ([], TypeError)], None),
    "tls": ([("ca.pem", TypeError), (3, TypeError)], None),
    "launcher": ([("ray", TypeError), (3, TypeError)], RayLauncher(num_cpus=2)),
    "threads": (
        [
            (0, ValueError),
            (-1, ValueError),
            (True, TypeError),
            (2.0, TypeError),
            (math.nan, TypeError),
            ("many", ValueError),
            ("Auto", ValueError),
            ("", ValueError),
            (b"auto", TypeError),
        ],
        "auto",
    ),
}
# (None, None) above: None means "the default" for options that cannot be None (accepted).

OPTIONS: dict[str, str] = {
    "tools": "tools",
    "size": "count>=1",
    "worker_capacity": "count>=1",
    "profile": "profile",
    "max_queue": "count>=0|None",
    "queue_timeout": "seconds>0|None",
    "timeout": "seconds>0|None",
    "startup_timeout": "seconds>0",
    "startup_batch_size": "count>=1",
    "drain_timeout": "seconds>=0",
    "shutdown_grace": "seconds>=0",
    "max_payload_bytes": "count>=1",
    "shm_threshold": "count>=1|None",
    "transport": "transport",
    "start_method": "start_method",
    "prefetch": "count>=0",
    "prefetch_budget": "seconds>=0",
    "max_requests": "count>=1|None",
    "max_memory_mb": "megabytes>0|None",
    "max_age": "seconds>0|None",
    "max_retries": "count>=0",
    "kill_on_cancel": "bool",
    "cancel_grace": "seconds>=0",
    "max_sessions": "count>=1|None",
    "session_ttl": "seconds>0|None",
    "restart": "restart",
    "crash_threshold": "count>=1|None",
    "crash_window": "seconds>0",
    "probe_after": "seconds>=0",
    "heartbeat_interval": "seconds>0",
    "heartbeat_timeout": "seconds>0|None",
    "handle_sigterm": "bool",
    "registry": "bool",
    "state_dir": "path|None",
    "name": "str",
    "python": "path",
    "runtime": "runtime",
    "worker_command": "command",
    "env": "env",
    "cwd": "path|None",
    "pythonpath": "pythonpath",
    "inherit_path": "bool",
    "worker_output": "worker_output",
    "max_host_tool_calls": "count>=1",
    "max_reentry_depth": "count>=0",
    "devices": "devices",
    "threads_per_worker": "threads",
    "tracing": "bool",
    "endpoints": "endpoints",
    "token": "token",
    "tls": "tls",
    "launcher": "launcher",
}


def test_every_option_has_a_kind() -> None:
    fields = {f.name for f in attrs.fields(PoolConfig)} - {"adapter"}
    assert set(OPTIONS) == fields


BAD_CASES = [
    pytest.param(name, value, error, id=f"{name}={value!r}")
    for name, kind in OPTIONS.items()
    for value, error in KINDS[kind][0]
    if error is not None
]


def _check_message(exc: BaseException, name: str, value: Any) -> None:
    text = str(exc)
    assert len(exc.args) == 1, exc.args  # one message, not attrs' (message, attribute, ...)
    assert "\n" not in text
    assert name in text, text
    if isinstance(value, float) and math.isnan(value):
        assert "NaN" in text or "got nan" in text, text
    elif not isinstance(value, dict | list | sp.RestartPolicy):
        assert repr(value)[:20] in text or str(value) in text, text


@pytest.mark.parametrize(("name", "value", "error"), BAD_CASES)
def test_a_bad_option_is_refused_with_one_line_naming_it(
    name: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        PoolConfig.build(ADAPTER, None, {name: value})
    assert type(info.value) is error
    _check_message(info.value, name, value)


@pytest.mark.parametrize(("name", "value", "error"), BAD_CASES)
def test_the_same_checks_hold_for_config_and_evolve(
    name: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        PoolConfig(adapter=ADAPTER, **{name: value})
    with pytest.raises(error):
        PoolConfig.build(None, PoolConfig(adapter=ADAPTER), {name: value})


@pytest.mark.parametrize(("name", "kind"), OPTIONS.items())
def test_each_option_takes_a_good_value(name: str, kind: str) -> None:
    good = KINDS[kind][1]
    cfg = PoolConfig.build(ADAPTER, None, {name: good})
    stored = getattr(cfg, name)
    if name == "pythonpath":
        assert stored == ("src", "lib")  # paths are kept as str
    elif name == "tools":
        assert stored == ("tests.adapters.functions:score", "pkg.mod:other")
    elif name == "worker_command":
        assert stored == ("node", "w.mjs")
    elif isinstance(good, pathlib.Path):
        assert stored == str(good)
    else:
        assert stored == good


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", None),
        ("queue_timeout", None),
        ("max_queue", None),
        ("shm_threshold", None),
        ("crash_threshold", None),
        ("heartbeat_timeout", None),
        ("session_ttl", None),
        ("max_sessions", None),
        ("cwd", None),
        ("devices", None),
        ("threads_per_worker", None),
    ],
)
def test_none_means_no_limit_where_it_is_allowed(name: str, value: Any) -> None:
    assert getattr(PoolConfig.build(ADAPTER, None, {name: value}), name) is None


def test_devices_are_kept_as_kind_and_uuid() -> None:
    cfg = PoolConfig.build(ADAPTER, None, {"devices": ["GPU-a", "cuda:MIG-b"]})
    assert cfg.devices == ("cuda:GPU-a", "cuda:MIG-b")
    assert attrs.evolve(cfg, size=3).devices == cfg.devices  # normalizing twice changes nothing
    assert PoolConfig.build(ADAPTER, None, {"devices": ("rocm:GPU-c",)}).devices == ("rocm:GPU-c",)
    assert PoolConfig(adapter=ADAPTER).threads_per_worker == 1
    assert PoolConfig.build(ADAPTER, None, {"threads_per_worker": 4}).threads_per_worker == 4


def test_an_unknown_option_is_named_with_the_closest_one() -> None:
    with pytest.raises(
        TypeError, match=r"unknown pool option 'timeuot' \(did you mean 'timeout'\?\)"
    ):
        PoolConfig.build(ADAPTER, None, {"timeuot": 5})
    with pytest.raises(TypeError) as info:
        PoolConfig.build(ADAPTER, None, {"zzz": 1})
    assert "did you mean" not in str(info.value)
    assert "'zzz'" in str(info.value) and "max_queue" in str(info.value)


def test_bad_adapters_and_configs_are_named() -> None:
    from tests.adapters.basic import Echo

    with pytest.raises(TypeError, match=r"pass 'tests\.adapters\.basic:Echo'"):
        PoolConfig.build(Echo, None, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"adapter must be a str; got 5 \(an int\)"):
        PoolConfig.build(5, None, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        PoolConfig.build("no_colon", None, {})
    with pytest.raises(
        TypeError, match=r"config must be a PoolConfig; got \{'size': 2\} \(a dict\)"
    ):
        PoolConfig.build(ADAPTER, {"size": 2}, {})  # type: ignore[arg-type]


def test_tools_alone_need_python_workers_and_no_thread_profile() -> None:
    alone = PoolConfig.build(None, None, {"tools": ["pkg.mod:score"]})
    assert alone.adapter is None and alone.tools == ("pkg.mod:score",)
    with pytest.raises(TypeError, match=r"needs an adapter .*, tools=\['package\.module:function'"):
        PoolConfig.build(None, None, {})
    with pytest.raises(TypeError, match="needs an adapter"):
        PoolConfig(tools=())
    with pytest.raises(ValueError, match=r"Python functions, .*runtime is 'node'"):
        PoolConfig(adapter="./adapter.mjs", runtime="node", tools=["pkg.mod:score"])
    with pytest.raises(TypeError, match=r"runtime='node' needs an adapter"):
        PoolConfig(runtime="node", tools=["pkg.mod:score"])
    with pytest.raises(ValueError, match=r"profile='thread' .* tools alone cannot"):
        PoolConfig(tools=["pkg.mod:score"], profile="thread")
    with_adapter = PoolConfig(adapter=ADAPTER, tools=["pkg.mod:score"], profile="thread")
    assert with_adapter.profile == "thread"


def test_an_environment_default_is_named_as_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAKEPIT_TRIO_TRANSPORT", "http")
    with pytest.raises(
        ValueError, match=r"transport .* \(this one came from \$SNAKEPIT_TRIO_TRANSPORT\)"
    ):
        PoolConfig.build(ADAPTER, None, {})


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("initial", math.nan, ValueError),
        ("initial", -1, ValueError),
        ("initial", True, TypeError),
        ("factor", 0.5, ValueError),
        ("factor", "2", TypeError),
        ("max_delay", math.inf, ValueError),
        ("reset_after", None, TypeError),
    ],
)
def test_restart_policy_fields_are_checked(field: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=rf"^RestartPolicy {field} must be "):
        sp.RestartPolicy(**{field: value})


async def test_open_pool_refuses_a_nan_timeout_before_starting_anything() -> None:
    with trio.fail_after(10):
        with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
            async with sp.open_pool(ADAPTER, size=1, timeout=math.nan, registry=False):
                raise AssertionError("open_pool must not yield")  # pragma: no cover


# --- sessions (the store checks what open_session passes on) ---------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"ttl": math.nan}, ValueError, "ttl"),
        ({"ttl": 0}, ValueError, "ttl"),
        ({"ttl": -1}, ValueError, "ttl"),
        ({"ttl": True}, TypeError, "ttl"),
        ({"ttl": "60"}, TypeError, "ttl"),
        ({"ttl": math.inf}, ValueError, "ttl"),
        ({"affinity": "loose"}, ValueError, "affinity"),
        ({"affinity": None}, TypeError, "affinity"),
        ({"metadata": 5}, TypeError, "metadata"),
        ({"metadata": [("a", 1)]}, TypeError, "metadata"),
        ({"session_id": ""}, ValueError, "session id"),
        ({"session_id": 7}, TypeError, "session id"),
    ],
)
def test_session_arguments_are_checked(
    kwargs: dict[str, Any], error: type[Exception], named: str
) -> None:
    store = SessionStore(new_id=lambda: "fresh")
    args: dict[str, Any] = {"session_id": None, "affinity": "strict", **kwargs}
    session_id = args.pop("session_id")
    with pytest.raises(error, match=rf"^{named} must be"):
        store.create(session_id, worker="w", now=0.0, **args)
    assert store.sessions == {}


def test_a_session_id_of_the_wrong_type_is_named_on_lookup() -> None:
    store = SessionStore(new_id=lambda: "fresh")
    with pytest.raises(TypeError, match=r"session id must be a str; got \['s'\] \(a list\)"):
        store.get(["s"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="session id must be a str"):
        store.delete(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "constraint"),
    [
        ({"min": math.nan}, "min"),
        ({"max": math.inf}, "max"),
        ({"min": True}, "min"),
        ({"min": "0"}, "min"),
        ({"max_length": -1, "type_": "str"}, "max_length"),
        ({"max_length": True, "type_": "str"}, "max_length"),
        ({"max_length": 2.5, "type_": "str"}, "max_length"),
        ({"choices": 5}, "choices"),
        ({"choices": "abc"}, "choices"),
        ({"description": 5}, "description"),
    ],
)
def test_variable_declarations_are_checked(kwargs: dict[str, Any], constraint: str) -> None:
    type_ = kwargs.pop("type_", "int")
    with pytest.raises(VariableError) as info:
        make_spec("v", type_, **kwargs)
    assert info.value.constraint == constraint
    assert str(info.value).startswith(f"variable 'v': {constraint}")
