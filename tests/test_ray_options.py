"""RayLauncher's options and ``open_pool(launcher=...)``: typed errors before Ray is asked.

These run without Ray (the launcher imports it only when a pool opens); tests/ray runs
the launcher on a real cluster (``nox -s ray``).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import snakepit_trio as sp
from snakepit_trio.contrib.ray import RayLauncher

ECHO = "tests.adapters.basic:Echo"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"num_cpus": -1}, ValueError, "num_cpus must be a number >= 0"),
        ({"num_gpus": "1"}, ValueError, "num_gpus must be a number >= 0"),
        ({"num_cpus": float("inf")}, ValueError, "num_cpus"),
        ({"resources": ["gpu"]}, TypeError, "dict of resource name to amount"),
        ({"resources": {"big": -1}}, ValueError, r"resources\['big'\] must be >= 0"),
        ({"resources": {1: 1}}, TypeError, "must map str to a number"),
        ({"strategy": "PACK"}, ValueError, "'DEFAULT', 'SPREAD' or one of Ray's"),
        ({"strategy": None}, TypeError, "use 'DEFAULT'"),
        ({"address": 6379}, TypeError, "RayLauncher.address must be a str"),
        ({"runtime_env": ["pip"]}, TypeError, "runtime_env must be a dict"),
        ({"tls": "yes"}, TypeError, "tls"),
    ],
)
def test_bad_launcher_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RayLauncher(**options)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"launcher": "ray"}, TypeError, "launcher must be a launcher such as"),
        (
            {"launcher": RayLauncher(), "endpoints": ["tcp://h:1"], "token": "t"},
            ValueError,
            "not both",
        ),
        ({"launcher": RayLauncher(), "devices": "cuda"}, ValueError, "num_gpus"),
        ({"launcher": RayLauncher(), "runtime": "node"}, ValueError, "starts Python workers"),
    ],
)
async def test_bad_pool_options_with_a_launcher_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        async with sp.open_pool(ECHO, **options):
            pass  # pragma: no cover - the pool does not open


async def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ImportError, match=r"snakepit_trio\[ray\]"):
        async with sp.open_pool(ECHO, launcher=RayLauncher()):
            pass  # pragma: no cover - the pool does not open
