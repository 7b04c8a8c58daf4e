"""Detection through NVML, on a machine without a GPU: a fake ``libnvidia-ml.so.1``.

The fake (``fake_nvml.c``, built by the ``fake_nvml`` fixture) is loaded by nvidia-ml-py's
real ctypes layer in a fresh interpreter, exactly as the driver's library would be; only the
answers are made up. The last tests run a host with real worker processes over it (the
plan of ``devices="cuda"`` through a mask by index). What cannot be checked here: a real
driver's answers (MIG on real hardware, NVML's order against CUDA's), which the fake only
imitates.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Callable

import pytest

from .conftest import CHECKOUT, FAKE_UUID, nvml_env, run_python

pytest.importorskip("pynvml")

DETECT = (
    "import json; from snakepit_trio import hardware as hw; "
    "info = hw.detect(); print(json.dumps(info.to_dict()))"
)


def test_nvml_lists_every_gpu(fake_nvml: pathlib.Path) -> None:
    found = run_python(DETECT, nvml_env(fake_nvml, count="3", names="NVIDIA A100,NVIDIA T4"))
    assert found["cuda_source"] == "nvml"
    assert found["cuda_driver"] == "550.54.15"
    assert found["accelerator"] == "cuda"
    assert [d["uuid"] for d in found["cuda"]] == [FAKE_UUID.format(i) for i in range(3)]
    assert [d["name"] for d in found["cuda"]] == ["NVIDIA A100", "NVIDIA T4", "NVIDIA T4"]
    first = found["cuda"][0]
    assert first["memory_total"] == 16 << 30 and first["memory_free"] == 15 << 30
    assert first["compute_capability"] == "8.0" and first["parent"] is None
    assert not any(n.startswith("cuda") for n in found["notes"])


def test_nvml_lists_mig_instances_after_their_gpu(fake_nvml: pathlib.Path) -> None:
    found = run_python(DETECT, nvml_env(fake_nvml, count="2", mig="1"))
    cuda = found["cuda"]
    assert [d["uuid"] for d in cuda] == [
        FAKE_UUID.format(0),
        FAKE_UUID.format(1),
        "MIG-fa4e0000-0000-4000-8000-000000000110",
        "MIG-fa4e0000-0000-4000-8000-000000000111",
    ]
    assert cuda[2]["parent"] == FAKE_UUID.format(1)
    assert cuda[2]["compute_capability"] == "8.1"  # its GPU's
    assert cuda[3]["index"] == 1 and cuda[3]["memory_total"] == 5 << 30


def test_a_driver_that_does_not_load_falls_back_to_nvidia_smi(
    fake_nvml: pathlib.Path, fake_smi: Callable[..., pathlib.Path]
) -> None:
    bin_dir = fake_smi(f"0, {FAKE_UUID.format(7)}, NVIDIA H100, 81559, 81000, 9.0, 560.1\n")
    env = nvml_env(fake_nvml, fail_init="1")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    found = run_python(DETECT, env)
    assert found["cuda_source"] == "nvidia-smi"
    assert [d["uuid"] for d in found["cuda"]] == [FAKE_UUID.format(7)]
    assert "cuda: NVML: DriverNotLoaded (Driver Not Loaded)" in found["notes"]


def test_no_library_and_no_nvidia_smi_is_said(tmp_path: pathlib.Path) -> None:
    env = nvml_env(None)
    env["PATH"] = str(tmp_path)  # no nvidia-smi
    found = run_python(DETECT, env)
    assert found["cuda"] == [] and found["cuda_source"] is None
    assert any(n.startswith("cuda: NVML: LibraryNotFound") for n in found["notes"])
    assert "cuda: nvidia-smi: not found on PATH" in found["notes"]


def test_detection_touches_no_framework(fake_nvml: pathlib.Path) -> None:
    code = (
        "import json, sys; from snakepit_trio import hardware as hw; hw.detect(); "
        "hw.select_with_fallback(); hw.identity(); "
        "print(json.dumps(sorted(m for m in ('torch', 'trio', 'asyncio', 'cupy', 'jax') "
        "if m in sys.modules)))"
    )
    assert run_python(code, nvml_env(fake_nvml)) == []


POOL_HOST = """
import json, trio, snakepit_trio as sp

async def main():
    try:
        async with sp.open_pool(
            "tests.adapters.placement:Placed", size=3, devices="cuda", start_method="spawn",
            registry=False, heartbeat_timeout=None,  # workers() lists exactly these three
        ) as pool:
            print(json.dumps(sorted(w.device for w in pool.workers())))
    except ValueError as exc:
        print(json.dumps(str(exc)))

trio.run(main)
"""


def test_a_pool_plans_from_nvml_through_a_mask_by_index(fake_nvml: pathlib.Path) -> None:
    """Real workers, a host whose NVML is the fake: ``CUDA_VISIBLE_DEVICES=2,0`` (indices,
    read in NVML's PCI order, right here since every device is the same model)."""
    env = nvml_env(fake_nvml, count="3")
    env["CUDA_VISIBLE_DEVICES"] = "2,0"
    devices = run_python(POOL_HOST, env)
    two, zero = f"cuda:{FAKE_UUID.format(2)}", f"cuda:{FAKE_UUID.format(0)}"
    assert devices == sorted([two, zero, two])


def test_a_mask_by_index_over_mixed_models_is_refused(fake_nvml: pathlib.Path) -> None:
    env = nvml_env(fake_nvml, count="2", names="NVIDIA A100,NVIDIA T4")
    env["CUDA_VISIBLE_DEVICES"] = "1"
    said = run_python(POOL_HOST, env)
    assert "CUDA_VISIBLE_DEVICES='1' names devices by index" in said
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in said
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert run_python(POOL_HOST, env) == [f"cuda:{FAKE_UUID.format(1)}"] * 3


def test_the_hardware_example_pins_its_workers_to_the_fake_gpus(fake_nvml: pathlib.Path) -> None:
    env = nvml_env(fake_nvml, count="2")
    done = subprocess.run(
        [sys.executable, str(CHECKOUT / "examples" / "hardware.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=CHECKOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "select_with_fallback -> cuda: NVIDIA Fake T4" in done.stdout
    for index in range(2):
        assert f"device cuda:{FAKE_UUID.format(index)}, target cuda:0" in done.stdout
        assert f"CUDA_VISIBLE_DEVICES={FAKE_UUID.format(index)}" in done.stdout
