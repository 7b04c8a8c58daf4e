"""The TCP carrier's token proof and endpoint parsing (core: pure functions, no I/O)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from snakepit_trio._shared import _tcp


def test_the_proof_is_the_hmac_the_protocol_names() -> None:
    nonce = bytes(range(32))
    expected = hmac.new(b"tok", nonce + b"snakepit.v1", hashlib.sha256).digest()
    assert _tcp.proof(b"tok", nonce) == expected
    assert _tcp.proof_is_valid(b"tok", nonce, expected)


@pytest.mark.parametrize("given", [b"", b"x" * 32, b"x" * 64, "text", None, 32])
def test_anything_else_is_not_a_proof(given: object) -> None:
    assert not _tcp.proof_is_valid(b"tok", bytes(32), given)


def test_a_proof_is_for_one_nonce() -> None:
    assert not _tcp.proof_is_valid(b"tok", bytes(32), _tcp.proof(b"tok", bytes(31) + b"\x01"))
    assert _tcp.new_nonce() != _tcp.new_nonce()


@pytest.mark.parametrize(
    ("url", "expected"),
    [("tcp://127.0.0.1:7100", ("127.0.0.1", 7100)), ("tcp://[::1]:0", ("::1", 0))],
)
def test_tcp_urls(url: str, expected: tuple[str, int]) -> None:
    assert _tcp.parse_tcp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://h:1", "the scheme must be tcp"),
        ("tcp://h", "give both a host and a port"),
        ("tcp://:1", "give both a host and a port"),
        ("tcp://h:99999", "out of range"),
        ("tcp://h:1/path", "drop what follows the port"),
    ],
)
def test_bad_tcp_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _tcp.parse_tcp_url(url)
