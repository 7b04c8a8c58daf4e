"""A worker listening on TCP (e2e: real worker processes, TLS certificates from trustme).

The client here speaks "Carrier 1 over TCP" by hand (proto/snakepit/v1/worker.proto): TLS,
the worker's nonce, the token proof, HELLO, WELCOME. Refused peers (wrong token, plaintext
to a TLS listener, junk) are logged once each, and the worker keeps serving the others.
Each test runs against the Python worker and the Node.js one: same flags, same messages.
"""

from __future__ import annotations

import os
import pathlib
import ssl
import struct
import subprocess

import msgpack
import pytest
import trio

from snakepit_trio._shared import _frames as w
from snakepit_trio._shared import _samehost, _shm
from snakepit_trio._shared._codec import decode, encode, segment_names
from snakepit_trio._shared._tcp import proof
from tests.helpers import wait_for
from tests.tcp_workers import TOKEN, TLSFiles, tcp_worker, tls_files, token_file, worker_program

TRANSPORT_AGNOSTIC = True
HEADER = struct.Struct("<I")
ADAPTERS = {
    "python": "tests.adapters.basic:Echo",
    "node": os.path.join(os.path.dirname(__file__), "..", "adapters", "contract.mjs"),
}


@pytest.fixture(params=sorted(ADAPTERS))
def runtime(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def adapter(runtime: str) -> str:
    return os.path.normpath(ADAPTERS[runtime]) if runtime != "python" else ADAPTERS[runtime]


def pack(value: object) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return HEADER.pack(len(data)) + data


async def receive_message(stream: trio.abc.Stream) -> object:
    """One length-prefixed message; None when the worker closed the connection first."""
    buffer = b""
    try:
        while True:
            if len(buffer) >= HEADER.size:
                (size,) = HEADER.unpack_from(buffer)
                if len(buffer) >= HEADER.size + size:
                    return msgpack.unpackb(buffer[HEADER.size : HEADER.size + size])
            data = await stream.receive_some(65536)
            if not data:
                return None
            buffer += data
    except trio.BrokenResourceError:
        return None


async def connect(port: int, tls: TLSFiles | None) -> trio.abc.Stream:
    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
    if tls is not None:
        context = ssl.create_default_context(cafile=str(tls.ca))
        stream = trio.SSLStream(stream, context, server_hostname="127.0.0.1")
    return stream


async def hello(
    port: int, tls: TLSFiles | None, token: str = TOKEN, shm: dict[str, object] | None = None
) -> object:
    """Prove ``token``, say HELLO (offering ``shm``); return the worker's answer (None: it
    closed)."""
    stream = await connect(port, tls)
    async with stream:
        nonce = await receive_message(stream)
        assert isinstance(nonce, bytes) and len(nonce) == 32
        await stream.send_all(pack(proof(token.encode(), nonce)) + pack([w.hello(shm=shm)]))
        return await receive_message(stream)


def is_welcome(answer: object) -> bool:
    return isinstance(answer, list) and answer[0][0] == w.WELCOME and "tools" in answer[0][1]


@pytest.mark.parametrize("secure", [True, False], ids=["tls", "plain"])
async def test_a_host_with_the_token_gets_welcome(
    tmp_path: pathlib.Path, secure: bool, runtime: str, adapter: str
) -> None:
    tls = tls_files(tmp_path) if secure else None
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, adapter, tls=tls, runtime=runtime) as worker:
            assert is_welcome(await hello(worker.port, tls))
            assert is_welcome(await hello(worker.port, tls))  # a second host, a fresh nonce
    assert TOKEN not in worker.log()


async def test_wrong_token_is_refused_and_logged_once(
    tmp_path: pathlib.Path, runtime: str, adapter: str
) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, adapter, tls=tls, runtime=runtime) as worker:
            assert await hello(worker.port, tls, token="not-the-token") is None
            assert is_welcome(await hello(worker.port, tls))  # still serving
        log = worker.log()
    assert log.count("refused a connection") == 1, log
    assert "wrong token proof" in log
    assert TOKEN not in log and "not-the-token" not in log


async def test_a_plaintext_client_to_a_tls_worker_is_refused(
    tmp_path: pathlib.Path, runtime: str, adapter: str
) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, adapter, tls=tls, runtime=runtime) as worker:
            stream = await connect(worker.port, None)
            async with stream:
                await stream.send_all(pack([w.hello()]))
                answer = await receive_message(stream)
            # Nothing of the lane reached it: what it got, if anything, is a TLS alert.
            assert answer is None or not isinstance(answer, list), answer
            assert is_welcome(await hello(worker.port, tls))
        log = worker.log()
    assert log.count("refused a connection") == 1, log
    assert "TLS handshake failed" in log


