"""``snakepit-trio doctor`` in real subprocesses: this machine, injected faults, a real pool.

Layer: e2e (real processes; every wait under a deadline).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from snakepit_trio._supervision._registry import Registry

from .cli_helpers import processes_marked, run_cli

MACHINE_ROWS = {
    "python",
    "dependencies",
    "uvloop",
    "/dev/shm",
    "state dir",
    "socket paths",
    "pidfd",
    "parent death",
    "memory limit",
    "open files",
    "leftovers",
}


def rows(report: dict[str, object]) -> dict[str, dict[str, str]]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["name"]: c for c in checks}


async def test_this_machine_table_and_json(tmp_path: Path) -> None:
    text = await run_cli("doctor", "--state-dir", str(tmp_path))
    report = (await run_cli("doctor", "--state-dir", str(tmp_path), "--json")).json()
    found = rows(report)
    assert set(found) == MACHINE_ROWS
    for row in found.values():
        assert row["status"] in {"PASS", "WARN", "FAIL"}
        assert row["status"] == "PASS" or row["fix"], row
    failed = any(r["status"] == "FAIL" for r in found.values())
    assert report["ok"] is not failed
    assert text.code == (1 if failed else 0)
    for name in MACHINE_ROWS:
        assert name in text.out
    assert found["state dir"]["status"] == "PASS"
    assert found["python"]["status"] == "PASS"


async def test_state_dir_others_may_write_fails(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    ran = await run_cli("doctor", "--state-dir", str(shared), "--json")
    assert ran.code == 1
    row = rows(ran.json())["state dir"]
    assert row["status"] == "FAIL"
    assert "writable by other users" in row["detail"]
    assert "chmod 700" in row["fix"]


async def test_state_dir_that_cannot_be_made_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ran = await run_cli("doctor", "--state-dir", str(blocker / "state"))
    assert ran.code == 1
    line = next(x for x in ran.out.splitlines() if "state dir" in x)
    assert line.startswith("FAIL")
    assert "run without a registry" in line


async def test_too_long_socket_path_fails(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    ran = await run_cli("doctor", "--state-dir", str(tmp_path), "--json", env={"TMPDIR": str(deep)})
    assert ran.code == 1
    row = rows(ran.json())["socket paths"]
    assert row["status"] == "FAIL"
    assert "TMPDIR" in row["fix"]


async def test_broken_adapter_fails_quoting_its_error(tmp_path: Path) -> None:
    ran = await run_cli(
        "doctor",
        "--state-dir",
        str(tmp_path),
        "--json",
        "--adapter",
        "tests.adapters.raises_on_import:Anything",
    )
    assert ran.code == 1
    row = rows(ran.json())["adapter import"]
    assert row["status"] == "FAIL"
    assert "config file missing: /etc/app.toml" in row["detail"]


async def test_adapter_failing_initialize_fails_the_start_row(tmp_path: Path) -> None:
    mark = secrets.token_hex(8)
    ran = await run_cli(
        "doctor",
        "--state-dir",
        str(tmp_path),
        "--json",
        "--adapter",
        "tests.adapters.broken:FailsInitialize",
        env={"DOCTOR_TEST_MARK": mark},
    )
    assert ran.code == 1
    row = rows(ran.json())["worker start"]
    assert row["status"] == "FAIL"
    assert "model weights not found at /nowhere" in row["detail"]
    assert processes_marked("DOCTOR_TEST_MARK", mark) == []


async def test_good_adapter_runs_a_real_pool_and_leaves_nothing(tmp_path: Path) -> None:
    mark = secrets.token_hex(8)
    ran = await run_cli(
        "doctor",
        "--state-dir",
        str(tmp_path),
        "--json",
        "--adapter",
        "tests.adapters.basic:Echo",
        "--call",
        "add",
        "--args",
        '{"a": 2, "b": 3}',
        env={"DOCTOR_TEST_MARK": mark},
    )
    found = rows(ran.json())
    assert found["adapter import"]["status"] == "PASS"
    assert found["worker start"]["status"] == "PASS"
    assert "ready in" in found["worker start"]["detail"]
    assert found["call"]["status"] == "PASS"
    assert "add() returned 5" in found["call"]["detail"]
    assert ran.code == (0 if ran.json()["ok"] else 1)
    # The probe pool is closed before doctor exits: no worker (they would have been
    # reparented, out of the leak fixture's sight) and no registry row is left.
    assert processes_marked("DOCTOR_TEST_MARK", mark) == []
    assert Registry(tmp_path).entries() == []
    assert os.listdir(tmp_path)  # the registry was made there
