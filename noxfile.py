"""Development sessions: nox -s tests node lint typecheck proto proto_check docs examples
chaos bench."""

from __future__ import annotations

import pathlib
import shutil
import tempfile

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "proto_check"]
nox.options.reuse_existing_virtualenvs = True

ROOT = pathlib.Path(__file__).parent
PROTO_OUT = "snakepit_trio/_proto"
PYTHON = "3.11"


NODE_WORKER = ROOT / "workers" / "node"


def install_node_worker(session: nox.Session) -> None:
    """The Node.js worker's dependencies, exactly as its lock file has them (npm ci)."""
    npm = ("npm", "--prefix", str(NODE_WORKER), "--no-audit", "--no-fund")
    session.run(*npm, "ci", external=True)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, property and end-to-end tests (real worker processes over real gRPC), for
    Python and Node.js workers; the Node worker's own tests (node --test) first."""
    session.install("-e", ".[test]")
    install_node_worker(session)
    session.run("npm", "--prefix", str(NODE_WORKER), "test", external=True)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def node(session: nox.Session) -> None:
    """The Node.js worker alone: its own tests, then the contract suite against it."""
    session.install("-e", ".[test]")
    install_node_worker(session)
    session.run("npm", "--prefix", str(NODE_WORKER), "test", external=True)
    session.run("pytest", "tests/contract", "-k", "node", *session.posargs)


@nox.session(python=PYTHON)
def ray(session: nox.Session) -> None:
    """Workers placed by RayLauncher on a two-node Ray cluster on this machine: the
    launcher's own tests (placement, a killed actor, a killed host), then the contract suite
    over Ray (Python workers)."""
    session.install("-e", ".[test,ray]")
    session.run("pytest", "tests/ray", *session.posargs)
    session.run(
        "pytest",
        "tests/contract",
        "-k",
        "python-ray",
        *session.posargs,
        env={"SNAKEPIT_TRIO_CONTRACT_RAY": "1"},
    )


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """The chaos suite and the adversarial suite, longer and bigger; both print figures.

    nox -s chaos [-- SECONDS [SCALE]]: the chaos suite runs SECONDS (default 120), the
    adversarial suite (tests/adversarial) at SCALE times its CI size (default 20: hundreds
    of pools opened and closed, tens of thousands of calls per storm). Either suite replays
    a failure with the seed it printed: SNAKEPIT_CHAOS_SEED, SNAKEPIT_ADVERSARIAL_SEED.
    """
    session.install("-e", ".[test]")
    install_node_worker(session)
    seconds = session.posargs[0] if session.posargs else "120"
    scale = session.posargs[1] if len(session.posargs) > 1 else "20"
    report = ROOT / "chaos-report.json"
    long_run = ("-s", "-o", "faulthandler_timeout=0")  # a long run is not a hang
    session.run(
        "pytest",
        "tests/chaos",
        *long_run,
        env={"SNAKEPIT_CHAOS_SECONDS": seconds, "SNAKEPIT_CHAOS_REPORT": str(report)},
    )
    session.log(f"reports written beside {report}, one per worker runtime")
    session.run(
        "pytest",
        "tests/adversarial",
        "--durations=0",
        *long_run,
        env={"SNAKEPIT_ADVERSARIAL_SCALE": scale},
    )


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    """Run every example as a test."""
    session.install("-e", ".[test]")
    install_node_worker(session)
    session.run("pytest", "tests/e2e/test_examples.py", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, including the ASYNC rules; lint-imports, the import contracts in pyproject.toml."""
    # 2.12: a forbidden contract may name a wildcard that matches its own source (_core).
    session.install("ruff>=0.6", "import-linter>=2.12", "-e", ".")
    session.run("ruff", "check", "snakepit_trio", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml), built with --strict into site/ (git-ignored)."""
    session.install("-e", ".[docs]")
    # Quiet the banners some theme and plugin releases print about a future MkDocs 2.
    quiet = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env=quiet)


def _generate(session: nox.Session, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        "-I",
        "proto",
        f"--python_betterproto2_out={out}",
        "--python_betterproto2_opt=client_generation=async,server_generation=async",
        "proto/snakepit/v1/worker.proto",
        silent=True,
    )
    (out / "py.typed").touch()


@nox.session(python=PYTHON)
def proto(session: nox.Session) -> None:
    """Regenerate snakepit_trio/_proto from proto/."""
    session.install("-e", ".[proto]")
    shutil.rmtree(ROOT / PROTO_OUT, ignore_errors=True)
    _generate(session, ROOT / PROTO_OUT)


@nox.session(python=PYTHON)
def proto_check(session: nox.Session) -> None:
    """Fail when the committed generated code differs from a fresh generation."""
    session.install("-e", ".[proto]")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = pathlib.Path(tmp) / "out"
        _generate(session, fresh)
        session.run(
            "diff", "-r", "-x", "__pycache__", str(fresh), str(ROOT / PROTO_OUT), external=True
        )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers, in one run (see README, Performance)."""
    session.install("-e", ".[bench]")
    install_node_worker(session)  # Node.js workers have rows of their own
    session.run("python", "benchmarks/suite.py", *session.posargs)
    session.run("python", "benchmarks/bench_streaming.py", *session.posargs)
    session.run("python", "benchmarks/bench_cpu.py")
