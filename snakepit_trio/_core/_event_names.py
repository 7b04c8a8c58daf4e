"""Telemetry event names and the patterns that select them. Pure.

Rules: an event name is dotted segments of letters, digits, ``_`` and ``-`` (``call.stop``,
``adapter.model.inference``), at most 200 characters. A pattern is written the same way and
may hold ``*``, which matches any run of characters, dots included (``call.*``,
``adapter.*.stop``, ``*``). Whatever a user gives is checked here, on the host (patterns) and
in the worker (the names a tool emits), so a typo fails at once with a message saying what
to change instead of selecting nothing forever. A pattern without ``*`` in a namespace the
pool owns (``worker``, ``call``, ...) must name one of its events; a pattern's namespace
must be one the pool emits in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from . import _checks as checks

MAX_NAME = 200

_SEGMENT = r"[A-Za-z0-9_-]+"
_NAME = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_PATTERN = re.compile(r"[A-Za-z0-9_*-]+(?:\.[A-Za-z0-9_*-]+)*")


def is_name(value: str) -> bool:
    """Whether ``value`` (a str) is dotted words, as an event name must be."""
    return _NAME.fullmatch(value) is not None


def check_name(what: str, value: Any) -> str:
    """Check an event name (``ctx.emit``'s, a span's).

    Args:
        what: how the caller names the argument in the message.
        value: what was passed.

    Returns:
        The name.

    Raises:
        TypeError: not a str.
        ValueError: empty, too long, or not dotted segments of letters, digits, ``_``, ``-``.
    """
    checks.text(what, value, empty=False)
    if len(value) > MAX_NAME or not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} must be dotted words of letters, digits, '_' or '-' (such as "
            f"'model.inference'), at most {MAX_NAME} characters; got {checks.shown(value)}"
        )
    return str(value)


def check_patterns(
    value: Any, *, closed: Mapping[str, Collection[str]], namespaces: Collection[str]
) -> tuple[str, ...]:
    """Check the patterns given to ``attach`` or ``subscribe``.

    Args:
        value: one pattern (a str) or a list or tuple of them.
        closed: namespaces whose events are all known, with their names (``{"call":
            {"call.start", ...}}``): a pattern there without ``*`` must be one of them.
        namespaces: every namespace events are emitted in (a pattern's first word, when it
            has no ``*``, must be one of them).

    Returns:
        The patterns, as a tuple.

    Raises:
        TypeError: not a str or a list of str.
        ValueError: no pattern, a malformed one, or one that can select no event.
    """
    if isinstance(value, str):
        patterns: tuple[Any, ...] = (value,)
    elif isinstance(value, list | tuple):
        patterns = tuple(value)
    else:
        raise TypeError(
            "patterns must be an event name pattern (a str such as 'call.*') or a list of "
            f"them; got {checks.shown(value)} ({checks.a_type(value)})"
        )
    if not patterns:
        raise ValueError("patterns must name at least one pattern (use '*' for every event)")
    for pattern in patterns:
        _check_pattern(pattern, closed, namespaces)
    return patterns


def _check_pattern(
    pattern: Any, closed: Mapping[str, Collection[str]], namespaces: Collection[str]
) -> None:
    if not isinstance(pattern, str):
        raise TypeError(
            f"each pattern must be a str such as 'call.*'; got {checks.shown(pattern)} "
            f"({checks.a_type(pattern)})"
        )
    if len(pattern) > MAX_NAME or not _PATTERN.fullmatch(pattern):
        raise ValueError(
            "a pattern is dotted words of letters, digits, '_', '-', where '*' matches any "
            f"run of characters (such as 'call.*' or 'adapter.*.stop'); got {checks.shown(pattern)}"
        )
    head = pattern.split(".")[0]
    if "*" in head:
        return  # '*', 'w*': may select anything
    if head not in namespaces:
        hint = checks.did_you_mean(head, namespaces)
        raise ValueError(
            f"pattern {pattern!r} selects no event: event names begin with one of "
            f"{', '.join(sorted(namespaces))}; got {head!r}{hint}"
        )
    known = closed.get(head)
    if known is not None and "*" not in pattern and pattern not in known:
        raise ValueError(
            f"pattern {pattern!r} selects no event: there is no such event; the "
            f"{head}.* events are {', '.join(sorted(known))}"
            f"{checks.did_you_mean(pattern, known)}"
        )


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A test of event names against ``patterns`` (checked ones)."""
    exact = frozenset(p for p in patterns if "*" not in p)
    wild = [p for p in patterns if "*" in p]
    if not wild:
        return exact.__contains__
    regex = re.compile("|".join(".*".join(map(re.escape, p.split("*"))) for p in wild))

    def matches(name: str) -> bool:
        return name in exact or regex.fullmatch(name) is not None

    return matches
