"""A pool of endpoints: workers started by the test on 127.0.0.1, reached over TCP and TLS.

e2e: real worker processes (``tests/tcp_workers.py``), certificates from trustme. The pool
owns none of them: a worker the test kills is a crash of cause "disconnected", and the slot
reconnects once the test starts a worker on the same port again.
"""

from __future__ import annotations

import pathlib

import attrs
import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for
from tests.tcp_workers import TOKEN, tcp_worker, tls_files

TRANSPORT_AGNOSTIC = True
NODE_CONTRACT = str(pathlib.Path(__file__).parents[1] / "adapters" / "contract.mjs")
ECHO = "tests.adapters.basic:Echo"


async def test_calls_streams_and_cancellation_over_tls(tmp_path: pathlib.Path) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(60):
        async with (
            tcp_worker(tmp_path, tls=tls) as one,
            tcp_worker(tmp_path, tls=tls) as two,
            sp.open_pool(
                ECHO,
                endpoints=[one.endpoint, two.endpoint],
                token=TOKEN,
                tls=sp.TLSConfig(ca=str(tls.ca)),
            ) as pool,
        ):
            assert pool.config.size == 2
            assert {w.pid for w in pool.workers()} == {one.process.pid, two.process.pid}
            assert await pool.execute("add", {"a": 1, "b": 2}) == 3
            async with pool.stream("count", {"n": 5}) as chunks:
                assert [c async for c in chunks] == [0, 1, 2, 3, 4]
            with trio.move_on_after(0.5) as scope:
                await pool.execute("asleep", {"seconds": 30})
            assert scope.cancelled_caught
            # Both workers still serve: two calls at once take both.
            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(pool.execute, "asleep", {"seconds": 0.2})
            assert await pool.execute("echo", {"value": b"x" * 200_000}) == b"x" * 200_000
    assert TOKEN not in one.log() + two.log()


async def test_a_killed_worker_is_disconnected_then_reconnected(tmp_path: pathlib.Path) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(90):
        async with tcp_worker(tmp_path, tls=tls) as first:
            port = first.port
            async with sp.open_pool(
                ECHO,
                endpoints=[first.endpoint],
                token=TOKEN,
                tls=sp.TLSConfig(ca=str(tls.ca), server_hostname="localhost"),
            ) as pool:
                session = await pool.open_session()  # strict: bound to this worker
                assert await session.execute("add", {"a": 1}) == 2
                failures: list[BaseException] = []

                async def call() -> None:
                    try:
                        await pool.execute("asleep", {"seconds": 60})
                    except sp.WorkerCrashed as exc:
                        failures.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call)
                    await wait_for(lambda: pool.workers()[0].in_flight == 1)
                    first.process.kill()
                (crash,) = failures
                assert isinstance(crash, sp.WorkerCrashed)
                assert crash.cause == "disconnected"
                assert crash.running == ("asleep",)
                assert crash.exit_code is None and crash.signal is None
                assert " was lost while running 'asleep'" in str(crash)
                with pytest.raises(sp.SessionLost):
                    await session.execute("add", {"a": 1})
                async with tcp_worker(tmp_path, tls=tls, port=port) as second:
                    await wait_for(
                        lambda: [w.pid for w in pool.workers()] == [second.process.pid],
                        timeout=30,
                    )
                    assert await pool.execute("pid") == second.process.pid


async def test_a_wrong_token_fails_open_pool_naming_it(tmp_path: pathlib.Path) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, tls=tls) as worker:
            with pytest.raises(sp.WorkerStartError, match="refused the token"):
                async with sp.open_pool(
                    ECHO,
                    endpoints=[worker.endpoint],
                    token="not-" + TOKEN,
                    tls=sp.TLSConfig(ca=str(tls.ca)),
                ):
                    pass
    assert "wrong token proof" in worker.log()


async def test_an_untrusted_certificate_fails_open_pool(tmp_path: pathlib.Path) -> None:
    tls = tls_files(tmp_path)
    other = tls_files(tmp_path / "other") if (tmp_path / "other").mkdir() is None else None
    assert other is not None
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, tls=tls) as worker:
            with pytest.raises(sp.WorkerStartError, match="CERTIFICATE_VERIFY_FAILED"):
                async with sp.open_pool(
                    ECHO,
                    endpoints=[worker.endpoint],
                    token=TOKEN,
                    tls=sp.TLSConfig(ca=str(other.ca)),
                ):
                    pass
    assert "TLS handshake failed" in worker.log()


@pytest.mark.parametrize("runtime", ["python", "node"])
@pytest.mark.parametrize("presented", ["no certificate", "another CA's"])
async def test_mutual_tls_refuses_a_host_without_a_certificate_of_its_ca(
    tmp_path: pathlib.Path, presented: str, runtime: str
) -> None:
    adapter = ECHO if runtime == "python" else NODE_CONTRACT
    tls = tls_files(tmp_path)
    hosts = tls_files(tmp_path, "host")  # the CA the worker trusts for clients, and a host
    stranger = tls_files(tmp_path, "stranger")  # same shape, signed by a CA it does not trust
    refused = sp.TLSConfig(ca=str(tls.ca))
    if presented == "another CA's":
        refused = attrs.evolve(refused, cert=str(stranger.cert), key=str(stranger.key))
    mutual = ["--tls-client-ca", str(hosts.ca)]
    with trio.fail_after(90):
        async with tcp_worker(tmp_path, adapter, tls=tls, extra=mutual, runtime=runtime) as worker:
            endpoints = [worker.endpoint]
            options = {"endpoints": endpoints, "token": TOKEN, "runtime": runtime}
            with pytest.raises(sp.WorkerStartError, match="refused this host's TLS client"):
                async with sp.open_pool(adapter, tls=refused, **options):
                    pass
            # The worker keeps serving: a host with a certificate of its CA gets in.
            good = sp.TLSConfig(ca=str(tls.ca), cert=str(hosts.cert), key=str(hosts.key))
            async with sp.open_pool(adapter, tls=good, **options) as pool:
                assert await pool.execute("add", {"a": 1, "b": 2}) == 3
        log = worker.log()
    assert log.count("refused a connection") == 1, log
    # OpenSSL's words, as each runtime reports them.
    reasons = (
        ("PEER_DID_NOT_RETURN",)
        if presented == "no certificate"
        else ("CERTIFICATE_VERIFY_FAILED", "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    )
    assert any(r in log.upper().replace(" ", "_") for r in reasons), log
