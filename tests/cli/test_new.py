"""``snakepit-trio new``: the generated package's own tests pass, and ruff accepts it.

Layer: e2e (the command, pytest and ruff run as subprocesses; the generated real-pool test
starts worker processes).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import trio

from .cli_helpers import run_cli


def _ruff() -> str | None:
    beside = Path(sys.executable).with_name("ruff")
    return str(beside) if beside.exists() else shutil.which("ruff")


async def test_generated_package_tests_pass_and_lint_clean(tmp_path: Path) -> None:
    ran = await run_cli("new", "acme-model", "--dir", str(tmp_path))
    assert ran.code == 0, ran.err
    root = tmp_path / "acme-model"
    assert (root / "acme_model" / "adapter.py").is_file()
    assert "acme_model.adapter:AcmeModel" in ran.out
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.getcwd()]),
    }
    with trio.fail_after(180):
        tests = await trio.run_process(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
            cwd=root,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = tests.stdout.decode()
    assert tests.returncode == 0, out + tests.stderr.decode()
    assert "3 passed" in out
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    with trio.fail_after(60):
        lint = await trio.run_process(
            [ruff, "check", "--no-cache", "."], cwd=root, capture_stdout=True, check=False
        )
    assert lint.returncode == 0, lint.stdout.decode()


async def test_refuses_an_existing_directory_and_a_bad_name(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    ran = await run_cli("new", "taken", "--dir", str(tmp_path))
    assert ran.code == 2
    assert "exists" in ran.err
    ran = await run_cli("new", "1bad", "--dir", str(tmp_path))
    assert ran.code == 2
    assert "package name" in ran.err
    assert sorted(os.listdir(tmp_path)) == ["taken"]
