"""Check results and how they are printed: a PASS/WARN/FAIL table, or JSON."""

from __future__ import annotations

import json
from typing import Any

import attrs

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@attrs.frozen
class Check:
    """One row of ``doctor``: what was checked, how it went, and how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def render(checks: list[Check]) -> str:
    """A row per check (status, name, detail), each WARN or FAIL followed by its fix."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        lines.append(f"{c.status}  {c.name.ljust(width)}  {c.detail}")
        if c.status != PASS and c.fix:
            lines.append(f"{'':4}  {'':{width}}  fix: {c.fix}")
    fails = sum(c.status == FAIL for c in checks)
    warns = sum(c.status == WARN for c in checks)
    lines.append(f"\n{len(checks)} checks: {fails} failed, {warns} warning(s)")
    return "\n".join(lines)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
