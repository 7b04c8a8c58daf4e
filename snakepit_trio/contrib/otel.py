"""OpenTelemetry traces and metrics for a pool (extra ``otel``).

``open_pool(..., tracing=True)`` does the same with the global providers. What is traced and
measured, and the names used, are in ``snakepit_trio/telemetry/_otel.py`` and the README's
"Observability" section. Workers trace their side of each sampled call when OpenTelemetry
is importable there (see ``snakepit_trio/worker/_tracing.py``).
"""

from __future__ import annotations

from typing import Any

try:
    from ..telemetry._otel import Traced, install
except ImportError as exc:  # pragma: no cover - the extra is installed where this is tested
    raise ImportError(
        f"snakepit_trio.contrib.otel needs OpenTelemetry ({exc}); install it with "
        "pip install 'snakepit_trio[otel]'"
    ) from exc

from .._pool import Pool
from .._public import NoPublicConstructor

__all__ = ["Instrumentation", "instrument"]


class Instrumentation(metaclass=NoPublicConstructor):
    """What ``instrument`` installed on a pool; ``close()`` (or leaving ``with``) removes it.

    It has no public constructor.
    """

    __slots__ = ("_traced",)

    def __init__(self, traced: Traced) -> None:
        self._traced = traced

    def close(self) -> None:
        """Stop tracing the pool's calls and recording its metrics (instruments already
        created stay registered with the meter provider, and report nothing more).

        Raises:
            Nothing; closing twice does nothing.
        """
        self._traced.close()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._traced.closed else "open"
        return f"<Instrumentation {self._traced.hub.pool!r} {state}>"


def instrument(
    pool: Pool,
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    metrics: bool = True,
) -> Instrumentation:
    """Trace every call of ``pool`` from now on, and record its metrics.

    Args:
        pool: an open pool (from ``open_pool`` or ``open_fake_pool``).
        tracer_provider: where its spans go (default: the global one).
        meter_provider: where its metrics go (default: the global one).
        metrics: record metrics too (False: traces only).

    Returns:
        The ``Instrumentation``, to ``close()`` it (closing the pool needs no closing).

    Raises:
        TypeError: ``pool`` is not a Pool, or ``metrics`` not a bool.
        ValueError: the pool is traced already (``tracing=True``, or an earlier
            ``instrument`` not closed).
    """
    if not isinstance(pool, Pool):
        raise TypeError(f"pool must be a snakepit_trio.Pool; got {type(pool).__name__}")
    if not isinstance(metrics, bool):
        raise TypeError(f"metrics must be True or False; got {metrics!r}")
    engine = pool._engine
    traced = install(
        engine.telemetry,
        pool.stats,
        engine.terminated.is_set,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        with_metrics=metrics,
    )
    return Instrumentation._create(traced)
