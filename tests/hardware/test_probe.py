"""Unit (files, no GPU): detection over fake ``/proc`` and ``/sys`` trees (``root=``), and the
``nvidia-smi`` fallback through a fake ``nvidia-smi`` on PATH.

NVML itself is covered in ``test_nvml.py``, through a fake NVML library in a subprocess.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable

import pytest

from snakepit_trio import hardware as hw
from snakepit_trio.hardware import _probe as probe

CPUINFO = "".join(
    f"processor\t: {i}\nmodel name\t: Fake CPU 9000\nflags\t\t: fpu avx avx2 fma\n\n"
    for i in range(8)
)


def tree(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cgroup_v2_quota_is_the_tightest_up_the_tree(tmp_path: pathlib.Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/cpuinfo": CPUINFO,
            "proc/self/status": "Cpus_allowed_list:\t0-3\n",
            "proc/self/cgroup": "0::/app.slice/job\n",
            "sys/devices/system/cpu/online": "0-7\n",
            "sys/fs/cgroup/app.slice/job/cpu.max": "max 100000\n",
            "sys/fs/cgroup/app.slice/cpu.max": "150000 100000\n",
            "sys/fs/cgroup/cpu.max": "600000 100000\n",
        },
    )
    cpu = probe.cpu(root)
    assert cpu.model == "Fake CPU 9000"
    assert cpu.logical == 8
    assert cpu.affinity == (0, 1, 2, 3)
    assert cpu.quota == 1.5
    assert cpu.usable == 2  # 4 CPUs allowed, 1.5 CPUs of time: 2 busy threads at most
    assert {"avx2", "fma"} <= cpu.flags


def test_cgroup_v1_in_a_container_reads_the_mount_root(tmp_path: pathlib.Path) -> None:
    # The host's path (/docker/abc) does not exist in the container's mount: its root is
    # the container's own cgroup.
    root = tree(
        tmp_path,
        {
            "proc/cpuinfo": CPUINFO,
            "proc/self/cgroup": "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        },
    )
    cpu = probe.cpu(root)
    assert cpu.quota == 3.0
    assert cpu.logical == 8  # from /proc/cpuinfo: no online list in this tree
    assert cpu.affinity == tuple(range(8))  # no status file: every CPU
    assert cpu.usable == 3


def test_no_quota_and_physical_cores_from_the_topology(tmp_path: pathlib.Path) -> None:
    files = {
        "proc/cpuinfo": CPUINFO,
        "proc/self/cgroup": "0::/\n",
        "sys/fs/cgroup/cpu.max": "max 100000\n",
        "sys/devices/system/cpu/online": "0-3\n",
    }
    for cpu_id in range(4):  # two cores, two threads each
        files[f"sys/devices/system/cpu/cpu{cpu_id}/topology/core_cpus_list"] = (
            "0,2\n" if cpu_id % 2 == 0 else "1,3\n"
        )
    cpu = probe.cpu(tree(tmp_path, files))
    assert cpu.quota is None
    assert cpu.physical == 2
    assert cpu.usable == 4


def test_an_empty_tree_gives_a_cpu_all_the_same(tmp_path: pathlib.Path) -> None:
    cpu = probe.cpu(tmp_path)
    assert cpu.model is None and cpu.physical is None and cpu.quota is None
    assert cpu.logical == 1 and cpu.usable == 1


def kfd_tree(root: pathlib.Path) -> pathlib.Path:
    nodes = "sys/class/kfd/kfd/topology/nodes"
    return tree(
        root,
        {
            f"{nodes}/0/properties": "cpu_cores_count 64\nsimd_count 0\n",
            f"{nodes}/1/properties": (
                "simd_count 440\ngfx_target_version 90010\nunique_id 12297829382473034410\n"
            ),
            f"{nodes}/1/name": "gfx90a\n",
            f"{nodes}/1/mem_banks/0/properties": "heap_type 1\nsize_in_bytes 68702699520\n",
            f"{nodes}/1/mem_banks/1/properties": "heap_type 0\nsize_in_bytes 5\n",
            f"{nodes}/10/properties": "simd_count 120\ngfx_target_version 110000\nunique_id 0\n",
        },
    )


def test_rocm_devices_come_from_the_kfd_topology(tmp_path: pathlib.Path) -> None:
    devices, notes = probe.rocm(kfd_tree(tmp_path))
    assert notes == []
    first, second = devices
    assert (first.kind, first.index, first.name) == ("rocm", 0, "gfx90a")
    assert first.uuid == "GPU-aaaaaaaaaaaaaaaa"
    assert first.memory_total == 68702699520
    assert first.compute_capability == "gfx90a"
    # Node 10 sorts after node 1 (numerically); a card without a unique id has no uuid.
    assert (second.index, second.name, second.uuid) == (1, "gfx1100", None)


def test_no_kfd_topology_is_a_note(tmp_path: pathlib.Path) -> None:
    devices, notes = probe.rocm(tmp_path)
    assert devices == [] and notes and notes[0].startswith("rocm:")


def test_detect_reads_under_root_and_keeps_its_result(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML in this process
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    root = kfd_tree(tree(tmp_path, {"proc/cpuinfo": CPUINFO}))
    info = hw.detect(root=root)
    assert info.cpu.model == "Fake CPU 9000"
    assert [d.name for d in info.rocm] == ["gfx90a", "gfx1100"]
    assert info.accelerator == "rocm"
    assert info.cuda == () and info.cuda_source is None
    assert any(n.startswith("cuda: NVML: nvidia-ml-py is not installed") for n in info.notes)
    assert "cuda: nvidia-smi: not found on PATH" in info.notes
    assert hw.detect(root=str(root)) is info  # kept for the process
    assert hw.detect(root=root, refresh=True) is not info
    assert info.to_dict()["accelerator"] == "rocm"


def test_nvidia_smi_is_the_fallback_without_nvml(
    monkeypatch: pytest.MonkeyPatch, fake_smi: Callable[..., pathlib.Path]
) -> None:
    bin_dir = fake_smi(
        "0, GPU-aaaaaaaa-0000-0000-0000-000000000000, NVIDIA L4, 23034, 22000, 8.9, 550.1\n"
    )
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(bin_dir))
    devices, driver, source, _ = probe.cuda()
    assert source == "nvidia-smi" and driver == "550.1"
    assert [(d.uuid, d.name, d.compute_capability) for d in devices] == [
        ("GPU-aaaaaaaa-0000-0000-0000-000000000000", "NVIDIA L4", "8.9")
    ]
    assert "--format=csv,noheader,nounits" in (bin_dir / "calls.txt").read_text()


def test_an_old_nvidia_smi_is_asked_again_without_compute_cap(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in *compute_cap*)\n'
        "  echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2;;\n"
        "esac\n"
        "echo '0, GPU-bbbb, Tesla K80, 11441, 11000, 470.82'\n"
    )
    script.chmod(0o755)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    devices, driver, source, _ = probe.cuda()
    assert source == "nvidia-smi" and driver == "470.82"
    assert devices[0].name == "Tesla K80" and devices[0].compute_capability is None


def test_a_failing_nvidia_smi_is_a_note(
    monkeypatch: pytest.MonkeyPatch, fake_smi: Callable[..., pathlib.Path]
) -> None:
    bin_dir = fake_smi("NVIDIA-SMI has failed because it couldn't communicate with the driver.", 9)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(bin_dir))
    devices, _, source, notes = probe.cuda()
    assert devices == [] and source is None
    assert notes[-1].startswith("cuda: nvidia-smi: exit 9: NVIDIA-SMI has failed")
