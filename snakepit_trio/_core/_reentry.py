"""Where a nested call goes: a call made by a host tool while its ancestor calls wait in it.

A worker tool that calls a host tool keeps its slot while it waits (it is *parked*). If the
host tool calls back into the pool, the new call may need that very slot: a strict session
bound to the parked worker, or a pool whose every slot is parked. Queued, it would wait for
itself. The rules (Orleans' call-chain reentrancy, and Erlang's ``calling_self``):

1. Deeper than ``max_depth`` nested calls: refused.
2. A real free slot that may run it (not prefetch room behind running calls): it goes the
   ordinary way.
3. Else, if a worker that may run it holds one of its own ancestors, parked: it borrows
   that slot (the ancestor waits for this very call, so its slot is idle) and is sent at
   once, beyond the worker's capacity. The innermost ancestor's worker is preferred.
4. Else, if every slot of every worker that may run it is parked: refused at once (each
   waits for a host tool, none can free a slot for it).
5. Else it queues: some running call will end.

Pure: the shell describes the workers; nothing here touches a clock or a process.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs


@attrs.frozen
class WorkerView:
    """What the decision needs to know of one worker that may run the call."""

    id: Any
    capacity: int
    running: int  # calls on it (running or waiting there)
    parked: int  # of those, calls waiting in a host tool
    open: bool  # it takes new calls (not draining, suspended, held or exhausted)
    holds_ancestor: bool  # one of the nested call's ancestors is parked on it


@attrs.frozen
class Ordinary:
    """Submit it as any call."""


@attrs.frozen
class Borrow:
    """Send it to ``worker`` at once, in its parked ancestor's slot."""

    worker: Any


@attrs.frozen
class Refuse:
    reason: str


Placement = Ordinary | Borrow | Refuse


def views_of(
    workers: Mapping[Any, Any],
    parked: Collection[int],
    ancestors: Collection[int],
    pin: Any,
) -> list[WorkerView]:
    """The workers that may run a nested call, described for ``place_nested``.

    Args:
        workers: the dispatcher's ``WorkerSlots`` by worker id.
        parked: ids of the calls waiting in a host tool.
        ancestors: ids of the nested call's ancestor calls.
        pin: the worker a strict session binds it to, or None (any worker).
    """
    ids = [pin] if pin is not None else list(workers)
    out = []
    for worker in ids:
        ws = workers.get(worker)
        if ws is None:
            continue
        calls = ws.calls.values()
        out.append(
            WorkerView(
                id=worker,
                capacity=ws.capacity,
                running=len(ws.calls),
                parked=sum(1 for c in calls if c.id in parked),
                # Its own strict session's calls may go to a worker that takes no pool calls.
                open=ws.open if pin is not None else ws.accepting,
                holds_ancestor=any(c.id in ancestors and c.id in parked for c in calls),
            )
        )
    return out


def place_nested(
    depth: int, max_depth: int, candidates: Sequence[WorkerView], ancestors: Sequence[Any]
) -> Placement:
    """Decide where a nested call goes.

    Args:
        depth: how many calls it is nested in (1: made by a host tool of a top-level call).
        max_depth: the deepest nesting allowed.
        candidates: the workers that may run it (the strict session's one, or every live
            worker of the pool).
        ancestors: the workers its ancestors run on, outermost first.
    """
    if depth > max_depth:
        return Refuse(
            f"it would be nested {depth} deep; max_reentry_depth={max_depth} "
            "(raise it, or make the host tool not call the pool)"
        )
    if any(v.open and v.running < v.capacity for v in candidates):
        return Ordinary()
    by_id = {v.id: v for v in candidates}
    for worker in reversed(ancestors):
        view = by_id.get(worker)
        if view is not None and view.holds_ancestor:
            return Borrow(view.id)
    if candidates and all(v.parked >= v.capacity for v in candidates):
        return Refuse(
            "every slot that could run it is held by a call waiting in a host tool, so it "
            "could only wait for itself; raise worker_capacity or size, or call a tool of "
            "the calling session's own worker"
        )
    return Ordinary()
