"""The public surface is pinned: adding or removing a name must change this test."""

from __future__ import annotations

import snakepit_trio
import snakepit_trio.worker

PUBLIC = {
    "InvalidArguments",
    "InvalidVariable",
    "ParamSpec",
    "PayloadTooLarge",
    "Pool",
    "PoolClosed",
    "PoolConfig",
    "PoolSaturated",
    "PoolUnhealthy",
    "PoolStats",
    "Progress",
    "QueueTimeout",
    "RemoteError",
    "RequestTimeout",
    "RestartPolicy",
    "SerializationError",
    "Session",
    "SessionInfo",
    "SessionLost",
    "SessionQuotaExceeded",
    "SnakepitError",
    "Stream",
    "StreamIdleTimeout",
    "ToolSpec",
    "UnknownTool",
    "Variable",
    "WorkerCrashed",
    "WorkerInfo",
    "WorkerStartError",
    "open_pool",
}


def test_public_names() -> None:
    assert set(snakepit_trio.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(snakepit_trio, name) is not None
    assert set(snakepit_trio.worker.__all__) == {"Adapter", "ToolContext", "tool"}


def test_every_error_derives_from_snakepit_error() -> None:
    for name in PUBLIC:
        obj = getattr(snakepit_trio, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, snakepit_trio.SnakepitError)


def test_unknown_attribute() -> None:
    try:
        snakepit_trio.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
