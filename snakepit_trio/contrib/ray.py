"""Workers on a Ray cluster: ``open_pool(..., launcher=RayLauncher(...))``.

Ray does the placement and keeps the workers' hosts alive; snakepit_trio keeps its own wire.
Each worker slot is one small non-detached Ray actor (``_ray_slot.WorkerSlot``) that starts
an ordinary worker process on its node, listening on TCP with TLS and a certificate made
there; the actor reports where it listens and the certificate's SHA-256, which the host pins.
Calls, streams, cancellation, sessions and host tools then go over "Carrier 1 over TCP"
exactly as to any endpoint (``_supervision/_endpoints.py``). An actor or node that dies
breaks the connection: the slot's calls fail with ``WorkerCrashed(cause="disconnected")``
and the slot asks Ray for a new actor, which Ray may place elsewhere. The actors share the
host's fate (Ray kills a driver's non-detached actors when the driver dies), and each worker
dies with its actor (it watches a pipe the actor holds).

Every blocking Ray call runs in a thread, never on the Trio thread. A Ray this pool starts
itself (none was initialized) runs from a thread of its own that lives until the pool
closes: Ray starts its local services with ``PR_SET_PDEATHSIG``, which Linux delivers when
the *thread* that started them exits, so a short-lived thread would take them down with it.
"""

from __future__ import annotations

import logging
import math
import numbers
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from .._config import PoolConfig
from .._core import _checks as checks
from .._shared._tcp import pinned_client_context
from .._supervision._endpoints import RemoteWorker, connect_tcp
from .._supervision._spawn import served_args
from .._supervision._worker import Worker
from .._transport._base import OnFrames, OnLost
from .._transport._describe import WorkerDescription
from .._transport._lane import TcpTarget
from ._ray_slot import WorkerSlot, tcp_url

__all__ = ["RayLauncher"]

STOP_SLACK = 10.0  # seconds beyond the grace for an actor to answer stop()
STRATEGIES = ("DEFAULT", "SPREAD")


def _amount(instance: Any, attribute: Any, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"RayLauncher.{attribute.name} must be a number >= 0 (Ray's logical resources "
            f"per worker); got {checks.shown(value)}"
        )


def _resources(value: Mapping[str, float] | None) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"RayLauncher.resources must be a dict of resource name to amount; got "
            f"{checks.shown(value)}"
        )
    for name, amount in value.items():
        if not isinstance(name, str) or isinstance(amount, bool):
            raise TypeError(
                f"RayLauncher.resources must map str to a number; got {name!r}: {amount!r}"
            )
        if not isinstance(amount, numbers.Real) or not math.isfinite(amount) or amount < 0:
            raise ValueError(f"RayLauncher.resources[{name!r}] must be >= 0; got {amount!r}")
    return dict(value)


def _strategy(instance: Any, attribute: Any, value: object) -> None:
    if isinstance(value, str) and value not in STRATEGIES:
        raise ValueError(
            f"RayLauncher.strategy must be 'DEFAULT', 'SPREAD' or one of Ray's scheduling "
            f"strategy objects (ray.util.scheduling_strategies); got {value!r}"
        )
    if value is None:
        raise TypeError("RayLauncher.strategy must not be None: use 'DEFAULT'")


