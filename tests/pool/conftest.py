"""Pool layer: the real engine over in-memory workers (snakepit_trio.testing), on a virtual
clock. Every test here takes pytest-trio's ``autojump_clock`` (``MockClock(autojump_threshold=0)``),
so times are asserted exactly and no test waits for real time; a test without it fails."""

from __future__ import annotations

import inspect
import pathlib

import pytest

HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if item.path.parent != HERE or fn is None:
            continue
        if "autojump_clock" not in inspect.signature(fn).parameters:
            raise pytest.UsageError(f"{item.nodeid}: a pool-layer test runs on autojump_clock")
