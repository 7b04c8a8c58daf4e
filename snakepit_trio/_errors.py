"""The exception tree: every error the pool raises derives from SnakepitError.

Transport exceptions (grpclib, asyncio, h2) are translated at the edge in ``_transport/`` and
never reach callers; each class below says when it is raised and whether the request ran.
"""

from __future__ import annotations

import difflib

__all__ = [
    "AmbiguousTool",
    "CircuitOpen",
    "HostToolError",
    "HostToolsUnavailable",
    "InvalidArguments",
    "InvalidVariable",
    "PayloadTooLarge",
    "PoolClosed",
    "PoolSaturated",
    "PoolUnhealthy",
    "QueueTimeout",
    "ReentrancyError",
    "RemoteError",
    "RequestTimeout",
    "SerializationError",
    "SessionLost",
    "SessionQuotaExceeded",
    "SnakepitError",
    "StreamIdleTimeout",
    "UnknownHostTool",
    "UnknownTool",
    "WorkerCrashed",
    "WorkerStartError",
]


class SnakepitError(Exception):
    """Base class of every error raised by snakepit_trio."""


class PoolClosed(SnakepitError):
    """The pool is closing or closed.

    Raised for calls submitted after ``open_pool`` began to exit, and for calls still waiting
    when the drain period ran out. The request did not run (or, for calls cut off by the drain
    deadline, its outcome is unknown).
    """


class PoolSaturated(SnakepitError):
    """The queue already holds ``max_queue`` calls; raised at once, the call did not run."""

    def __init__(self, max_queue: int) -> None:
        super().__init__(
            f"pool queue is full ({max_queue} calls waiting); raise max_queue or slow down"
        )
        self.max_queue = max_queue


class PoolUnhealthy(SnakepitError):
    """Workers crashed too often (``crash_threshold`` within ``crash_window`` seconds).

    Raised at once, without running the call, until a probe call succeeds: ``probe_after``
    seconds after the last crash one call is let through, and its answer makes the pool
    healthy again. Calls queued when the pool became unhealthy fail with this too.

    Attributes:
        crashes: crashes counted in the window.
        last_cause: how the last worker died.
        retry_in: seconds until a probe call may run (0: one may run now, or is running).
    """

    def __init__(self, crashes: int, window: float, last_cause: str, retry_in: float) -> None:
        super().__init__(
            f"pool is unhealthy: {crashes} worker crashes within {window:g}s "
            f"(last: {last_cause}); calls fail fast until a probe call succeeds "
            f"(next probe in {retry_in:.1f}s). Fix the cause (see the worker's stderr in the "
            "log) or raise crash_threshold"
        )
        self.crashes = crashes
        self.last_cause = last_cause
        self.retry_in = retry_in


class CircuitOpen(SnakepitError):
    """A ``CircuitBreaker`` refused the call at once; it did not run.

    The breaker opened after too many failures and lets calls through again, as probes,
    ``reset_timeout`` seconds later; while its probes run, other calls are refused too.

    Attributes:
        name: the breaker's name (``""`` when it has none).
        retry_in: seconds until a probe call may run (0: probes are running now).
    """

    def __init__(self, name: str, retry_in: float) -> None:
        which = f"circuit {name!r}" if name else "the circuit"
        if retry_in > 0:
            when = f"the next probe call may run in {retry_in:.2f}s"
        else:
            when = "probe calls are running; the next call may run once they succeed"
        super().__init__(f"{which} is open after too many failures: calls fail fast; {when}")
        self.name = name
        self.retry_in = retry_in