def _optional_mapping(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(
            f"RayLauncher.{attribute.name} must be a dict or None; got {checks.shown(value)}"
        )


def _address(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            "RayLauncher.address must be a str ('auto', 'ray://HOST:10001', 'HOST:6379') or "
            f"None; got {checks.shown(value)}"
        )


@attrs.frozen(kw_only=True)
class RayLauncher:
    """Start each worker of a pool on a Ray cluster (the ``ray`` extra).

    Pass it as ``open_pool(..., launcher=RayLauncher(...))``. Every node Ray may choose
    needs snakepit_trio with the ``ray`` extra and the adapter's code installed (or shipped
    with ``runtime_env``); the host must reach the nodes' addresses over TCP.

    Attributes:
        address: the cluster to join when Ray is not initialized yet in this process:
            ``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``; None starts a local Ray
            (Ray's own default). If Ray is already initialized, that connection is used and
            left open; otherwise the pool connects (or starts Ray) and shuts it down on exit.
        num_cpus: Ray CPUs each worker's actor reserves (the worker process runs beside it,
            so this is the worker's share).
        num_gpus: Ray GPUs each worker's actor reserves; Ray sets ``CUDA_VISIBLE_DEVICES``
            for it, and the worker inherits it.
        resources: custom Ray resources each worker reserves (``{"big_mem": 1}``).
        runtime_env: Ray's runtime environment for the actors and so their workers
            (``{"pip": [...], "env_vars": {...}, "working_dir": ...}``).
        strategy: ``"DEFAULT"``, ``"SPREAD"`` (one worker per node as far as they go), or a
            Ray scheduling strategy object (node affinity, placement group).
        tls: TLS 1.3 with a certificate made on the worker's node and pinned by the host
            (default). False: plain TCP, for a network you trust; the token is still proved.
        init_options: keyword arguments for ``ray.init`` when the pool starts or joins Ray
            (its defaults here: no dashboard, Ray's log at ERROR).

    The pool's ``env`` and ``pythonpath`` reach the workers (not ``inherit_path``: the
    host's import paths mean nothing on another node). ``devices``, ``runtime`` and
    ``worker_command`` do not apply. The pool's token crosses Ray's own control channel to
    the actors (use Ray's TLS or token authentication on networks you do not trust); it is
    never sent to a worker.
    """

    address: str | None = attrs.field(default=None, validator=_address)
    num_cpus: float = attrs.field(default=1, validator=_amount)
    num_gpus: float = attrs.field(default=0, validator=_amount)
    resources: dict[str, float] = attrs.field(factory=dict, converter=_resources)
    runtime_env: Mapping[str, Any] | None = attrs.field(default=None, validator=_optional_mapping)
    strategy: Any = attrs.field(default="DEFAULT", validator=_strategy)
    tls: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    init_options: Mapping[str, Any] = attrs.field(factory=dict, validator=_optional_mapping)

    def open_launcher(
        self, config: PoolConfig
    ) -> AbstractAsyncContextManager[Callable[[trio.Nursery], Any]]:
        """Join (or start) Ray for one pool; what makes its launcher.

        Args:
            config: the pool's configuration.

        Returns:
            An async context manager yielding the launcher's factory; on exit, after the
            pool's workers have stopped, it shuts down a Ray that it started or joined.

        Raises:
            ImportError: Ray is not installed (the message names the extra).
            RuntimeError: ``ray.init`` failed (its error is the cause).
        """
        return _open(self, config)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"launcher=RayLauncher(...) needs Ray ({exc}); install it with "
            "pip install 'snakepit_trio[ray]'"
        ) from exc
    return ray


@asynccontextmanager
async def _open(spec: RayLauncher, config: PoolConfig) -> AsyncIterator[Callable[..., Any]]:
    ray = _import_ray()
    owner = None
    if not ray.is_initialized():
        owner = _RayThread(ray, spec)
        await owner.start()
    try:
        slot_class = await trio.to_thread.run_sync(ray.remote, WorkerSlot)
        # Text, as a token file holds it (read_token strips surrounding whitespace).
        token = secrets.token_hex(32).encode()  # this pool's; its workers refuse other hosts
        yield lambda nursery: _RayWorkers(config, spec, ray, slot_class, token)
    finally:
        if owner is not None:
            with trio.CancelScope(shield=True):
                await owner.stop()


def actor_name(pool: str, token: bytes, worker_id: str) -> str:
    """The Ray actor name of a worker: ``snakepit_trio/<pool name>/<pool tag>/<worker id>``."""
    return f"snakepit_trio/{pool}/{token[:8].decode()}/{worker_id}"


class _RayThread:
    """The thread that starts (or joins) Ray for a pool and shuts it down when the pool is
    done: the same thread both times, alive in between (see the module's docstring)."""

    def __init__(self, ray: Any, spec: RayLauncher) -> None:
        self._ray = ray
        self._spec = spec
        self._error: BaseException | None = None
        self._release = threading.Event()
        self._started = trio.Event()
        self._stopped = trio.Event()

    async def start(self) -> None:
        trio_token = trio.lowlevel.current_trio_token()
        options = {"include_dashboard": False, "logging_level": logging.ERROR}
        options.update(self._spec.init_options)

        def body() -> None:
            try:
                self._ray.init(address=self._spec.address, **options)
            except BaseException as exc:
                self._error = exc
                trio.from_thread.run_sync(self._started.set, trio_token=trio_token)
                return
            trio.from_thread.run_sync(self._started.set, trio_token=trio_token)
            self._release.wait()
            try:
                self._ray.shutdown()
            finally:
                trio.from_thread.run_sync(self._stopped.set, trio_token=trio_token)

        threading.Thread(target=body, name="snakepit-ray", daemon=True).start()
        with trio.CancelScope(shield=True):  # bounded by Ray's own timeouts; then stop()
            await self._started.wait()
        if self._error is not None:
            self._stopped.set()
            raise RuntimeError(
                f"ray.init(address={self._spec.address!r}) failed: {self._error}"
            ) from self._error

    async def stop(self) -> None:
        self._release.set()
        await self._stopped.wait()


