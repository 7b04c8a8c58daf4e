"""Users' own types as msgpack extensions 32..127: ``register_type``, the same on both sides.

How it works: each registered class has an entry (its code, its encode and decode). The
codec (``_codec.py``) looks an object's exact type up in ``BY_TYPE`` when msgpack cannot
carry it, encodes ``encode(obj)`` as the extension's payload, and on arrival looks the code
up in ``BY_CODE`` and calls ``decode`` with the payload's value.

Rules:
- A type is registered in every process that sends or receives it: the host before it
  calls, a worker at import of its adapter's module (workers started afresh and workers
  forked from a template then both have it).
- Only instances of exactly the registered class use its entry: a subclass is refused like
  any unknown type until it is registered itself.
- Registering the same class (or a class of the same module and name: its module was
  imported again) with the same code again replaces its functions; any other clash raises.
- Types msgpack carries itself (and their subclasses, which it carries as the base type) and
  the everyday types of ``_values.py`` cannot be registered: the entry would never be used.
"""

from __future__ import annotations

import datetime
import sys
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import msgpack

T = TypeVar("T")

FIRST_USER_CODE = 32  # 0..31 are the package's (proto/snakepit/v1/worker.proto, "Values")
LAST_USER_CODE = 127  # msgpack's last application code; negative codes are msgpack's own


class Entry(NamedTuple):
    cls: type[Any]
    code: int
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


BY_TYPE: dict[type[Any], Entry] = {}
BY_CODE: dict[int, Entry] = {}
_LOCK = threading.Lock()  # registrations check and change both maps at once; lookups do not lock

# msgpack carries these, and any subclass of them as the base type, without asking.
_NATIVE: tuple[type[Any], ...] = (
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    memoryview,
    list,
    tuple,
    dict,
    type(None),
)


def _everyday(cls: type[Any]) -> bool:
    """Whether ``cls`` is one of the types of ``_values.py`` (or msgpack's Timestamp)."""
    if cls in (datetime.datetime, datetime.date, datetime.timedelta, msgpack.Timestamp):
        return True
    # Not imported: ``cls`` is not theirs (and registering a type need not import them).
    decimal, uuid = sys.modules.get("decimal"), sys.modules.get("uuid")
    return (decimal is not None and cls is decimal.Decimal) or (
        uuid is not None and cls is uuid.UUID
    )


def qualified(cls: type[Any]) -> str:
    """``module.Name``, for a message."""
    return f"{cls.__module__}.{cls.__qualname__}"


def shown_name(cls: type[Any]) -> str:
    """``Outer.Name``, without a defining function's ``<locals>``: for a message."""
    return cls.__qualname__.rpartition("<locals>.")[2]


def _same_class(a: type[Any], b: type[Any]) -> bool:
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _carried_already(cls: type[Any]) -> str | None:
    """Why registering ``cls`` could never take effect, or None."""
    for base in _NATIVE:
        if issubclass(cls, base):
            if cls is base:
                return f"{base.__name__} travels as it is"
            return (
                f"{qualified(cls)} is a subclass of {base.__name__}, which msgpack carries "
                f"as a plain {base.__name__} without asking (so its instances never reach "
                "a registered type); convert them to your class where they arrive"
            )
    if _everyday(cls):
        return f"{qualified(cls)} travels already, as one of the package's own extensions"
    if cls.__name__ == "ndarray" and cls.__module__.split(".")[0] == "numpy":
        return "numpy arrays travel already"
    return None


def register_type(
    cls: type[T],
    code: int,
    *,
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
) -> None:
    """Let instances of ``cls`` travel as arguments, results and chunks (nothing is pickled).

    An object of the class is sent as msgpack extension ``code`` whose payload is
    ``encode(obj)``, itself encoded as any value is; where it arrives, ``decode`` gets that
    value back and rebuilds the object. Register the type in every process that sends or
    receives it, with the same code: in the host before it calls the pool, and in the
    worker at import of the adapter's module (its top level, or a module it imports), so
    that workers started afresh and workers forked from a template both have it.

    Only instances of exactly ``cls`` use it: a subclass is refused (SerializationError)
    until it is registered itself. Registering the same class and code again (or a class of
    the same module and name, when its module was imported again) replaces the functions.
    Arrays inside the encoded value travel inline, not through shared memory.

    Args:
        cls: the class.
        code: its extension code on the wire, 32 to 127 (0 to 31 are the package's own).
        encode: ``obj -> value``: a value that can travel (a dict or list of plain values,
            or anything else the codec carries, registered types included). If it raises,
            or returns something that cannot travel, the call fails with SerializationError.
        decode: ``value -> obj``: rebuilds the object from what ``encode`` returned, as it
            arrives (a tuple arrives as a list). If it raises, the payload is refused with
            SerializationError. Both functions should be pure: they run once per object
            sent and received, in whichever thread encodes or decodes.

    Raises:
        TypeError: ``cls`` is not a class, ``code`` not an int, or ``encode`` or ``decode``
            not callable.
        ValueError: ``code`` is outside 32..127 or registered already for another class;
            ``cls`` is registered already with another code; or ``cls`` travels already
            (msgpack's own types and their subclasses, such as a NamedTuple, which travels
            as a list; datetime, date, timedelta, Decimal, UUID; numpy arrays).
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_type() needs a class, got {cls!r}")
    if type(code) is not int:
        raise TypeError(f"code must be an int from {FIRST_USER_CODE} to {LAST_USER_CODE}")
    for name, fn in (("encode", encode), ("decode", decode)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if not FIRST_USER_CODE <= code <= LAST_USER_CODE:
        raise ValueError(
            f"code {code} is out of range: codes {FIRST_USER_CODE} to {LAST_USER_CODE} are "
            f"for your types (0 to {FIRST_USER_CODE - 1} are snakepit_trio's own)"
        )
    why = _carried_already(cls)
    if why is not None:
        raise ValueError(f"cannot register {shown_name(cls)}: {why}")
    with _LOCK:
        taken = BY_CODE.get(code)
        if taken is not None and not _same_class(taken.cls, cls):
            raise ValueError(
                f"code {code} is registered already, for {qualified(taken.cls)}; give "
                f"{shown_name(cls)} another code from {FIRST_USER_CODE} to {LAST_USER_CODE} "
                "(the same in host and worker)"
            )
        earlier = BY_TYPE.get(cls)
        if earlier is not None and earlier.code != code:
            raise ValueError(
                f"{qualified(cls)} is registered already, with code {earlier.code}; a type "
                "has one code"
            )
        if taken is not None:
            del BY_TYPE[taken.cls]  # this class's earlier self, from an earlier import
        entry = Entry(cls, code, encode, decode)
        BY_TYPE[cls] = entry
        BY_CODE[code] = entry


def registered_base(cls: type[Any]) -> type[Any] | None:
    """A registered class ``cls`` derives from (for a hint: subclasses are not covered)."""
    return next((base for base in cls.__mro__[1:] if base in BY_TYPE), None)