@pytest.mark.parametrize(
    "junk",
    [
        b"\x00\x01\x02\x03" * 64,  # a length far over a proof's
        HEADER.pack(3) + b"\xc1\xc1\xc1",  # not msgpack
        pack("a string, not 32 bytes"),
        pack([w.hello()]),  # HELLO without the proof first
    ],
)
async def test_junk_instead_of_a_proof_is_refused(
    tmp_path: pathlib.Path, junk: bytes, runtime: str, adapter: str
) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, adapter, tls=tls, runtime=runtime) as worker:
            stream = await connect(worker.port, tls)
            async with stream:
                assert isinstance(await receive_message(stream), bytes)  # the nonce
                await stream.send_all(junk)
                assert await receive_message(stream) is None
            assert is_welcome(await hello(worker.port, tls))
        log = worker.log()
    assert log.count("refused a connection") == 1, log


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--listen", "tcp://127.0.0.1:0"], "--listen needs --token-file"),
        (["--listen", "http://127.0.0.1:1", "--token-file", "T"], "the scheme must be tcp"),
        (["--listen", "tcp://127.0.0.1", "--token-file", "T"], "give both a host and a port"),
        (["--listen", "tcp://127.0.0.1:0", "--token-file", "T", "--tls-cert", "C"], "or neither"),
        (["--listen", "tcp://127.0.0.1:0", "--token-file", "EMPTY"], "is empty"),
        (["--socket", "s", "--token-file", "T"], "go with --listen"),
        (
            ["--socket", "s", "--lane", "l", "--listen", "tcp://127.0.0.1:0", "--token-file", "T"],
            "--lane and --listen: give one",
        ),
        (["--socket", "s", "--tls-client-ca", "T"], "go with --listen"),
        (
            ["--listen", "tcp://127.0.0.1:0", "--token-file", "T", "--tls-client-ca", "T"],
            "--tls-client-ca needs --tls-cert and --tls-key",
        ),
        (
            [
                *("--listen", "tcp://127.0.0.1:0", "--token-file", "T"),
                *("--tls-cert", "CERT", "--tls-key", "KEY", "--tls-client-ca", "T"),
            ],
            "--tls-client-ca: cannot load",
        ),
        ([], "give --socket"),
    ],
)
def test_bad_listen_options_say_what_to_change(
    tmp_path: pathlib.Path, arguments: list[str], message: str, runtime: str, adapter: str
) -> None:
    tokens = token_file(tmp_path)
    tls = tls_files(tmp_path)
    (tmp_path / "empty").write_text("\n")
    files = {"T": tokens, "EMPTY": tmp_path / "empty", "CERT": tls.cert, "KEY": tls.key}
    arguments = [str(files[a]) if a in files else a for a in arguments]
    done = subprocess.run(
        [*worker_program(runtime, adapter), "--adapter", adapter, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert TOKEN not in done.stderr + done.stdout


@pytest.mark.skipif(
    not _shm.available() or _samehost.host_id() is None, reason="needs /dev/shm and a host id"
)
async def test_an_offer_of_shared_memory_is_answered_with_the_probes_bytes_or_not_at_all(
    tmp_path: pathlib.Path,
) -> None:
    made = _samehost.offer("tcpworkertest", "w1", 1 << 20)
    assert made is not None
    offer, probe = made
    try:
        with trio.fail_after(60):
            async with tcp_worker(tmp_path, tls=None) as worker:
                cases = [
                    (offer, probe.secret),
                    ({**offer, "host_id": "elsewhere"}, None),  # another host
                    ({**offer, "probe": "snakepit-gone"}, None),  # a probe it cannot open
                    ({**offer, "probe": 3}, None),  # malformed
                    (None, None),  # nothing offered
                ]
                for offered, expected in cases:
                    answer = await hello(worker.port, None, shm=offered)
                    assert is_welcome(answer)
                    assert answer[0][1].get("shm") == expected  # type: ignore[index]
    finally:
        probe.remove()
        _shm.sweep(_shm.prefix("tcpworkertest"))


def segment_exists(name: str) -> bool:
    return os.path.exists(os.path.join(_shm.SHM_DIR, name))


@pytest.mark.skipif(
    not _shm.available() or _samehost.host_id() is None, reason="needs /dev/shm and a host id"
)
async def test_a_connection_that_took_shared_memory_leaves_no_segment_when_it_ends(
    tmp_path: pathlib.Path,
) -> None:
    # A host that goes away without a word (no UNMAPPED_RESULTS, no sweep of its own): the
    # worker removes the segments it made for that connection itself.
    made = _samehost.offer("tcpworkerleft", "w1", 1 << 16)
    assert made is not None
    offer, probe = made
    prefix = str(offer["prefix"])
    blob = os.urandom(1 << 20)
    try:
        with trio.fail_after(60):
            async with tcp_worker(tmp_path, tls=None) as worker:
                stream = await connect(worker.port, None)
                async with stream:
                    nonce = await receive_message(stream)
                    assert isinstance(nonce, bytes)
                    args = encode({"value": blob}, what="args", limit=1 << 24)
                    await stream.send_all(
                        pack(proof(TOKEN.encode(), nonce))
                        + pack([w.hello(shm=offer), w.call(1, "echo", args, None, None, 0)])
                    )
                    frames: list[object] = []
                    while not any(f[0] == w.RESULT for f in frames):  # type: ignore[index]
                        message = await receive_message(stream)
                        assert isinstance(message, list), message
                        frames += message
                    [result] = [f for f in frames if f[0] == w.RESULT]  # type: ignore[index]
                    [name] = segment_names(result[2])  # type: ignore[index]
                    assert name.startswith(prefix) and segment_exists(name)
                    assert decode(result[2], what="result") == blob  # type: ignore[index]
                await wait_for(lambda: not segment_exists(name), timeout=30)
                assert is_welcome(await hello(worker.port, None))  # and serves on
    finally:
        probe.remove()
        _shm.sweep(_shm.prefix("tcpworkerleft"))
