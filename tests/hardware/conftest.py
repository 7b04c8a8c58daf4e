"""Fixtures for the hardware tests: a fake NVML library, a fake ``nvidia-smi``, fake trees.

The fake NVML (``fake_nvml.c``) is compiled with gcc once per session into a
``libnvidia-ml.so.1``; tests that use it run a Python subprocess with that directory on
``LD_LIBRARY_PATH`` (the dynamic loader reads it at process start), so nvidia-ml-py's own
ctypes layer loads it as it would load the driver's. Without gcc, those tests are skipped.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

HERE = pathlib.Path(__file__).parent
CHECKOUT = HERE.parent.parent

# What the fake NVML calls its GPUs (see fake_nvml.c).
FAKE_UUID = "GPU-fa4e0000-0000-4000-8000-00000000000{}"


@pytest.fixture(scope="session")
def fake_nvml(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The directory holding the fake ``libnvidia-ml.so.1``."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (gcc) to build the fake NVML library")
    out = tmp_path_factory.mktemp("nvml")
    subprocess.run(
        [
            gcc, "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror",
            "-Wl,-soname,libnvidia-ml.so.1",
            "-o", str(out / "libnvidia-ml.so.1"), str(HERE / "fake_nvml.c"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return out


def nvml_env(library_dir: pathlib.Path | None, **fake: str) -> dict[str, str]:
    """An environment for a subprocess that finds the fake NVML (or none at all)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_NVML_", "CUDA_"))}
    env["PYTHONPATH"] = str(CHECKOUT)
    env["LD_LIBRARY_PATH"] = str(library_dir) if library_dir else ""
    env.update({f"FAKE_NVML_{k.upper()}": v for k, v in fake.items()})
    return env


def run_python(code: str, env: dict[str, str]) -> Any:
    """Run ``code`` (which prints one JSON value last) in a fresh interpreter; return it."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def fake_smi(tmp_path: pathlib.Path) -> Callable[[str, int], pathlib.Path]:
    """Write an ``nvidia-smi`` that prints ``output`` and exits with ``code`` (shell builtins
    only: PATH may hold nothing else); returns its directory (put it on PATH)."""

    def make(output: str, code: int = 0) -> pathlib.Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "output.txt").write_text(output if output.endswith("\n") else output + "\n")
        script = bin_dir / "nvidia-smi"
        script.write_text(
            "#!/bin/sh\n"
            f'echo "$@" >> "{bin_dir}/calls.txt"\n'
            f'while IFS= read -r line; do echo "$line"; done < "{bin_dir}/output.txt"\n'
            f"exit {code}\n"
        )
        script.chmod(0o755)
        return bin_dir

    return make
