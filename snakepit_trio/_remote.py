"""Workers on other hosts: the ``endpoints``, ``token`` and ``tls`` options, checked.

A pool given ``endpoints`` connects to workers someone else started
(``python -m snakepit_trio.worker --listen tcp://HOST:PORT --token-file F``) over
"Carrier 1 over TCP" (proto/snakepit/v1/worker.proto): the local lane's framing, in TLS when
``tls`` is given, after proving ``token``. The host does not own those processes.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

import attrs

from ._core import _checks as checks
from ._shared._tcp import parse_tcp_url

__all__ = ["TLSConfig"]


def _file_or_none(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"TLSConfig.{attribute.name} must be a file path or None; got "
            f"{checks.shown(value)} ({checks.a_type(value)})"
        )


def _str_or_none(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"TLSConfig.{attribute.name} must be a str or None; got {checks.a_type(value)}"
        )


@attrs.frozen(kw_only=True)
class TLSConfig:
    """TLS for a pool's ``endpoints``: whom to trust, and how the host shows itself.

    Attributes:
        ca: PEM file of the certificate authorities that signed the workers' certificates.
            None: the system's default trust store.
        cert: PEM certificate chain the host presents to workers that ask for one, or None.
        key: the private key of ``cert`` (with ``cert`` only).
        server_hostname: the name the workers' certificates must carry. None: each
            endpoint's own host (an IP address then must be in the certificate).
    """

    ca: str | None = attrs.field(default=None, validator=_file_or_none)
    cert: str | None = attrs.field(default=None, validator=_file_or_none)
    key: str | None = attrs.field(default=None, validator=_file_or_none)
    server_hostname: str | None = attrs.field(default=None, validator=_str_or_none)

    def __attrs_post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError(
                "TLSConfig needs both cert and key (a client certificate) or neither; "
                f"got cert={self.cert!r}, key={self.key!r}"
            )

    def context(self) -> ssl.SSLContext:
        """The client context: TLS 1.3 at least, certificates and host names checked.

        Returns:
            A new ``ssl.SSLContext`` for connecting to workers.

        Raises:
            ValueError: a file that cannot be read or is not PEM of the right kind (the
                message names the field and the file).
        """
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        if self.ca is not None:
            try:
                context.load_verify_locations(cafile=os.fspath(self.ca))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"TLSConfig.ca={self.ca!r} cannot be loaded: {exc}") from None
        if self.cert is not None:
            try:
                context.load_cert_chain(os.fspath(self.cert), self.key)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"TLSConfig.cert={self.cert!r} / key={self.key!r} cannot be loaded: {exc}"
                ) from None
        return context


def endpoints(value: Sequence[str] | None) -> tuple[str, ...]:
    """The ``endpoints`` option as a tuple, each ``tcp://HOST:PORT`` checked.

    Raises:
        TypeError: not a list of str.
        ValueError: an entry that is not ``tcp://HOST:PORT`` (named), or a repeated one.
    """
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"endpoints must be a list of 'tcp://HOST:PORT' strings; got {checks.shown(value)}"
        )
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"endpoints entries must be str; got {checks.shown(item)}")
        try:
            parse_tcp_url(item)
        except ValueError as exc:
            raise ValueError(f"endpoints: {exc}") from None
    if len(set(value)) != len(value):
        raise ValueError(f"endpoints lists one worker twice: {list(value)!r}")
    return tuple(value)


def token(value: str | bytes | None) -> bytes | None:
    """The ``token`` option as bytes (surrounding whitespace stripped, as from a file).

    Raises:
        TypeError: not str or bytes.
        ValueError: empty.
    """
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        raise TypeError(f"token must be str or bytes; got {checks.a_type(value)}")
    data = (value.encode() if isinstance(value, str) else bytes(value)).strip()
    if not data:
        raise ValueError("token is empty: give the secret the workers' --token-file holds")
    return data


def tls(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, TLSConfig):
        raise TypeError(
            f"tls must be a snakepit_trio.TLSConfig(ca=..., ...) or None (plain TCP); got "
            f"{checks.shown(value)} ({checks.a_type(value)})"
        )


@runtime_checkable
class WorkerLauncher(Protocol):
    """What ``open_pool(launcher=...)`` takes: places workers elsewhere
    (``snakepit_trio.contrib.ray.RayLauncher``).

    ``open_launcher(config)`` is entered once per pool; it yields what makes the pool's
    launcher (``_supervision/_launcher.py``'s protocol) from the engine's nursery, and
    releases what it holds on exit, after every worker has stopped.
    """

    def open_launcher(self, config: Any) -> AbstractAsyncContextManager[Callable[[Any], Any]]: ...


def launcher(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, WorkerLauncher):
        raise TypeError(
            "launcher must be a launcher such as snakepit_trio.contrib.ray.RayLauncher(...), "
            f"or None (local processes); got {checks.shown(value)} ({checks.a_type(value)})"
        )
