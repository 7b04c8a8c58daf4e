"""The host's side of a BATCH (one call, many items; see worker/_batch.py and the proto).

``BatchHandle`` is a unary call whose RESULT holds one entry per item run. Its payload is
decoded, and its entries checked, with the rest of the worker's batch of frames
(``accepts``), so a worker that answers a BATCH with anything else breaks the protocol and
is replaced; ``outcomes`` then gives each item's value or error. ``encode_items`` encodes the
items' arguments as one array, each item checked alone first, so an item that does not fit
fails alone.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._errors import InvalidArguments, PayloadTooLarge, SerializationError, SnakepitError
from .._shared import _frames as w
from .._shared._codec import Outbound, Unmapped, decode, encode
from .._tools import ToolSpec, check_arguments
from ._calls import UnaryHandle, error_from_frame

Outcome = tuple[bool, Any]  # (the item succeeded, its value or its error)


@attrs.frozen
class BatchAnswer:
    """What a BATCH call gave: each item's outcome, and what it cost (for chunk sizes)."""

    outcomes: list[Outcome | None]  # None: the item did not run (see Engine.execute_batch)
    ran: int = 0  # items the worker answered for
    run_time: float | None = None  # seconds it ran in the worker (else on the host's clock)
    size: int = 0  # bytes of its arguments and its result
    too_large: bool = False  # not sent: the items' arguments together are over the limit


@attrs.define(eq=False)
class BatchHandle(UnaryHandle):
    count: int = 0  # items sent
    stop: bool = False  # the first item that raises ends the batch
    unmapped: Unmapped | None = None  # told of result segments no longer mapped here
    entries: list[list[Any]] | None = None  # from the RESULT, decoded and checked
    decode_error: SnakepitError | None = None  # the RESULT could not be decoded

    def accepts(self, frame: w.CallFrame) -> str | None:
        problem = super().accepts(frame)
        if problem is None and type(frame) is w.Result:
            what = f"results of a batch of {self.tool!r}"
            try:
                entries = decode(frame.result, what=what, unmapped=self.unmapped)
            except SerializationError as exc:  # the caller's error, as for a call
                self.decode_error = exc
                return None
            found = check_entries(entries, self.count)
            if found is not None:
                return f"RESULT of batch call {frame.id}: {found}"
            self.entries = entries
        return problem


def check_entries(entries: Any, count: int) -> str | None:
    """What is wrong with the entries of a batch's RESULT, or None."""
    if type(entries) is not list or len(entries) > count:
        return f"not an array of at most {count} entries"
    for entry in entries:
        if type(entry) is not list or not entry or entry[0] not in (0, 1):
            return f"entry {entry!r:.60} is neither [0, value] nor [1, error fields]"
        if entry[0] == 0:
            if len(entry) != 2:
                return f"entry {entry!r:.60} is not [0, value]"
            continue
        try:
            w.parse_from_worker([w.ERROR, 0, *entry[1:]])
        except w.ProtocolViolation as exc:
            return f"an error entry: {exc}"
    if len(entries) < count and entries and entries[-1][0] == 0:
        return f"{len(entries)} entries for {count} items, and the last is no error"
    return None


def outcomes(tool: str, entries: list[list[Any]], available: list[str]) -> list[Outcome]:
    """Each item's value or error, from its entry."""
    return [
        (True, entry[1])
        if entry[0] == 0
        else (False, error_from_frame(tool, w.Error(0, *entry[1:]), available))
        for entry in entries
    ]


def encode_items(
    spec: ToolSpec, items: list[Any], segments: Outbound | None, limit: int, *, arrow: bool = True
) -> tuple[bytes, list[int], dict[int, SnakepitError]]:
    """The arguments of the items that fit, encoded as one array (``arrow`` False: an item
    holding an Arrow table fails, as the workers cannot read it).

    Returns:
        The payload, the positions of the items it holds, and the error of each item that
        does not fit the tool's parameters or cannot be encoded.

    Raises:
        PayloadTooLarge: the array is over ``limit`` (a chunk too large: send fewer items).
    """
    failed: dict[int, SnakepitError] = {}
    kept: list[Any] = []
    positions: list[int] = []
    for i, args in enumerate(items):
        try:
            check_arguments(spec, {} if args is None else args)
        except InvalidArguments as exc:
            failed[i] = exc
            continue
        kept.append(args or None)
        positions.append(i)
    what = f"the arguments of a batch of {len(kept)} calls to {spec.name!r}"
    try:
        return encode(kept, what=what, limit=limit, shm=segments, arrow=arrow), positions, failed
    except SerializationError:
        pass  # some item cannot travel: find which, alone
    still: list[Any] = []
    for i, args in zip(list(positions), kept, strict=True):
        try:
            encode(args, what=f"arguments of {spec.name!r}", limit=limit, arrow=arrow)
        except (SerializationError, PayloadTooLarge) as exc:
            failed[i] = exc
            positions.remove(i)
            continue
        still.append(args)
    return encode(still, what=what, limit=limit, shm=segments, arrow=arrow), positions, failed


def results_of(handle: Any, frame: w.Result) -> list[bytes]:
    """The payloads of a RESULT nobody will decode (its caller left), to release their
    shared memory. A batch's was decoded when it was checked: its views go with it."""
    if type(handle) is BatchHandle:
        return []
    return [frame.result]