class RayWorker(RemoteWorker):
    """One slot's actor and the worker it started, as the supervisor watches it."""

    start_method = "ray"

    def __init__(self, actor: Any, started: Any) -> None:
        super().__init__("")
        self.actor = actor
        self.started = started  # the ObjectRef of the actor's start(): where the worker is
        self.node_id = ""
        self.listening = False  # its actor started the worker: stop() can reach it
        self.stopped = False


class _RayWorkers:
    """The pool's launcher (``_supervision/_launcher.py``'s protocol) on Ray."""

    def __init__(
        self, config: PoolConfig, spec: RayLauncher, ray: Any, slot_class: Any, token: bytes
    ) -> None:
        self._config = config
        self._spec = spec
        self._ray = ray
        self._slot_class = slot_class
        self._token = token
        self._flags = served_args(config)
        self._env = dict(config.env)
        self._paths = list(config.pythonpath)
        self._context = pinned_client_context() if spec.tls else None

    async def spawn(self, worker_id: str, slot: int = 0) -> RayWorker:
        actor, started = await trio.to_thread.run_sync(self._create, worker_id)
        return RayWorker(actor, started)

    def _create(self, worker_id: str) -> tuple[Any, Any]:
        spec = self._spec
        options: dict[str, Any] = {
            # What `ray list actors` shows; unique per pool (two pools may share a name).
            "name": actor_name(self._config.name, self._token, worker_id),
            "num_cpus": spec.num_cpus,
            "num_gpus": spec.num_gpus,
            "scheduling_strategy": spec.strategy,
            "max_restarts": 0,  # a new actor is the pool's decision (restart's backoff)
        }
        if spec.resources:
            options["resources"] = spec.resources
        if spec.runtime_env is not None:
            options["runtime_env"] = dict(spec.runtime_env)
        actor = self._slot_class.options(**options).remote()
        timeout = self._config.startup_timeout
        started = actor.start.remote(
            self._flags, self._env, self._paths, self._token, spec.tls, timeout
        )
        return actor, started

    async def connect(
        self, worker: Worker, nursery: trio.Nursery, on_frames: OnFrames, on_lost: OnLost
    ) -> WorkerDescription | str:
        proc = worker.process
        assert isinstance(proc, RayWorker)
        # Scheduling the actor counts too: a cluster without room for it never starts it.
        timeout = self._config.startup_timeout * 2
        try:
            where = await trio.to_thread.run_sync(
                lambda: self._ray.get(proc.started, timeout=timeout), abandon_on_cancel=True
            )
        except self._ray.exceptions.GetTimeoutError:
            return (
                f"Ray did not start the worker's actor within {timeout} s: does the cluster "
                f"have num_cpus={self._spec.num_cpus}, num_gpus={self._spec.num_gpus}, "
                f"resources={self._spec.resources} free for it (ray status)?"
            )
        except self._ray.exceptions.RayError as exc:
            return f"the worker's Ray actor failed: {exc}"
        proc.listening = True
        proc.endpoint = tcp_url(where["host"], where["port"])
        proc.node_id = where["node_id"]
        target = TcpTarget(proc.endpoint, self._token, self._context, pin=where["pin"] or None)
        return await connect_tcp(self._config, worker, target, nursery, on_frames, on_lost)

    async def reap(self, worker: Worker, grace: float) -> None:
        proc = worker.process
        assert isinstance(proc, RayWorker)
        proc.let_go()
        if proc.stopped:
            return
        proc.stopped = True
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._stop, proc.actor, grace, proc.listening)

    def _stop(self, actor: Any, grace: float, listening: bool) -> None:
        ray = self._ray
        if listening:  # else it may never have been placed: stop() would wait for that
            try:
                ray.get(actor.stop.remote(grace), timeout=grace + STOP_SLACK)
            except ray.exceptions.RayError:
                pass  # the actor is gone: its worker saw its stdin close and exited
        # Also ends an actor still starting its worker: the worker sees its stdin close.
        ray.kill(actor, no_restart=True)

    async def release(self, worker: Worker) -> set[int]:
        undelivered: set[int] = set()
        if worker.channel is not None:
            with trio.CancelScope(shield=True):
                undelivered = await worker.channel.aclose()
        return undelivered

    def rss(self, worker: Worker) -> int | None:
        return worker.last_rss  # as the worker's last PONG said

    def died_with_template(self, worker: Worker) -> tuple[str, str] | None:
        return None
