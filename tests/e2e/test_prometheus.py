"""End-to-end (real workers): the Prometheus endpoint, scraped over the loopback and parsed
with prometheus_client's own parser."""

from __future__ import annotations

import errno
import functools

import pytest
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import snakepit_trio as sp
from snakepit_trio.contrib.prometheus import PoolCollector, serve

TRANSPORT_AGNOSTIC = True  # see conftest.py: this is about the endpoint, not the transport
TELEMETRY = "tests.adapters.telemetry:Telemetry"


async def get(
    port: int, path: str = "/metrics", method: str = "GET", accept: str = ""
) -> tuple[int, dict[str, str], bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        extra = f"Accept: {accept}\r\n" if accept else ""
        await stream.send_all(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_a_scrape_reads_the_pool_now() -> None:
    registry = CollectorRegistry()
    with trio.fail_after(60):
        async with (
            sp.open_pool(TELEMETRY, size=2, name="scraped") as pool,
            trio.open_nursery() as nursery,
        ):
            PoolCollector(pool, registry=registry)
            port = await nursery.start(functools.partial(serve, 0, registry))
            for i in range(3):
                await pool.execute("infer", {"tokens": i})
            status, headers, body = await get(port)
            assert status == 200 and headers["content-type"].startswith("text/plain")
            families = {f.name: f for f in text_string_to_metric_families(body.decode())}
            open_metrics = await get(port, accept="application/openmetrics-text; version=1.0.0")
            assert open_metrics[1]["content-type"].startswith("application/openmetrics-text")
            assert open_metrics[2].rstrip().endswith(b"# EOF")
            assert (await get(port, "/nothing"))[0] == 404
            status, headers, _ = await get(port, method="POST")
            assert status == 405 and headers["allow"] == "GET, HEAD"
            status, headers, body_of_head = await get(port, method="HEAD")
            assert status == 200 and body_of_head == b"" and int(headers["content-length"]) > 0
            nursery.cancel_scope.cancel()
    workers = {s.labels["state"]: s.value for s in families["snakepit_workers"].samples}
    assert workers == {"available": 2, "busy": 0}
    [requests] = families["snakepit_requests"].samples
    assert requests.labels == {"pool": "scraped"} and requests.value == 3
    counts = [
        s for s in families["snakepit_call_duration_seconds"].samples if s.name.endswith("_count")
    ]
    assert [(s.labels["tool"], s.labels["outcome"], s.value) for s in counts] == [
        ("infer", "ok", 3)
    ]


async def test_serve_reports_a_port_it_cannot_take() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve, 0)
        with pytest.raises(OSError) as info:
            await nursery.start(serve, port)
        assert info.value.errno == errno.EADDRINUSE
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("port", "error"), [(-1, ValueError), (70000, ValueError), ("80", TypeError)]
)
async def test_serve_checks_its_port(port: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="port must be a whole number from 0 to 65535"):
        await serve(port)  # type: ignore[arg-type]
