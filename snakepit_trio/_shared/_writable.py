"""``writable(value)``: a received value whose numpy arrays may be written to.

Arrays arrive read-only, as views of the received message or of a shared-memory segment (no
copy on receipt, and a segment is never rewritten while one views it). Code that writes into
them, or hands them to a consumer that needs writable memory (numpy refuses to export a
read-only array to a DLPack consumer older than DLPack 1.0, which cannot mark it so), takes a
copy first. Shared by host and worker (``from snakepit_trio import writable`` imports no
trio).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._core._types import is_ndarray
from ._unencodable import MAX_DEPTH

# One per container being rebuilt: its (key, item) pairs, its copy, whether it was a tuple
# (made one once complete), and the container and key or index its copy sits at.
_Entry = tuple[Iterator[tuple[Any, Any]], Any, bool, Any, Any]


def writable(value: Any) -> Any:
    """A copy of ``value`` in which every read-only numpy array is a writable copy.

    Arrays arrive read-only (views of the received message or of shared memory); pass a
    result or argument through this before writing into its arrays, or before handing them
    to a consumer that cannot take read-only memory (a DLPack consumer older than DLPack
    1.0, which numpy refuses a read-only array with BufferError). Lists, tuples
    and dicts, at any depth, are rebuilt as plain lists, tuples and dicts (dict keys are
    kept); writable arrays and every other value (Arrow tables, which are immutable, bytes,
    numbers, str) are kept as they are, not copied.

    Args:
        value: a value as received (``pool.execute``'s result, a tool's argument), or any
            value made of lists, tuples and dicts.

    Returns:
        The same shape of value; read-only arrays replaced by writable copies (same dtype,
        shape and contents), which the original memory never sees again.

    Raises:
        ValueError: lists, tuples and dicts nested more than 1,024 levels deep (more than
            any payload holds), or a container that holds itself.
    """
    holder: list[Any] = []
    stack: list[_Entry] = [(iter([(0, value)]), holder, False, None, None)]
    while stack:
        pairs, target, was_tuple, parent, slot = stack[-1]
        for key, item in pairs:
            if isinstance(item, dict):
                copy: Any = {}
                children: Iterator[tuple[Any, Any]] = iter(item.items())
            elif isinstance(item, list | tuple):
                copy = []
                children = enumerate(item)
            else:
                _place(target, key, _leaf(item))
                continue
            _place(target, key, copy)
            if len(stack) > MAX_DEPTH:
                raise ValueError(
                    f"lists, tuples and dicts nested more than {MAX_DEPTH:,} levels deep "
                    "(or one that holds itself)"
                )
            stack.append((children, copy, isinstance(item, tuple), target, key))
            break
        else:
            stack.pop()
            if was_tuple:
                parent[slot] = tuple(target)
    return holder[0]


def _place(target: Any, key: Any, item: Any) -> None:
    if type(target) is list:
        target.append(item)  # items come in order: ``key`` is the index
    else:
        target[key] = item


def _leaf(value: Any) -> Any:
    if is_ndarray(value) and not value.flags.writeable:
        return value.copy()
    return value
