"""A worker known by its certificate's SHA-256 (RayLauncher's way): the host checks the pin
right after the TLS handshake, before it proves the token or says HELLO."""

from __future__ import annotations

import hashlib
import pathlib

import trio

from snakepit_trio._shared._tcp import pinned_client_context
from snakepit_trio._transport._errors import TransportError
from snakepit_trio._transport._lane import LaneChannel, TcpTarget
from tests.tcp_workers import TOKEN, tcp_worker, tls_files


def fingerprint_of(pem_chain: pathlib.Path) -> str:
    import ssl

    leaf = pem_chain.read_text().split("-----END CERTIFICATE-----")[0] + (
        "-----END CERTIFICATE-----\n"
    )
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf)).hexdigest()


TRANSPORT_AGNOSTIC = True  # the TCP carrier is its subject


async def open_lane(port: int, pin: str) -> object:
    """The worker's description, or the TransportError that refused it."""
    target = TcpTarget(f"tcp://127.0.0.1:{port}", TOKEN.encode(), pinned_client_context(), pin=pin)
    channel = LaneChannel("", lambda frames: None, lambda why: None, 1 << 20, tcp=target)
    async with trio.open_nursery() as nursery:
        try:
            described: object = await channel.open(nursery, timeout=30)
        except TransportError as exc:
            return exc
        nursery.cancel_scope.cancel()  # stop its pumps; then close the connection
    await channel.aclose()
    return described


async def test_the_pinned_certificate_is_accepted(tmp_path: pathlib.Path) -> None:
    tls = tls_files(tmp_path)
    async with tcp_worker(tmp_path, tls=tls) as worker:
        described = await open_lane(worker.port, fingerprint_of(tls.cert))
        assert described.pid == worker.process.pid  # type: ignore[attr-defined]


async def test_another_certificate_is_refused_before_the_token_is_proved(
    tmp_path: pathlib.Path,
) -> None:
    tls = tls_files(tmp_path)
    async with tcp_worker(tmp_path, tls=tls) as worker:
        refused = await open_lane(worker.port, "0" * 64)
        assert isinstance(refused, TransportError)
        assert f"SHA-256 {fingerprint_of(tls.cert)}, not the {'0' * 64}" in str(refused)
        # It serves the right host afterwards.
        described = await open_lane(worker.port, fingerprint_of(tls.cert))
        assert described.pid == worker.process.pid  # type: ignore[attr-defined]
