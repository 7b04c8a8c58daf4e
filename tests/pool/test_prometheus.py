"""Pool layer: the Prometheus collector over pools in memory (serving it over HTTP is tested
end to end, with real sockets)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import snakepit_trio as sp
from snakepit_trio.contrib.prometheus import PoolCollector
from snakepit_trio.testing import open_fake_pool
from tests.adapters.telemetry import Telemetry

Clock = trio.testing.MockClock


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_stats_are_read_at_scrape_time_and_calls_fill_histograms(
    autojump_clock: Clock,
) -> None:
    registry = CollectorRegistry()
    async with open_fake_pool(Telemetry, size=2, name="p") as pool:
        collector = PoolCollector(pool, registry=registry, buckets=[0.5, 2, 10])
        await pool.execute("asleep", {"seconds": 1})
        await pool.execute("asleep", {"seconds": 5})
        with pytest.raises(sp.RemoteError):
            await pool.execute("spanned", {"fail": True})
        got = samples(registry)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "asleep", {"seconds": 60})
            await trio.testing.wait_all_tasks_blocked()
            busy = samples(registry)  # read now: one worker busy
            nursery.cancel_scope.cancel()
        assert collector.remove(pool) is True and collector.remove(pool) is False
        assert pool.telemetry.handlers == []
    p = (("pool", "p"),)
    assert got[("snakepit_workers", (("pool", "p"), ("state", "available")))] == 2
    assert busy[("snakepit_workers", (("pool", "p"), ("state", "busy")))] == 1
    assert busy[("snakepit_in_flight_calls", p)] == 1
    assert got[("snakepit_requests_total", p)] == 3
    assert got[("snakepit_errors_total", p)] == 1
    assert got[("snakepit_healthy", p)] == 1
    ok = (("outcome", "ok"), ("pool", "p"), ("tool", "asleep"))
    assert got[("snakepit_call_duration_seconds_count", ok)] == 2
    assert got[("snakepit_call_duration_seconds_sum", ok)] == 6
    assert got[("snakepit_call_duration_seconds_bucket", (("le", "2.0"), *ok))] == 1
    assert got[("snakepit_call_duration_seconds_bucket", (("le", "+Inf"), *ok))] == 2
    remote = (("outcome", "remote"), ("pool", "p"), ("tool", "spanned"))
    assert got[("snakepit_call_duration_seconds_count", remote)] == 1
    wait = (("pool", "p"), ("tool", "asleep"))
    assert got[("snakepit_queue_wait_seconds_count", wait)] == 2
    # Nothing per call or per session among the labels.
    assert {k for key in got for k, _ in key[1]} <= {"pool", "state", "tool", "outcome", "le"}


async def test_one_collector_reports_several_pools(autojump_clock: Clock) -> None:
    registry = CollectorRegistry()
    async with (
        open_fake_pool(Telemetry, size=1, name="a") as a,
        open_fake_pool(Telemetry, size=1, name="b") as b,
    ):
        collector = PoolCollector(a, registry=registry)
        collector.add(b)
        with pytest.raises(ValueError, match="'b' is reported by this collector already"):
            collector.add(b)
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            PoolCollector(b, registry=registry)  # a second collector: add to the first
        got = samples(registry)
    assert got[("snakepit_requests_total", (("pool", "a"),))] == 0
    assert got[("snakepit_requests_total", (("pool", "b"),))] == 0


@pytest.mark.parametrize(
    ("buckets", "error", "message"),
    [
        ([1, 0.5], ValueError, "buckets must be increasing"),
        ([], ValueError, "buckets must be increasing"),
        (["1"], TypeError, r"buckets\[0\] must be a number"),
        ([float("nan")], ValueError, r"buckets\[0\] must be a number"),
    ],
)
async def test_buckets_are_checked(
    autojump_clock: Clock, buckets: list[object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PoolCollector(buckets=buckets)  # type: ignore[arg-type]


async def test_only_pools_are_collected(autojump_clock: Clock) -> None:
    with pytest.raises(TypeError, match=r"pool must be a snakepit_trio\.Pool"):
        PoolCollector("pool")  # type: ignore[arg-type]
