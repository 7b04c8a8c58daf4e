"""Unit (pure): the formats hardware detection reads, with the text real machines give."""

from __future__ import annotations

import pytest

from snakepit_trio.hardware import _parse as parse

X86 = """\
processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8480+
physical id	: 0
core id		: 0
flags		: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16

processor	: 1
model name	: Intel(R) Xeon(R) Platinum 8480+
physical id	: 0
core id		: 0
flags		: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16

processor	: 2
model name	: Intel(R) Xeon(R) Platinum 8480+
physical id	: 1
core id		: 0
flags		: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16

"""

ARM = """\
processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp sve
CPU implementer	: 0x41
CPU part	: 0xd0c

processor	: 1
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp sve
"""


def test_x86_cpuinfo_gives_model_flags_and_physical_cores() -> None:
    model, flags, physical = parse.cpuinfo(X86)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx2", "avx512f", "amx_tile"} <= flags
    assert physical == 2  # (package 0, core 0) twice (hyperthreads), (package 1, core 0)


def test_processors_are_counted() -> None:
    assert parse.processors(X86) == 3
    assert parse.processors(ARM) == 2
    assert parse.processors("") == 0


def test_arm_cpuinfo_has_features_and_no_core_ids() -> None:
    model, flags, physical = parse.cpuinfo(ARM)
    assert model is None
    assert {"asimd", "sve", "asimddp"} <= flags
    assert physical is None


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3", (0, 1, 2, 3)),
        ("0-1,4,6-7\n", (0, 1, 4, 6, 7)),
        ("5", (5,)),
        ("", ()),
    ],
)
def test_cpu_lists(text: str, cpus: tuple[int, ...]) -> None:
    assert parse.cpu_list(text) == cpus


def test_affinity_comes_from_the_status_file() -> None:
    status = "Name:\tpython\nCpus_allowed:\t0f\nCpus_allowed_list:\t0-2,7\nMems_allowed:\t1\n"
    assert parse.allowed_cpus(status) == (0, 1, 2, 7)
    assert parse.allowed_cpus("Name:\tpython\n") is None
    assert parse.allowed_cpus("Cpus_allowed_list:\tgarbage\n") is None


def test_cgroup_file_v2_v1_and_hybrid() -> None:
    assert parse.cgroups("0::/user.slice/app.scope\n") == ("/user.slice/app.scope", {})
    hybrid = "9:name=systemd:/\n2:cpu,cpuacct:/docker/abc\n1:memory:/docker/abc\n0::/\n"
    unified, v1 = parse.cgroups(hybrid)
    assert unified == "/"
    assert v1["cpu"] == v1["cpuacct"] == v1["memory"] == "/docker/abc"


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("max 100000\n", None),
        ("150000 100000\n", 1.5),
        ("200000\n", 2.0),
        ("", None),
        ("x y", None),
    ],
)
def test_cpu_max(text: str, quota: float | None) -> None:
    assert parse.cpu_max(text) == quota


def test_cfs_quota_and_the_tightest_of_several() -> None:
    assert parse.cfs_quota("-1\n", "100000\n") is None
    assert parse.cfs_quota("50000\n", "100000\n") == 0.5
    assert parse.cfs_quota("nan", "100000") is None
    assert parse.tightest([None, 4.0, 1.5, None]) == 1.5
    assert parse.tightest([None]) is None


SMI = """\
0, GPU-8932f937-d72c-4106-c12f-20bd9faed9f6, NVIDIA A100-SXM4-80GB, 81920, 80000, 8.0, 550.54.15
1, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A100-SXM4-80GB, 81920, [N/A], 8.0, 550.54.15
"""


def test_nvidia_smi_csv() -> None:
    devices, driver = parse.nvidia_smi(SMI)
    assert driver == "550.54.15"
    assert [d.uuid for d in devices] == [
        "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
        "GPU-11111111-2222-3333-4444-555555555555",
    ]
    first, second = devices
    assert (first.index, first.name, first.compute_capability) == (
        0,
        "NVIDIA A100-SXM4-80GB",
        "8.0",
    )
    assert first.memory_total == 81920 << 20 and first.memory_free == 80000 << 20
    assert second.memory_free is None


def test_nvidia_smi_csv_without_compute_capability_and_with_noise() -> None:
    text = "No devices were found\n0, GPU-abc, Tesla K80, 11441, 11000, 470.1\n"
    devices, driver = parse.nvidia_smi(text)
    assert driver == "470.1"
    assert len(devices) == 1 and devices[0].compute_capability is None


def test_kfd_properties_and_gfx_names() -> None:
    props = parse.kfd_properties(
        "cpu_cores_count 0\nsimd_count 304\ngfx_target_version 90010\n"
        "unique_id 12345678901234\nmarketing_name x y\n"
    )
    assert props == {
        "cpu_cores_count": 0,
        "simd_count": 304,
        "gfx_target_version": 90010,
        "unique_id": 12345678901234,
    }
    assert parse.gfx_target(90010) == "gfx90a"
    assert parse.gfx_target(90402) == "gfx942"
    assert parse.gfx_target(110000) == "gfx1100"
    assert parse.gfx_target(0) is None
    assert parse.rocm_uuid(0xABABAEEFFECDDC50) == "GPU-ababaeeffecddc50"
    assert parse.rocm_uuid(0) is None


@pytest.mark.parametrize(
    ("system", "machine", "likely"),
    [("Darwin", "arm64", True), ("Darwin", "x86_64", False), ("Linux", "arm64", False)],
)
def test_mps_is_likely_only_on_apple_silicon(system: str, machine: str, likely: bool) -> None:
    assert parse.mps_likely(system, machine) is likely
