"""The ``snakepit-trio hardware`` command: its text (pure, over made-up machines), its JSON,
and the command itself, here and over the fake NVML library."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from snakepit_trio import hardware as hw
from snakepit_trio._cli import main
from snakepit_trio.hardware._report import ranges, report

from .conftest import FAKE_UUID, nvml_env

CPU = hw.CpuInfo(
    model="Fake CPU 9000",
    arch="x86_64",
    logical=8,
    physical=4,
    affinity=(0, 1, 2, 3, 6),
    quota=2.5,
    flags=frozenset({"avx2", "fma", "fpu"}),
)
A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"


def test_the_text_says_what_was_found_and_what_this_process_may_use() -> None:
    info = hw.HardwareInfo(
        cpu=CPU,
        cuda=(
            hw.Device("cuda", 0, A, "NVIDIA L4", 24 << 30, 20 << 30, "8.9"),
            hw.Device("cuda", 1, B, "NVIDIA L4", 24 << 30, 23 << 30, "8.9"),
        ),
        cuda_driver="550.1",
        cuda_source="nvml",
        notes=("rocm: no KFD topology",),
    )
    lines = report(info, {"CUDA_VISIBLE_DEVICES": "1"})
    assert lines[0] == "CPU    Fake CPU 9000 (x86_64): 8 logical CPUs, 4 physical cores"
    assert lines[1] == "       this process may use 3 (affinity 0-3,6; cgroup quota 2.5 CPUs)"
    assert lines[2] == "       features: avx2 fma"
    assert lines[3] == "CUDA   2 devices, driver 550.1 via nvml"
    assert lines[4] == f"         [0] {A} NVIDIA L4 (24.0 GiB, 20.0 GiB free, compute 8.9)"
    assert lines[6] == f"       CUDA_VISIBLE_DEVICES='1' lets this process use: {B}"
    assert lines[7:] == ["ROCm   none (no KFD topology)", "MPS    no", "best   cuda"]


def test_the_text_of_a_bare_machine() -> None:
    info = hw.HardwareInfo(cpu=CPU, notes=("cuda: NVML: LibraryNotFound",), mps=True)
    lines = report(info, {})
    assert "CUDA   none (NVML: LibraryNotFound)" in lines
    assert "MPS    likely (macOS on Apple silicon)" in lines
    assert lines[-1] == "best   mps"


def test_cpu_ranges() -> None:
    assert ranges((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"
    assert ranges((3,)) == "3"
    assert ranges(()) == "none"


def test_the_command_prints_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hardware"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU    ") and "\nbest   " in out
    assert main(["hardware", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found == hw.detect().to_dict()


def test_the_command_over_the_fake_nvml(fake_nvml: pathlib.Path) -> None:
    pytest.importorskip("pynvml")
    env = nvml_env(fake_nvml, count="3")
    env["CUDA_VISIBLE_DEVICES"] = "2,0"
    run = [sys.executable, "-m", "snakepit_trio", "hardware"]
    text = subprocess.run(run, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert "CUDA   3 devices, driver 550.54.15 via nvml" in text.stdout
    assert (
        f"CUDA_VISIBLE_DEVICES='2,0' lets this process use: "
        f"{FAKE_UUID.format(2)}, {FAKE_UUID.format(0)}" in text.stdout
    )
    done = subprocess.run(
        [*run, "--json"], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(done.stdout)
    assert [d["uuid"] for d in found["cuda"]] == [FAKE_UUID.format(i) for i in range(3)]
    assert found["accelerator"] == "cuda"
