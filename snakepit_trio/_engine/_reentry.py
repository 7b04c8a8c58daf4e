"""Nested calls (a host tool calling the pool): placed by ``_core/_reentry.py``'s rules.

The engine asks ``place`` before it submits any call. Outside a host tool (no ``NESTING``)
it costs one context-variable read. Inside one, it describes the workers that may run the
call and either lets it go the ordinary way, names the worker whose parked slot it borrows,
or raises ReentrancyError at once.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._config import PoolConfig
from .._core._dispatcher import Call, CallState, Dispatcher
from .._core._reentry import Borrow, Refuse, place_nested, views_of
from .._core._sessions import SessionRecord
from .._errors import ReentrancyError
from .._shared import _frames as w
from .._supervision._worker import Worker
from ._host_calls import NESTING, HostCalls

_LIVE = (CallState.SENT, CallState.ABANDONED)  # a call whose host tools may still run


class ReentryHost(Protocol):
    config: PoolConfig
    core: Dispatcher
    host_calls: HostCalls
    workers: dict[str, Worker]


def place(engine: ReentryHost, call: Call, session: SessionRecord | None) -> Any | None:
    """The worker a nested call borrows a slot on, or None to submit it as usual. A nested
    call keeps its ancestors (``handle.nesting``), for the host tools it calls in turn.

    Raises:
        ReentrancyError: it is nested too deep, or could only wait for itself.
    """
    nesting = NESTING.get()
    if nesting is None or nesting.calls[-1].state not in _LIVE:
        # Not in a host tool; or in a task a host tool started, after its call ended: its
        # ancestors are gone, and it is an ordinary call.
        return None
    call.handle.nesting = nesting
    tool = call.tool
    ancestors = {c.id for c in nesting.calls}
    strict = session is not None and session.affinity == "strict"
    pin = session.worker if strict and session is not None else None
    if strict and pin is None:
        return None  # its worker is gone: submitting it says so (SessionLost)
    views = views_of(engine.core.workers, engine.host_calls.parked, ancestors, pin)
    placement = place_nested(
        len(nesting.calls), engine.config.max_reentry_depth, views, nesting.workers
    )
    if type(placement) is Refuse:
        raise ReentrancyError(tool, nesting.tools, placement.reason)
    if type(placement) is Borrow:
        worker = engine.workers.get(placement.worker)
        if worker is None or w.CAP_CALL_META not in worker.capabilities:
            raise ReentrancyError(
                tool,
                nesting.tools,
                f"its only possible worker {placement.worker} is waiting for it in a host "
                "tool and cannot run a call beyond its capacity (it does not read CALL meta)",
            )
        return placement.worker
    return None
