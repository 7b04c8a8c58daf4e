"""Carrier 1 over TCP: what both sides share (proto/snakepit/v1/worker.proto).

The worker's first message is a fresh random nonce; the host answers with
HMAC-SHA256(token, nonce || "snakepit.v1") before its HELLO. The token never crosses the
wire, and a proof is good for one connection only (the nonce is new each time).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import ssl
from typing import Final
from urllib.parse import urlsplit

NONCE_BYTES: Final = 32
PROOF_BYTES: Final = 32
_CONTEXT: Final = b"snakepit.v1"


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def proof(token: bytes, nonce: bytes) -> bytes:
    """What the host sends for ``nonce``: HMAC-SHA256(token, nonce || "snakepit.v1")."""
    return hmac.new(token, nonce + _CONTEXT, hashlib.sha256).digest()


def proof_is_valid(token: bytes, nonce: bytes, given: object) -> bool:
    """Constant-time check of a host's proof (anything not 32 bytes is refused)."""
    if not isinstance(given, bytes) or len(given) != PROOF_BYTES:
        return False
    return hmac.compare_digest(proof(token, nonce), given)


def read_token(path: str) -> bytes:
    """The token in ``path``, without surrounding whitespace.

    Raises:
        ValueError: the file is empty (or only whitespace).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        token = f.read().strip()
    if not token:
        raise ValueError(f"the token file {path} is empty: put a secret of 16 bytes or more in it")
    return token


def parse_tcp_url(url: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (an IPv6 host in brackets) as ``(host, port)``.

    Raises:
        ValueError: not of that form, naming what is wrong.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not tcp://HOST:PORT: {exc}") from None
    if parts.scheme != "tcp":
        raise ValueError(f"{url!r} is not tcp://HOST:PORT: the scheme must be tcp")
    if not parts.hostname or port is None:
        raise ValueError(f"{url!r} is not tcp://HOST:PORT: give both a host and a port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{url!r} is not tcp://HOST:PORT: drop what follows the port")
    return parts.hostname, port


def tune_socket(sock: socket.socket) -> None:
    """No Nagle delay (frames are small and latency-bound); keepalive finds dead peers."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 over its DER bytes, as lowercase hex (what a pin names)."""
    return hashlib.sha256(der).hexdigest()


def pinned_client_context() -> ssl.SSLContext:
    """TLS 1.3 to a worker whose certificate is known by its fingerprint, not by a CA.

    The chain and the name are not checked here: the caller compares the certificate the
    worker presented with the pin right after the handshake, before sending anything.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
