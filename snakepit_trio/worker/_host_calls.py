"""Host calls: a running tool calls a tool registered on the host, over its call's connection.

One ``HostCalls`` per connection (a call's host calls travel where the call came from).

Rules:
- Only for a call this connection is running and that was not cancelled; the check is made
  on the loop, where calls end, so no HOST_CALL ever follows its call's final frame.
- Only to a host that named "host_tools" in its HELLO: otherwise HostToolsUnavailable at
  once, nothing sent.
- Sync tools block their own thread (never the loop's: that thread must deliver the
  answer, so there it is a RuntimeError at once). Async tools await.
- Cancellation both ways: a call cancelled by the host wakes its sync tool's blocked host
  call with ``HostToolError(kind="cancelled")`` and sends HOST_CANCEL for every host call
  it has open; an async tool cancelled while it awaits one sends HOST_CANCEL too. A call that
  ends with host calls still open (threads of its own) cancels them the same way. When the
  connection goes, every open host call fails as cancelled.
- Everything but the blocking wait runs on the loop: ids, the open table, frames out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable
from typing import Any

from .._errors import (
    HostToolError,
    HostToolsUnavailable,
    PayloadTooLarge,
    SerializationError,
    UnknownHostTool,
)
from .._shared import _frames as w
from .._shared._codec import decode, encode

Sink = Callable[[list[Any]], None]
# The names a session's variables are read and written through (see worker.proto).
GET_VARIABLE = "snakepit.get_variable"
SET_VARIABLE = "snakepit.set_variable"
_LIST = "host tool list"  # how a HOST_TOOLS request is named in errors


class _Pending:
    __slots__ = ("call_id", "future", "tool")

    def __init__(
        self,
        call_id: int,
        tool: str,
        future: concurrent.futures.Future[Any] | asyncio.Future[Any],
    ) -> None:
        self.call_id = call_id
        self.tool = tool
        self.future = future


class HostCalls:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        emit: Sink,
        is_live: Callable[[int], bool],
        max_payload: int,
    ) -> None:
        """``is_live(call_id)``: the call runs on this connection and was not cancelled."""
        self._loop = loop
        self._loop_thread = threading.get_ident()  # made on the loop
        self._emit = emit
        self._is_live = is_live
        self._max_payload = max_payload
        self._ids = itertools.count(1)
        self._open: dict[int, _Pending] = {}
        self._by_call: dict[int, set[int]] = {}
        self.capabilities: frozenset[str] = frozenset()  # the host's, from its HELLO

    # --- from tools ------------------------------------------------------------------------
    def call_sync(
        self, call_id: int, tool: str, kwargs: dict[str, Any], meta: dict[str, Any] | None
    ) -> Any:
        """Call host tool ``tool`` and wait for its value (in a tool's own thread).
        ``meta``: the call's trace context, for the host tool's span."""
        payload = self._encode(tool, kwargs)
        return self._wait(call_id, tool, payload, listing=False, meta=meta)

    async def call_async(
        self, call_id: int, tool: str, kwargs: dict[str, Any], meta: dict[str, Any] | None
    ) -> Any:
        """Call host tool ``tool`` and wait for its value (on the loop)."""
        payload = self._encode(tool, kwargs)
        return await self._await(call_id, tool, payload, listing=False, meta=meta)

    def list_sync(self, call_id: int) -> Any:
        """The host tools ``call_id`` may use (in a tool's own thread)."""
        self._check_capable(_LIST)
        return self._wait(call_id, _LIST, b"", listing=True)

    async def list_async(self, call_id: int) -> Any:
        self._check_capable(_LIST)
        return await self._await(call_id, _LIST, b"", listing=True)

    def _wait(
        self,
        call_id: int,
        tool: str,
        payload: bytes,
        *,
        listing: bool,
        meta: dict[str, Any] | None = None,
    ) -> Any:
        if threading.get_ident() == self._loop_thread:
            use = "ctx.ahost_tools()" if listing else "ctx.acall_host_tool(...)"
            raise RuntimeError(
                f"{'host_tools()' if listing else f'call_host_tool({tool!r})'} would block "
                f"the worker's event loop, which must deliver its answer; in an async tool "
                f"use 'await {use}'"
            )
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            self._loop.call_soon_threadsafe(
                self._start, call_id, tool, payload, future, listing, meta
            )
        except RuntimeError:  # the loop is closed: the worker is exiting
            raise HostToolError(tool, w.KIND_CANCELLED, "the worker is stopping") from None
        return future.result()

    async def _await(
        self,
        call_id: int,
        tool: str,
        payload: bytes,
        *,
        listing: bool,
        meta: dict[str, Any] | None = None,
    ) -> Any:
        future: asyncio.Future[Any] = self._loop.create_future()
        hcid = self._start(call_id, tool, payload, future, listing, meta)
        try:
            return await future
        except asyncio.CancelledError:
            if hcid is not None:
                self._give_up(hcid)
            raise

    def _check_capable(self, tool: str) -> None:
        if w.CAP_HOST_TOOLS not in self.capabilities:
            raise HostToolsUnavailable(tool)

    def _encode(self, tool: str, kwargs: dict[str, Any]) -> bytes:
        self._check_capable(tool)
        try:
            return encode(kwargs, what=f"arguments of host tool {tool!r}", limit=self._max_payload)
        except (SerializationError, PayloadTooLarge) as exc:
            raise HostToolError(tool, w.KIND_SERIALIZATION, str(exc)) from None

    # --- on the loop -----------------------------------------------------------------------
    def _start(
        self,
        call_id: int,
        tool: str,
        payload: bytes,
        future: concurrent.futures.Future[Any] | asyncio.Future[Any],
        listing: bool,
        meta: dict[str, Any] | None = None,
    ) -> int | None:
        if not self._is_live(call_id):
            future.set_exception(
                HostToolError(tool, w.KIND_CANCELLED, "the calling tool's call was cancelled")
            )
            return None
        hcid = next(self._ids)
        self._open[hcid] = _Pending(call_id, tool, future)
        self._by_call.setdefault(call_id, set()).add(hcid)
        self._emit(
            w.host_tools(hcid, call_id)
            if listing
            else w.host_call(hcid, call_id, tool, payload, meta)
        )
        return hcid

    def _take(self, hcid: int) -> _Pending | None:
        pending = self._open.pop(hcid, None)
        if pending is not None:
            ids = self._by_call.get(pending.call_id)
            if ids is not None:
                ids.discard(hcid)
                if not ids:
                    del self._by_call[pending.call_id]
        return pending

    def _give_up(self, hcid: int) -> None:
        if self._take(hcid) is not None:
            self._emit(w.host_cancel(hcid))

    def on_result(self, frame: w.HostResult) -> None:
        pending = self._take(frame.id)
        if pending is None or pending.future.done():
            return  # given up meanwhile: its answer crossed our HOST_CANCEL
        try:
            value = decode(frame.result, what=f"result of host tool {pending.tool!r}")
        except SerializationError as exc:
            pending.future.set_exception(
                HostToolError(pending.tool, w.KIND_SERIALIZATION, str(exc))
            )
            return
        pending.future.set_result(value)

    def on_error(self, frame: w.HostError) -> None:
        pending = self._take(frame.id)
        if pending is None or pending.future.done():
            return
        error: HostToolError
        if frame.kind == w.KIND_UNKNOWN_TOOL:
            error = UnknownHostTool(pending.tool, "unknown_tool", frame.message)
        elif frame.kind == w.KIND_REMOTE:
            error = HostToolError(pending.tool, frame.kind, frame.message, frame.type)
        else:
            error = HostToolError(pending.tool, frame.kind, frame.message)
        pending.future.set_exception(error)

    def fail(self, hcid: int, message: str) -> None:
        """An answer for ``hcid`` came that cannot be read: its tool gets an error."""
        pending = self._take(hcid)
        if pending is not None and not pending.future.done():
            pending.future.set_exception(HostToolError(pending.tool, w.KIND_PROTOCOL, message))

    def call_cancelled(self, call_id: int) -> None:
        """The host cancelled ``call_id`` (or it ended): its open host calls are given up."""
        open_ = self._by_call.get(call_id)
        if not open_:
            return  # the common case, once per call: nothing to give up
        for hcid in sorted(open_):
            pending = self._take(hcid)
            assert pending is not None
            self._emit(w.host_cancel(hcid))
            if not pending.future.done():
                pending.future.set_exception(
                    HostToolError(pending.tool, w.KIND_CANCELLED, "the calling call was cancelled")
                )

    def close(self) -> None:
        """The connection is gone: every open host call fails."""
        for hcid in list(self._open):
            pending = self._take(hcid)
            assert pending is not None
            if not pending.future.done():
                pending.future.set_exception(
                    HostToolError(pending.tool, w.KIND_CANCELLED, "the host went away")
                )
