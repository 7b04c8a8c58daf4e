"""End-to-end: every example runs as a test, from its own directory layout."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quickstart_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 workers ready" in out
    assert "word_count -> {'worker_pid'" in out
    assert "{0: 0, 1: 1, 2: 4, 3: 9, 4: 16, 5: 25, 6: 36, 7: 49}" in out
    assert "RemoteError: ZeroDivisionError" in out
    assert "InvalidArguments" in out
    assert "pool closed" in out
