"""Network namespaces for partition tests: each test gets namespaces of its own, linked to
the root namespace by a veth pair, with workers started inside by ``ip netns exec``.

Needs root and iproute2; elsewhere ``make_namespace`` skips the test, naming the command that
failed and what it said. Everything is named after this process (``spt-<pid>-N``), addressed
in 10.213.X.0/24 with an X no route on this machine uses yet, and removed at teardown, also
when the test fails. An ``unreachable`` route for the same /24 (a high metric, under the
link's own) keeps packets for a namespace whose link is down from leaving by the default
route: traffic only ever goes to the addresses the test made.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trustme

from tests.tcp_workers import TOKEN, listening, token_file

PORT = 7100  # each namespace has its own ports: a fixed one lets a worker restart on it
FALLBACK_METRIC = 4242


@attrs.frozen
class Namespace:
    name: str  # spt-<pid>-<n>
    root_link: str  # the root side of its veth pair (the partition switch)
    host_ip: str  # the root side's address
    worker_ip: str  # the namespace side's address
    subnet: str

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.worker_ip}:{PORT}"

    def link(self, up: bool) -> None:
        """Take the link between the root namespace and this one up or down."""
        ip("link", "set", self.root_link, "up" if up else "down")


@attrs.frozen
class NsWorker:
    process: trio.Process
    namespace: Namespace
    stderr: pathlib.Path

    def log(self) -> str:
        return self.stderr.read_text()


def ip(*args: str, namespace: str | None = None) -> None:
    """Run one ``ip`` command (inside ``namespace`` if given); raise naming it on failure."""
    command = ["ip", *(("netns", "exec", namespace, "ip") if namespace else ()), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise CommandFailed(" ".join(command), done.stderr.strip())


class CommandFailed(Exception):
    def __init__(self, command: str, stderr: str) -> None:
        super().__init__(f"`{command}` failed: {stderr or '(no output)'}")
        self.command = command
        self.stderr = stderr


def _free_subnet(taken: set[int]) -> int:
    """An X such that 10.213.X.0/24 is in no route of this machine (nor of this test)."""
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=False
    ).stdout
    used = set(taken)
    for word in routes.split():
        try:
            network = ipaddress.ip_network(word, strict=False)
        except ValueError:
            continue
        if network.overlaps(ipaddress.ip_network("10.213.0.0/16")):
            used.update(x for x in range(256) if network.overlaps(_subnet(x)))
    start = os.getpid() % 200 + 20
    for n in [*range(start, 250), *range(20, start)]:
        if n not in used:
            return int(n)
    raise RuntimeError("no free 10.213.X.0/24 subnet for a test namespace")


def _subnet(n: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.213.{n}.0/24")


def _can_make_namespaces() -> None:
    """Skip the test (here, in a fixture's setup, where pytest shows the reason) unless
    this process can add a network namespace, run a program in it and make a veth pair:
    root, iproute2 and a kernel (or container) that allows them."""
    name = f"spt-{os.getpid()}-probe"
    try:
        ip("netns", "add", name)
    except FileNotFoundError:
        pytest.skip("network namespace tests need iproute2: `ip` is not installed")
    except CommandFailed as exc:
        pytest.skip(f"network namespace tests need root and iproute2: {exc}")
    try:
        ip("link", "set", "lo", "up", namespace=name)
        ip("link", "add", "probe0", "type", "veth", "peer", "name", "probe1", namespace=name)
    except CommandFailed as exc:
        pytest.skip(f"network namespace tests need `ip netns exec` and veth links: {exc}")
    finally:
        ip("netns", "del", name)  # the probe's links go with it


@pytest.fixture
def make_namespace() -> Iterator[Callable[[], Namespace]]:
    """Yields a function that creates one namespace, linked to this one; all are deleted
    at teardown (their links and routes with them)."""
    _can_make_namespaces()
    made: list[Namespace] = []
    undo: list[Sequence[str]] = []
    taken: set[int] = set()

    def create() -> Namespace:
        index = len(made) + 1
        name = f"spt-{os.getpid()}-{index}"
        ip("netns", "add", name)
        undo.append(("netns", "del", name))
        n = _free_subnet(taken)
        taken.add(n)
        net = _subnet(n)
        root_link, inner = f"spt{os.getpid()}r{index}", f"spt{os.getpid()}n{index}"
        namespace = Namespace(name, root_link, f"10.213.{n}.1", f"10.213.{n}.2", str(net))
        ip("link", "add", root_link, "type", "veth", "peer", "name", inner)
        undo.append(("link", "del", root_link))
        ip("route", "add", "unreachable", str(net), "metric", str(FALLBACK_METRIC))
        undo.append(("route", "del", "unreachable", str(net), "metric", str(FALLBACK_METRIC)))
        ip("link", "set", inner, "netns", name)
        ip("addr", "add", f"{namespace.host_ip}/24", "dev", root_link)
        ip("link", "set", root_link, "up")
        ip("link", "set", "lo", "up", namespace=name)
        ip("addr", "add", f"{namespace.worker_ip}/24", "dev", inner, namespace=name)
        ip("link", "set", inner, "up", namespace=name)
        made.append(namespace)
        return namespace

    try:
        yield create
    finally:
        failures = []
        for command in reversed(undo):
            try:
                ip(*command)
            except CommandFailed as exc:
                if "del" in command and "link" in command and "Cannot find" in exc.stderr:
                    continue  # the pair went with its namespace
                failures.append(str(exc))
        assert not failures, f"could not remove what the test made: {failures}"


@attrs.frozen
class Certificates:
    ca: pathlib.Path
    authority: trustme.CA
    folder: pathlib.Path

    def for_ip(self, address: str) -> tuple[pathlib.Path, pathlib.Path]:
        """A certificate chain and key for a worker at ``address``."""
        issued = self.authority.issue_cert(address)
        cert, key = self.folder / f"{address}.pem", self.folder / f"{address}.key"
        issued.private_key_pem.write_to_path(str(key))
        for blob in issued.cert_chain_pems:
            blob.write_to_path(str(cert), append=True)
        return cert, key


@pytest.fixture
def certificates(tmp_path: pathlib.Path) -> Certificates:
    authority = trustme.CA()
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    return Certificates(ca, authority, tmp_path)


@asynccontextmanager
async def ns_worker(
    folder: pathlib.Path,
    namespace: Namespace,
    certificates: Certificates,
    adapter: str = "tests.adapters.orphans:Marked",
    extra: Sequence[str] = (),
) -> AsyncIterator[NsWorker]:
    """Start a worker inside ``namespace`` listening on its address, with TLS; yield it once
    READY; stop it on exit (SIGTERM, then SIGKILL). ``ip netns exec`` execs the worker, so
    the process is the worker itself."""
    cert, key = certificates.for_ip(namespace.worker_ip)
    command = ["ip", "netns", "exec", namespace.name, sys.executable, "-m", "snakepit_trio.worker"]
    command += ["--adapter", adapter, "--listen", namespace.endpoint, *extra]
    command += ["--token-file", str(token_file(folder, TOKEN))]
    command += ["--tls-cert", str(cert), "--tls-key", str(key)]
    async with listening(folder, command) as (process, _port, stderr_path):
        yield NsWorker(process, namespace, stderr_path)
