"""Checks of option and argument values, each failing with one line that names the value.

Pure. Every place a user's value enters (PoolConfig and RestartPolicy fields, the arguments
of execute / stream / session) checks it here, before it reaches a timer, a frame or a
worker. Rules: a bool is never a number (``True`` is not 1 second); NaN never passes;
infinity passes only where it means "no limit" (``inf=True``); ``None`` passes only where the
caller says what it means. A wrong type raises TypeError, a value out of range ValueError,
and the message says what is allowed, so the caller knows what to change.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

from ._types import numpy_kind

_REPR_LIMIT = 60


def shown(value: Any) -> str:
    """``repr(value)``, cut short: a message stays one readable line."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    text = " ".join(text.split())
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def a_type(value: Any) -> str:
    """``"a str"``, ``"an int"``: the type of ``value``, for a message."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _got(value: Any) -> str:
    return f"got {shown(value)} ({a_type(value)})"


def _is_number(value: Any) -> bool:
    # int and float (subclasses too) and numpy's integer and floating scalars; not bool,
    # not np.bool_, not complex, not Decimal or Fraction (which trio's clock cannot add).
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return numpy_kind(value) in ("i", "u", "f")


def _is_whole(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return numpy_kind(value) in ("i", "u")


def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = 0.0,
    zero: bool = False,
    inf: str | None = None,
    none: str | None = None,
    unit: str = "seconds",
) -> float | None:
    """Check a real number: > ``minimum`` (or >= when ``zero``), finite unless ``inf``.

    Args:
        name: the option or argument, as the caller spelled it.
        value: what was passed.
        minimum: the lower bound, or None for none (any finite number).
        zero: the bound itself is allowed (``>=`` instead of ``>``).
        inf: what ``math.inf`` means here, or None to refuse it.
        none: what ``None`` means here, or None to refuse it.
        unit: said after "a number of".

    Returns:
        ``value`` as a float (``math.inf`` when allowed), or None when ``none`` allows it.

    Raises:
        TypeError: not a number (a bool, a str, None where not allowed ...).
        ValueError: NaN, infinity where it means nothing, or out of range.
    """
    bound = "" if minimum is None else f" {'>=' if zero else '>'} {minimum:g}"
    allowed = f"a number of {unit}{bound}" if unit else f"a number{bound}"
    if inf is not None:
        allowed += f", math.inf ({inf})"
    if none is not None:
        allowed += f" or None ({none})"
    if value is None and none is not None:
        return None
    if not _is_number(value):
        raise TypeError(f"{name} must be {allowed}; {_got(value)}")
    as_float = float(value)
    if math.isnan(as_float):
        raise ValueError(f"{name} must be {allowed}; got NaN")
    if math.isinf(as_float):
        if as_float > 0 and inf is not None:
            return math.inf
        raise ValueError(f"{name} must be {allowed}; got {as_float!r}")
    if minimum is not None and (as_float < minimum or (as_float == minimum and not zero)):
        raise ValueError(f"{name} must be {allowed}; got {shown(value)}")
    return as_float


def whole(
    name: str,
    value: Any,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    none: str | None = None,
    unit: str = "",
) -> int | None:
    """Check a whole number in ``[minimum, maximum]``.

    Args:
        name: the option or argument.
        value: what was passed.
        minimum: the lower bound (inclusive).
        maximum: the upper bound (inclusive), or None.
        none: what ``None`` means here, or None to refuse it.
        unit: what is counted, said after the number ("chunks").

    Returns:
        ``value`` as an int, or None when ``none`` allows it.

    Raises:
        TypeError: not a whole number (a bool, a float such as 4.0, a str ...).
        ValueError: out of range.
    """
    what = f"a whole number{f' of {unit}' if unit else ''}"
    allowed = f"{what} >= {minimum}" if maximum is None else f"{what} from {minimum} to {maximum}"
    if none is not None:
        allowed += f" or None ({none})"
    if value is None and none is not None:
        return None
    if not _is_whole(value):
        raise TypeError(f"{name} must be {allowed}; {_got(value)}")
    as_int = int(value)
    if as_int < minimum or (maximum is not None and as_int > maximum):
        raise ValueError(f"{name} must be {allowed}; got {as_int}")
    return as_int


def flag(name: str, value: Any, *, none: str | None = None) -> bool | None:
    """Check a bool (``True``/``False``; 0, 1 and "yes" are not bools).

    Raises:
        TypeError: anything else.
    """
    if isinstance(value, bool) or (value is None and none is not None):
        return value
    also = f" or None ({none})" if none is not None else ""
    raise TypeError(f"{name} must be True or False{also}; {_got(value)}")


def text(name: str, value: Any, *, none: str | None = None, empty: bool = True) -> str | None:
    """Check a str (non-empty unless ``empty``).

    Raises:
        TypeError: not a str. ValueError: empty where that is not allowed.
    """
    also = f" or None ({none})" if none is not None else ""
    what = "a str" if empty else "a non-empty str"
    if value is None and none is not None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {what}{also}; {_got(value)}")
    if not value and not empty:
        raise ValueError(f"{name} must be {what}{also}; got ''")
    return value


def choice(name: str, value: Any, choices: Collection[str], *, source: str = "") -> str:
    """Check one of ``choices``; a near miss is named (``did you mean 'grpc'?``).

    Args:
        name: the option.
        value: what was passed.
        choices: the allowed strings.
        source: where the value came from when not from the caller (an environment
            variable), said in the message.

    Raises:
        TypeError: not a str. ValueError: not one of ``choices``.
    """
    listed = ", ".join(repr(c) for c in choices)
    where = f" (this one came from {source})" if source else ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {listed}{where}; {_got(value)}")
    if value not in choices:
        hint = did_you_mean(value, choices)
        raise ValueError(f"{name} must be one of {listed}{where}; got {shown(value)}{hint}")
    return value


def function(name: str, value: Any, *, none: str | None = None) -> Any:
    """Check a callable (or None where ``none`` says what that means).

    Raises:
        TypeError: not callable.
    """
    if callable(value) or (value is None and none is not None):
        return value
    also = f" or None ({none})" if none is not None else ""
    raise TypeError(f"{name} must be a callable{also}; {_got(value)}")


def mapping(name: str, value: Any, *, none: str | None = None) -> Mapping[Any, Any] | None:
    """Check a mapping (a dict).

    Raises:
        TypeError: not a mapping.
    """
    if isinstance(value, Mapping) or (value is None and none is not None):
        return value
    also = f" or None ({none})" if none is not None else ""
    raise TypeError(f"{name} must be a dict{also}; {_got(value)}")


def did_you_mean(word: str, candidates: Collection[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
