"""open_pool's endpoints, token and tls options: typed errors before any connection."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import snakepit_trio as sp

ECHO = "tests.adapters.basic:Echo"
ONE = ["tcp://127.0.0.1:7100"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"endpoints": ["127.0.0.1:7100"], "token": "t"}, ValueError, "scheme must be tcp"),
        ({"endpoints": ["tcp://h"], "token": "t"}, ValueError, "give both a host and a port"),
        ({"endpoints": "tcp://h:1", "token": "t"}, TypeError, "list of 'tcp://HOST:PORT'"),
        ({"endpoints": [*ONE, *ONE], "token": "t"}, ValueError, "one worker twice"),
        ({"endpoints": ONE}, ValueError, "endpoints need token="),
        ({"endpoints": ONE, "token": "  "}, ValueError, "token is empty"),
        ({"endpoints": ONE, "token": 7}, TypeError, "token must be str or bytes"),
        ({"endpoints": ONE, "token": "t", "size": 3}, ValueError, "leave size out"),
        ({"token": "t"}, ValueError, "give endpoints"),
        ({"endpoints": ONE, "token": "t", "tls": "ca.pem"}, TypeError, "TLSConfig"),
    ],
)
async def test_bad_endpoint_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        async with sp.open_pool(ECHO, **options):
            pass


def test_the_token_is_not_in_the_config_repr() -> None:
    config = sp.PoolConfig(adapter=ECHO, endpoints=ONE, size=1, token="s3cret-token")
    assert config.token == b"s3cret-token"
    assert "s3cret" not in repr(config)
    assert sp.PoolConfig.build(ECHO, None, {"endpoints": ONE, "token": "x"}).size == 1


async def test_tls_files_that_cannot_be_loaded_are_named(tmp_path: pathlib.Path) -> None:
    missing = str(tmp_path / "missing-ca.pem")
    with pytest.raises(ValueError, match=r"TLSConfig.ca=.*missing-ca.pem"):
        async with sp.open_pool(ECHO, endpoints=ONE, token="t", tls=sp.TLSConfig(ca=missing)):
            pass
    with pytest.raises(ValueError, match="both cert and key"):
        sp.TLSConfig(cert="c.pem")
    with pytest.raises(TypeError, match=r"TLSConfig\.ca must be a file path"):
        sp.TLSConfig(ca=3)  # type: ignore[arg-type]
