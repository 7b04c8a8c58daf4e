"""End-to-end (real workers, both transports): datetime, date, timedelta, Decimal and UUID
travel to a worker and back exactly (an aware datetime as its instant, in UTC); a malformed
payload of their codes, either way, is a SerializationError naming the type, and the worker
lives on.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
import zoneinfo
from typing import Any

import msgpack
import pytest
import trio

import snakepit_trio as sp

PAYLOADS = "tests.adapters.payloads:Payloads"

EVERYDAY: dict[str, Any] = {
    "naive": datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "aware": datetime.datetime(2024, 7, 1, 9, 30, 0, 5, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo")),
    "date": datetime.date(1, 1, 1),
    "timedelta": datetime.timedelta(days=-3, seconds=7, microseconds=1),
    "decimal": decimal.Decimal("-0.0050"),
    "nan": decimal.Decimal("sNaN7"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}
# As the worker sees them: the aware datetime in UTC, the rest exactly as sent.
IN_THE_WORKER = {
    "naive": "datetime.datetime(2024, 2, 29, 23, 59, 59, 999999)",
    "aware": "datetime.datetime(2024, 7, 1, 0, 30, 0, 5, tzinfo=datetime.timezone.utc)",
    "date": "datetime.date(1, 1, 1)",
    "timedelta": "datetime.timedelta(days=-3, seconds=7, microseconds=1)",
    "decimal": "Decimal('-0.0050')",
    "nan": "Decimal('sNaN7')",
    "uuid": "UUID('12345678-1234-5678-1234-567812345678')",
}


async def test_everyday_values_travel_to_a_worker_and_back() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(PAYLOADS, size=1, registry=False) as pool:
            assert await pool.execute("reprs", {"value": EVERYDAY}) == IN_THE_WORKER
            back = await pool.execute("echo", {"value": {"all": EVERYDAY, "keys": _keyed()}})
            assert {k: repr(v) for k, v in back["all"].items()} == IN_THE_WORKER
            assert back["all"]["aware"] == EVERYDAY["aware"]  # the same instant
            assert back["keys"] == _keyed()
            async with pool.stream("make_chunks", {"name": "time"}) as stream:
                with pytest.raises(sp.SerializationError, match="an object of type 'time'"):
                    [chunk async for chunk in stream]


def _keyed() -> dict[Any, str]:
    return {datetime.date(2024, 1, 1): "day", (uuid.UUID(int=1), datetime.timedelta(1)): "pair"}


MALFORMED = [
    (10, b"short", "a UUID (extension 10) must be 16 bytes, got 5"),
    (6, b"2024-01-02 03:04:05", "a naive datetime (extension 6) must be 'YYYY-MM-DDTHH:MM:SS"),
    (7, b"2024-02-30", "a date (extension 7): '2024-02-30' is not a date"),
    (8, msgpack.packb([1, 2]), "a timedelta (extension 8) must be msgpack [days, seconds"),
    (9, b"1_000", "a Decimal (extension 9) must be UTF-8 str(Decimal)"),
    (30, b"", "extension code 30 is reserved for snakepit_trio"),
]


async def test_a_malformed_payload_is_a_serialization_error_both_ways() -> None:
    with trio.fail_after(90):
        async with sp.open_pool(PAYLOADS, size=1, registry=False) as pool:
            [worker] = pool.workers()
            for code, payload, message in MALFORMED:
                # To the worker: it cannot decode the arguments, and says so.
                with pytest.raises(sp.SerializationError) as sent:
                    await pool.execute("echo", {"value": msgpack.ExtType(code, payload)})
                assert "cannot decode arguments of 'echo': " in str(sent.value)
                assert message in str(sent.value)
                # From the worker: the host cannot decode the result, or a chunk.
                args = {"code": code, "payload": payload}
                with pytest.raises(sp.SerializationError) as got:
                    await pool.execute("raw_ext", args)
                assert str(got.value).startswith("cannot decode result of 'raw_ext': ")
                assert message in str(got.value)
                chunks: list[Any] = []
                with pytest.raises(sp.SerializationError, match="cannot decode"):
                    async with pool.stream("raw_ext_chunks", args) as stream:
                        async for chunk in stream:
                            chunks.append(chunk)
                assert chunks == [1]
            assert [w.pid for w in pool.workers()] == [worker.pid]
            assert pool.stats().crashes == 0
            assert await pool.execute("echo", {"value": EVERYDAY["uuid"]}) == EVERYDAY["uuid"]