class QueueTimeout(SnakepitError, TimeoutError):
    """The call waited longer than ``queue_timeout`` for a free worker; it did not run."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no worker became free within queue_timeout={waited:g}s")
        self.waited = waited


class RequestTimeout(SnakepitError, TimeoutError):
    """The call's ``timeout`` budget (queue wait plus execution) ran out.

    The worker was sent a cancel frame; the tool may have run partly or completely.
    """

    def __init__(self, tool: str, timeout: float, *, started: bool) -> None:
        where = "while running on a worker" if started else "while queued"
        super().__init__(f"call to {tool!r} exceeded timeout={timeout:g}s {where}")
        self.tool = tool
        self.timeout = timeout
        self.started = started


class StreamIdleTimeout(RequestTimeout):
    """A stream sent no chunk for ``idle_timeout`` seconds; the worker was told to stop."""

    def __init__(self, tool: str, idle_timeout: float) -> None:
        SnakepitError.__init__(
            self, f"stream from {tool!r} sent nothing for idle_timeout={idle_timeout:g}s"
        )
        self.tool = tool
        self.timeout = idle_timeout
        self.started = True


class RemoteError(SnakepitError):
    """The tool raised an exception inside the worker.

    Attributes:
        remote_type: qualified name of the exception class in the worker.
        remote_message: ``str()`` of the exception.
        remote_traceback: the formatted traceback from the worker.
    """

    def __init__(self, tool: str, remote_type: str, message: str, traceback: str) -> None:
        super().__init__(f"{tool!r} raised {remote_type}: {message}")
        self.tool = tool
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = traceback

    def __str__(self) -> str:
        text = super().__str__()
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return text


class UnknownTool(SnakepitError):
    """The adapter has no tool of that name (or, for ``Pools.execute``, no pool has one);
    raised before dispatch.

    Attributes:
        tool: the name asked for.
        available: every tool there is, sorted.
        pools: for ``Pools``: each pool's tools, by pool name; None for one pool.
    """

    def __init__(
        self, tool: str, available: list[str], *, pools: dict[str, list[str]] | None = None
    ) -> None:
        names = ", ".join(sorted(available)) or "none"
        if pools is None:
            message = f"unknown tool {tool!r}; the adapter provides: {names}"
        else:
            close = difflib.get_close_matches(tool, sorted(available), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listed = "; ".join(
                f"{name!r}: {', '.join(sorted(tools)) or 'none'}" for name, tools in pools.items()
            )
            message = f"unknown tool {tool!r}{hint}; no pool provides it (pools: {listed})"
        super().__init__(message)
        self.tool = tool
        self.available = sorted(available)
        self.pools = pools


class AmbiguousTool(UnknownTool):
    """More than one pool provides the tool ``Pools.execute`` was asked to route; raised
    before dispatch. Call it on the pool you mean: ``pools["name"].execute(...)``.

    Attributes:
        tool: the tool's name.
        candidates: the pools that provide it, in ``open_pools`` order.
    """

    def __init__(self, tool: str, candidates: list[str], pools: dict[str, list[str]]) -> None:
        SnakepitError.__init__(
            self,
            f"tool {tool!r} is provided by pools {', '.join(map(repr, candidates))}; "
            f"choose one: pools[{candidates[0]!r}].execute({tool!r}, ...)",
        )
        self.tool = tool
        self.candidates = list(candidates)
        self.available = sorted({t for tools in pools.values() for t in tools})
        self.pools = pools


class InvalidArguments(SnakepitError):
    """The arguments do not match the tool's signature; raised before dispatch.

    Attributes:
        tool: the tool's name.
        param: the offending parameter (or ``None`` when the whole ``args`` value is wrong).
        reason: what is wrong and what to change.
    """

    def __init__(self, tool: str, param: str | None, reason: str) -> None:
        where = f"argument {param!r}" if param is not None else "arguments"
        super().__init__(f"{tool!r}: invalid {where}: {reason}")
        self.tool = tool
        self.param = param
        self.reason = reason


class SerializationError(SnakepitError):
    """A value cannot be encoded (at the call site) or decoded; the call did not run."""


class PayloadTooLarge(SnakepitError):
    """An encoded payload is larger than the configured limit.

    Attributes:
        size: encoded size in bytes.
        limit: the limit in bytes.
        option: the option that sets the limit.
    """

    def __init__(self, what: str, size: int, limit: int, option: str = "max_payload_bytes") -> None:
        super().__init__(
            f"{what} is {size} bytes encoded, over the {limit}-byte limit; "
            f"raise the pool's {option} option or send less data"
        )
        self.size = size
        self.limit = limit
        self.option = option


class WorkerCrashed(SnakepitError):
    """The worker running the call died before answering; the call may have run.

    Attributes:
        worker_id: the id of the dead worker.
        pid: its process id.
        exit_code: its exit code (``None`` if it was killed by a signal, or for a worker the
            pool reaches at an endpoint: its exit is on its own host).
        signal: the signal number that killed it, or ``None``.
        stderr_tail: the last lines the worker wrote to stderr.
        cause: ``"exit"`` (it exited by itself), ``"signal"`` (killed by a signal the pool
            did not send), ``"oom"`` (SIGKILL with evidence of the kernel's OOM killer),
            ``"unresponsive"`` (the pool killed it: no heartbeat answer),
            ``"stuck"`` (the pool killed it: a cancelled call did not stop, kill_on_cancel),
            ``"protocol"`` (the pool killed it: it sent frames the protocol does not allow),
            ``"host"`` (the pool killed it: serving one of its host calls failed on the
            host, an error logged with its traceback) or ``"disconnected"`` (its connection
            broke, or, for a worker reached at an endpoint, the link went silent for
            ``heartbeat_timeout``; the pool killed it).
        last_rss: its resident memory in bytes at the last heartbeat, or ``None``.
        running: the tools of the calls the worker held when it died (sorted, each once).
    """

    def __init__(
        self,
        worker_id: str,
        pid: int,
        exit_code: int | None,
        signal: int | None,
        stderr_tail: str,
        *,
        detail: str = "",
        cause: str = "",
        last_rss: int | None = None,
        running: tuple[str, ...] = (),
    ) -> None:
        if signal is not None:
            import signal as _signal

            try:
                how = f"killed by {_signal.Signals(signal).name}"
            except ValueError:
                how = f"killed by signal {signal}"
        elif exit_code is not None:
            how = f"exited with code {exit_code}"
        else:  # a worker the pool does not own (an endpoint): its connection ended
            how = "was lost"
        message = f"worker {worker_id} (pid {pid}) {how}"
        if running:
            message += " while running " + ", ".join(repr(t) for t in running)
        if detail:
            message += f" ({detail})"
        if stderr_tail:
            message += "\n--- worker stderr (last lines) ---\n" + stderr_tail.rstrip()
        super().__init__(message)
        self.worker_id = worker_id
        self.pid = pid
        self.exit_code = exit_code
        self.signal = signal
        self.stderr_tail = stderr_tail
        self.cause = cause or ("signal" if signal is not None else "exit")
        self.last_rss = last_rss
        self.running = running


class SessionLost(SnakepitError):
    """The worker holding a strict session's state died; the call did not run.

    The session stays lost: close it and open a new one (its state must be rebuilt).
    """

    def __init__(self, session_id: str, reason: str = "") -> None:
        message = f"session {session_id!r} is lost: its worker died"
        if reason:
            message += f" ({reason})"
        super().__init__(message + "; open a new session to continue")
        self.session_id = session_id
        self.reason = reason


class InvalidVariable(SnakepitError, ValueError):
    """A session variable declaration or value broke a rule.

    Attributes:
        name: the variable.
        constraint: the rule broken: "type", "min", "max", "choices", "max_length", "name"
            or, for a declaration, "description".
    """

    def __init__(self, name: str, constraint: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.constraint = constraint


class SessionQuotaExceeded(SnakepitError):
    """Creating a session would exceed ``max_sessions``; close idle sessions or raise it."""

    def __init__(self, max_sessions: int) -> None:
        super().__init__(
            f"the pool already holds max_sessions={max_sessions} sessions; "
            "close some or raise the max_sessions option"
        )
        self.max_sessions = max_sessions


class WorkerStartError(SnakepitError):
    """A worker could not start: the adapter failed to import or initialize, or timed out.

    Raised from ``open_pool``; the pool does not keep respawning a worker that cannot start.
    The message's first line is the root cause as the worker reported it (``No module named
    'x'``, or the type and message of the exception its module or ``initialize()`` raised),
    then what to change, then how the worker ended and its stderr.

    Attributes:
        worker_id: the worker that failed.
        reason: how it failed as the pool saw it ("exited with code 3 before it was
            ready", "not ready within startup_timeout=30s", ...).
        stderr_tail: the last lines the worker wrote to stderr.
    """

    def __init__(self, worker_id: str, reason: str, stderr_tail: str = "") -> None:
        reported = _reported_cause(stderr_tail)
        if reported is None:
            message = f"worker {worker_id} failed to start: {reason}"
        else:
            cause, advice = reported
            message = "\n".join(
                [f"worker {worker_id} failed to start: {cause}", *advice, f"({reason})"]
            )
        if stderr_tail:
            message += "\n--- worker stderr (last lines) ---\n" + stderr_tail.rstrip()
        super().__init__(message)
        self.worker_id = worker_id
        self.reason = reason
        self.stderr_tail = stderr_tail


# The worker's last words when its adapter cannot load or initialize (worker/_server.py).
_START_FAILED = "snakepit worker: adapter failed to start: "


def _reported_cause(stderr_tail: str) -> tuple[str, list[str]] | None:
    """The worker's account of why it could not start: (root cause, advice lines), or None.

    The worker prints the traceback, then ``_START_FAILED`` and the exception's message
    (whose later lines, for a load error, say what to change). The traceback's own last
    line names the exception's type, which the message alone does not.
    """
    lines = stderr_tail.rstrip().splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith(_START_FAILED)]
    if not marks:
        return None
    at = marks[-1]
    cause, advice = lines[at][len(_START_FAILED) :], lines[at + 1 :]
    first = at - 1 - len(advice)  # where the traceback printed the same message
    if first >= 0:
        kind, sep, said = lines[first].partition(": ")
        named = kind.replace(".", "").replace("_", "").isalnum()
        same = said == cause if sep else cause == ""
        # A load error's message names its cause itself (No module named ...).
        if named and same and not kind.endswith("AdapterLoadError"):
            cause = f"{kind}: {cause}" if cause else kind
    return cause, advice


class HostToolError(SnakepitError):
    """Raised in a worker's tool: a host tool it called did not return a value.

    Attributes:
        tool: the host tool's name.
        kind: why: ``"remote"`` (the host tool raised; ``remote_type`` and
            ``remote_message`` are its own), ``"unknown_tool"``, ``"invalid_arguments"``,
            ``"cancelled"`` (the calling tool was cancelled, its deadline passed, or the host
            went away), ``"serialization"`` (an argument or the result cannot be encoded),
            ``"reentrancy"`` (the host tool made a nested call that could only wait for
            itself), ``"unavailable"`` (the host serves no host tools) or ``"protocol"`` (the
            host's answer could not be read).
        remote_type: the exception's type name on the host, for ``"remote"``; else ``""``.
        remote_message: what the host said.
    """

    def __init__(self, tool: str, kind: str, message: str, remote_type: str = "") -> None:
        what = f"{remote_type}: {message}" if remote_type else message
        super().__init__(f"host tool {tool!r} failed ({kind}): {what}")
        self.tool = tool
        self.kind = kind
        self.remote_type = remote_type
        self.remote_message = message


class UnknownHostTool(HostToolError):
    """No host tool of that name is visible to the calling call (neither the pool's nor its
    session's); the message names those it may call. ``kind`` is ``"unknown_tool"``."""


class HostToolsUnavailable(HostToolError):
    """The host this worker serves offers no host tools (it did not name them when it
    connected); raised at once, without waiting."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            tool,
            "unavailable",
            "the host did not offer host tools when it connected (an older host, or a "
            "client that calls tools directly); nothing was sent",
        )


class ReentrancyError(SnakepitError):
    """A nested call (made by a host tool, inside a worker tool's call) cannot run without
    waiting for itself; raised at once instead of a deadlock.

    Raised when the nesting is deeper than ``max_reentry_depth``, or when the call would
    have to queue while every slot that could run it is held by a call waiting in a host
    tool (its own ancestors among them).

    Attributes:
        chain: the tools of the calls it is nested in, outermost first.
    """

    def __init__(self, tool: str, chain: tuple[str, ...], reason: str) -> None:
        path = " -> ".join((*chain, tool))
        super().__init__(f"nested call {path} cannot run: {reason}")
        self.tool = tool
        self.chain = chain
