"""One worker slot on a Ray node: the actor that starts an ordinary worker process there.

This module runs inside a Ray actor process on whichever node Ray chose, so it imports no
trio and nothing of the host's rooms. The actor makes a fresh self-signed certificate (the
host pins its SHA-256, so no CA is needed), writes the pool's token and the key to a folder
only it can read, and starts ``python -m snakepit_trio.worker --listen tcp://NODE_IP:0`` in
a process group of its own. The worker dies with the actor: it watches its stdin (a pipe
the actor holds, which closes when the actor's process ends, however it ends) and is told
the actor's pid (``--host-pid``).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

LOG_TAIL = 4000  # characters of the worker's log a failed start reports
EXIT_WAIT = 2.0  # seconds a worker that closed its stdout gets to exit, for its exit code


def self_signed(host: str) -> tuple[bytes, bytes, str]:
    """A new EC P-256 key and a certificate for ``host``: (cert PEM, key PEM, SHA-256 hex)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "snakepit_trio worker")])
    now = datetime.datetime.now(datetime.UTC)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, hashlib.sha256(der).hexdigest()


def _private_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def tcp_url(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def _environment(env: dict[str, str], paths: list[str]) -> dict[str, str]:
    merged = {**os.environ, **env}
    inherited = [p for p in merged.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths or inherited:
        merged["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*paths, *inherited]))
    return merged


class WorkerSlot:
    """The Ray actor of one worker slot (``ray.remote(WorkerSlot)`` on the host)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder: str | None = None

    def start(
        self,
        flags: list[str],
        env: dict[str, str],
        paths: list[str],
        token: bytes,
        tls: bool,
        timeout: float,
    ) -> dict[str, Any]:
        """Start the worker and wait for its READY line.

        ``env`` goes over the actor's environment; ``paths`` go before the actor's
        ``PYTHONPATH``, which Ray's ``runtime_env`` (``working_dir``, ``py_modules``) may
        have set for the code it shipped.

        Returns:
            ``host``, ``port`` (where it listens), ``pin`` (its certificate's SHA-256 hex,
            or "" without TLS), ``pid`` and ``node_id`` (Ray's).

        Raises:
            RuntimeError: the worker exited or said nothing within ``timeout`` seconds (the
                message carries the end of its log).
        """
        import ray

        host: str = ray.util.get_node_ip_address()
        self._folder = folder = tempfile.mkdtemp(prefix="snakepit-ray-")
        _private_file(os.path.join(folder, "token"), token)
        command = [sys.executable, "-m", "snakepit_trio.worker", *flags]
        command += ["--listen", tcp_url(host, 0), "--token-file", os.path.join(folder, "token")]
        pin = ""
        if tls:
            cert, key, pin = self_signed(host)
            _private_file(os.path.join(folder, "cert.pem"), cert)
            _private_file(os.path.join(folder, "key.pem"), key)
            command += ["--tls-cert", os.path.join(folder, "cert.pem")]
            command += ["--tls-key", os.path.join(folder, "key.pem")]
        command += ["--host-pid", str(os.getpid()), "--watch-stdin"]
        log_path = os.path.join(folder, "worker.log")
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # its own group: stop() takes its children too
                env=_environment(env, paths),
            )
        line = self._ready_line(timeout)
        if line is None:
            why = self._exit_text()
            self.stop(0)  # its log is read above: stop() removes the folder
            raise RuntimeError(f"the worker on {host} did not start: {why}")
        _, pid, port = line.split()
        return {
            "host": host,
            "port": int(port),
            "pin": pin,
            "pid": int(pid),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def _ready_line(self, timeout: float) -> str | None:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        data = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(self._proc.stdout.fileno(), 4096)
                if not chunk:
                    return None  # it exited before READY
                data += chunk
        line = data.split(b"\n", 1)[0].decode(errors="replace")
        return line if line.startswith("READY ") and len(line.split()) == 3 else None

    def _exit_text(self) -> str:
        assert self._proc is not None and self._folder is not None
        try:
            code: int | None = self._proc.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            code = None
        said = self._log_tail(os.path.join(self._folder, "worker.log"))
        state = "no READY line in time" if code is None else f"it exited with code {code}"
        return f"{state}; its log ends:\n{said}"

    @staticmethod
    def _log_tail(path: str) -> str:
        try:
            with open(path, errors="replace") as f:
                return f.read()[-LOG_TAIL:]
        except OSError as exc:
            return f"(cannot read {path}: {exc})"

    def stop(self, grace: float) -> int | None:
        """SIGTERM the worker's group, SIGKILL it after ``grace`` seconds; forget its files.

        Returns:
            The worker's exit code (negative: the signal), or None if none was started.
        """
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
                if proc.poll() is None or sig == signal.SIGKILL:
                    try:
                        os.killpg(proc.pid, sig)  # the worker's children too
                    except (ProcessLookupError, PermissionError):
                        pass
                try:
                    code = proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
            if proc.stdin is not None:
                proc.stdin.close()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        return code
