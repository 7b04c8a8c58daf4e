"""Pool configurations from TOML: ``load_pools("snakepit.toml")``, or pyproject.toml's
``[tool.snakepit-trio]`` table, for ``open_pools``.

The layout (in pyproject.toml every table is under ``tool.snakepit-trio``)::

    [defaults]                 # optional: options every pool starts from
    timeout = 30

    [pools.default]            # one table per pool, named by its key
    adapter = "app.adapters:Main"
    size = 4

    [pools.compute]
    adapter = "app.adapters:Compute"
    size = 1
    worker_capacity = 8
    restart = { initial = 0.5, max_delay = 10 }   # RestartPolicy's fields

A pool's keys are ``PoolConfig``'s fields; a pool's own keys override ``[defaults]``. TOML
has no null: ``false`` stands for None where an option takes None (``heartbeat_timeout =
false``: no heartbeats). Every value is checked as ``PoolConfig`` checks it, and an error
says in which table of which file it is; an unknown key is named, with the closest valid one.
"""

from __future__ import annotations

import os
import pathlib
import tomllib
from collections.abc import Collection
from typing import Any

import attrs

from ._config import _NULLABLE, PoolConfig, RestartPolicy
from ._core import _checks as checks

__all__ = ["load_pools"]

_SECTIONS = ("defaults", "pools")
_OPTIONS = frozenset(f.name for f in attrs.fields(PoolConfig))
_RESTART = frozenset(f.name for f in attrs.fields(RestartPolicy))


def load_pools(path: str | os.PathLike[str]) -> dict[str, PoolConfig]:
    """Read pool configurations from a TOML file, for ``open_pools``.

    Args:
        path: a TOML file with ``[pools.NAME]`` tables (and an optional ``[defaults]``),
            or a ``pyproject.toml``, whose ``[tool.snakepit-trio]`` table holds them.

    Returns:
        ``{name: PoolConfig}``, in the file's order.

    Raises:
        FileNotFoundError, OSError: the file cannot be read.
        TypeError: an unknown key (named, with the closest valid one), or a value of the
            wrong type; the message names the table and the file.
        ValueError: not TOML, no pools, a pool with neither an adapter nor tools, or a
            value out of range.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path must be a str or os.PathLike naming a TOML file; got {checks.shown(path)} "
            f"({checks.a_type(path)})"
        )
    file = pathlib.Path(path)
    with file.open("rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{file} is not valid TOML: {exc}") from None
    prefix = ""
    if file.name == "pyproject.toml":
        table = data.get("tool", {}).get("snakepit-trio")
        if table is None:
            raise ValueError(
                f"{file} has no [tool.snakepit-trio] table; add one table per pool, "
                "[tool.snakepit-trio.pools.NAME], with adapter = 'package.module:Class'"
            )
        prefix = "tool.snakepit-trio."
        data = table
    return pools_from_table(data, str(file), prefix)


def pools_from_table(data: Any, file: str, prefix: str = "") -> dict[str, PoolConfig]:
    """The pools of one configuration table (the file's, or pyproject's section)."""
    where = f"[{prefix.rstrip('.')}] of {file}" if prefix else file
    _table(data, where)
    _known(data, _SECTIONS, "key", where)
    defaults = data.get("defaults", {})
    _table(defaults, f"[{prefix}defaults] of {file}")
    _known(defaults, _OPTIONS, "pool option", f"[{prefix}defaults] of {file}")
    pools = data.get("pools", {})
    _table(pools, f"[{prefix}pools] of {file}")
    if not pools:
        raise ValueError(
            f"{file} defines no pools; add a table per pool, [{prefix}pools.NAME], "
            "with adapter = 'package.module:Class'"
        )
    out: dict[str, PoolConfig] = {}
    for name, options in pools.items():
        table = f"[{prefix}pools.{name}] of {file}"
        _table(options, table)
        _known(options, _OPTIONS, "pool option", table)
        fields = {**defaults, **options}
        if "adapter" not in fields and not fields.get("tools"):
            raise ValueError(
                f"{table} has no adapter; add adapter = 'package.module:Class', or "
                "tools = ['package.module:function', ...] to serve functions alone"
            )
        out[name] = _config(fields, table)
    return out


def _config(fields: dict[str, Any], table: str) -> PoolConfig:
    values = dict(fields)
    for key, value in fields.items():
        if value is False and key in _NULLABLE:
            values[key] = None  # TOML has no null
    restart = values.get("restart")
    if isinstance(restart, dict):
        _known(restart, _RESTART, "restart option", f"restart in {table}")
        try:
            values["restart"] = RestartPolicy(**restart)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{table}: {exc}") from None
    try:
        return PoolConfig(**values)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{table}: {exc}") from None


def _table(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise TypeError(
            f"{where} must be a table; got {checks.shown(value)} ({checks.a_type(value)})"
        )


def _known(table: dict[str, Any], valid: Collection[str], what: str, where: str) -> None:
    """Refuse unknown keys, as ``PoolConfig.build`` refuses unknown options."""
    unknown = sorted(set(table) - set(valid))
    if unknown:
        named = ", ".join(f"{key!r}{checks.did_you_mean(key, valid)}" for key in unknown)
        raise TypeError(
            f"unknown {what} {named} in {where}; valid {what.rsplit(maxsplit=1)[-1]}s: "
            f"{', '.join(sorted(valid))}"
        )
