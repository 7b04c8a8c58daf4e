"""Unit (pure): the ``devices`` option, device masks and the plan of which slot gets which
device; ``capabilities``, ``select_with_fallback`` and ``identity`` over made-up machines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from snakepit_trio import hardware as hw
from snakepit_trio.hardware import _plan as plan
from snakepit_trio.hardware import _select as select

A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"
C = "GPU-cccccccc-0000-0000-0000-000000000000"


def gpu(
    index: int, uuid: str, name: str = "NVIDIA A100", free_gib: int = 10, **kw: Any
) -> hw.Device:
    return hw.Device(
        kind=kw.pop("kind", "cuda"),
        index=index,
        uuid=uuid,
        name=name,
        memory_total=80 << 30,
        memory_free=free_gib << 30,
        compute_capability="8.0",
        **kw,
    )


GPUS = [gpu(0, A), gpu(1, B), gpu(2, C)]


# --- the option -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "normal"),
    [
        (None, None),
        ("cuda", "cuda"),
        ("rocm", "rocm"),
        ([A], (f"cuda:{A}",)),
        ((f"cuda:{A}", B), (f"cuda:{A}", f"cuda:{B}")),
        ([f"rocm:{A}"], (f"rocm:{A}",)),
        (["MIG-1234-5678"], ("cuda:MIG-1234-5678",)),
        ([gpu(0, A), A], (f"cuda:{A}", f"cuda:{A}")),
    ],
)
def test_devices_are_normalized(given: object, normal: object) -> None:
    assert plan.normalize(given) == normal


@pytest.mark.parametrize(
    ("given", "error", "says"),
    [
        (A, ValueError, f"pass \\['{A}'\\]"),
        (gpu(0, A), TypeError, "pass \\['cuda:GPU-"),
        (5, TypeError, "got 5 \\(an int\\)"),
        ([], ValueError, "pass None for no pinning"),
        ([0], TypeError, "got 0 \\(an int\\) in it"),
        (["0"], ValueError, "by index; name it by uuid"),
        (["cuda:1"], ValueError, "by index"),
        (["gpu0"], ValueError, "'gpu0' is not a device uuid"),
        ([f"cuda:{A}", f"rocm:{B}"], ValueError, "mixes cuda and rocm"),
        ([hw.Device(kind="mps", index=0, uuid=None, name="x")], ValueError, "mps device"),
    ],
)
def test_bad_devices_say_what_to_change(given: object, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says) as info:
        plan.normalize(given)
    assert str(info.value).startswith("devices")


# --- masks ---------------------------------------------------------------------------------
def uuids(devices: list[hw.Device]) -> list[str | None]:
    return [d.uuid for d in devices]


@pytest.mark.parametrize(
    ("mask", "seen"),
    [
        (None, [A, B, C]),
        (f"{C},{A}", [C, A]),  # the mask's order is the order the host numbers them in
        ("2,0", [C, A]),  # by index: every device is the same model, so PCI order holds
        ("GPU-bbbb", [B]),  # a unique prefix, as CUDA takes it
        ("1,x,0", [B]),  # CUDA stops at the first entry that names nothing
        ("0,7,1", [A]),
        ("", []),
        ("-1", []),
    ],
)
def test_masks_are_read_as_cuda_reads_them(mask: str | None, seen: list[str]) -> None:
    env = {} if mask is None else {"CUDA_VISIBLE_DEVICES": mask}
    devices, known = plan.visible("cuda", GPUS, env)
    assert uuids(devices) == seen
    assert known


def test_a_mask_by_index_needs_a_known_order() -> None:
    mixed = [gpu(0, A, "NVIDIA A100"), gpu(1, B, "NVIDIA T4")]
    with pytest.raises(ValueError, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        plan.visible("cuda", mixed, {"CUDA_VISIBLE_DEVICES": "1"})
    env = {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert uuids(plan.visible("cuda", mixed, env)[0]) == [B]
    assert uuids(plan.visible("cuda", mixed, {"CUDA_VISIBLE_DEVICES": B})[0]) == [B]


def test_without_detection_a_mask_of_uuids_is_what_is_visible() -> None:
    devices, known = plan.visible("cuda", [], {"CUDA_VISIBLE_DEVICES": f"{B},{A}"})
    assert uuids(devices) == [B, A] and known
    assert plan.visible("cuda", [], {}) == ([], False)
    with pytest.raises(ValueError, match="no device was detected"):
        plan.visible("cuda", [], {"CUDA_VISIBLE_DEVICES": "0"})


def test_a_gpu_in_mig_mode_is_used_through_its_instances() -> None:
    mig = [
        gpu(0, A),
        gpu(1, B),
        gpu(0, "MIG-b0", "NVIDIA A100 MIG 1g.10gb", parent=B),
        gpu(1, "MIG-b1", "NVIDIA A100 MIG 1g.10gb", parent=B),
    ]
    assert uuids(plan.visible("cuda", mig, {})[0]) == [A, "MIG-b0", "MIG-b1"]
    assert uuids(plan.visible("cuda", mig, {"CUDA_VISIBLE_DEVICES": "MIG-b1"})[0]) == ["MIG-b1"]
    # an index counts whole GPUs; one in MIG mode stands for its instances
    assert uuids(plan.visible("cuda", mig, {"CUDA_VISIBLE_DEVICES": "1,0"})[0]) == [
        "MIG-b0",
        "MIG-b1",
        A,
    ]


def test_rocm_masks_compose_rocr_then_hip() -> None:
    amd = [gpu(i, u, "gfx90a", kind="rocm") for i, u in enumerate(("GPU-01", "GPU-02", "GPU-03"))]
    env = {"ROCR_VISIBLE_DEVICES": "GPU-03,GPU-01", "HIP_VISIBLE_DEVICES": "1"}
    assert uuids(plan.visible("rocm", amd, env)[0]) == ["GPU-01"]
    assert uuids(plan.visible("rocm", amd + GPUS, {})[0]) == ["GPU-01", "GPU-02", "GPU-03"]
    # without HIP_VISIBLE_DEVICES, HIP reads CUDA_VISIBLE_DEVICES the same way
    assert uuids(plan.visible("rocm", amd, {"CUDA_VISIBLE_DEVICES": "2"})[0]) == ["GPU-03"]


# --- the plan --------------------------------------------------------------------------------
def test_slots_take_devices_round_robin() -> None:
    assert plan.plan("cuda", 4, detected=GPUS[:2], env={}) == tuple(
        f"cuda:{u}" for u in (A, B, A, B)
    )
    assert plan.plan((f"cuda:{C}",), 3, detected=GPUS, env={}) == (f"cuda:{C}",) * 3
    # naming a device twice gives it twice the share
    twice = plan.plan((f"cuda:{A}", f"cuda:{A}", f"cuda:{B}"), 3, detected=GPUS, env={})
    assert twice == (f"cuda:{A}", f"cuda:{A}", f"cuda:{B}")


def test_the_outer_mask_bounds_the_plan() -> None:
    env = {"CUDA_VISIBLE_DEVICES": f"{C},{A}"}
    assert plan.plan("cuda", 3, detected=GPUS, env=env) == tuple(f"cuda:{u}" for u in (C, A, C))
    with pytest.raises(ValueError, match=f"devices names '{B}', which this host cannot use "):
        plan.plan((f"cuda:{B}",), 1, detected=GPUS, env=env)
    # without detection, the mask's uuids are all that is known, and they bound it too
    assert plan.plan("cuda", 2, detected=[], env=env) == (f"cuda:{C}", f"cuda:{A}")
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES="):
        plan.plan((f"cuda:{B}",), 1, detected=[], env=env)


def test_named_devices_are_taken_as_given_when_nothing_can_check_them() -> None:
    assert plan.plan((f"cuda:{A}", f"cuda:{B}"), 2, detected=[], env={}) == (
        f"cuda:{A}",
        f"cuda:{B}",
    )


def test_a_prefix_resolves_to_the_whole_uuid_when_unique() -> None:
    assert plan.plan(("cuda:GPU-bbbb",), 1, detected=GPUS, env={}) == (f"cuda:{B}",)
    with pytest.raises(ValueError, match="fits several devices"):
        plan.plan(("cuda:GPU-",), 1, detected=GPUS, env={})


def test_no_visible_device_says_why() -> None:
    notes = ("cuda: NVML: LibraryNotFound", "rocm: no KFD topology")
    with pytest.raises(ValueError, match="no cuda device is visible here: cuda: NVML: Library"):
        plan.plan("cuda", 2, detected=[], env={}, notes=notes)
    with pytest.raises(ValueError, match="with CUDA_VISIBLE_DEVICES=''"):
        plan.plan("cuda", 2, detected=GPUS, env={"CUDA_VISIBLE_DEVICES": ""})


# --- answers over a machine ----------------------------------------------------------------------
def machine(**kw: Any) -> hw.HardwareInfo:
    cpu = hw.CpuInfo(
        model="Fake CPU",
        arch="x86_64",
        logical=8,
        physical=4,
        affinity=tuple(range(8)),
        quota=None,
        flags=frozenset({"avx2", "avx512f", "fpu"}),
    )
    return hw.HardwareInfo(cpu=cpu, **kw)


def test_capabilities_have_the_same_keys_everywhere() -> None:
    bare, rich = machine(), machine(cuda=tuple(GPUS), mps=True)
    assert hw.capabilities(bare).keys() == hw.capabilities(rich).keys()
    assert hw.capabilities(bare)["avx512f"] and not hw.capabilities(bare)["amx_tile"]
    assert not hw.capabilities(bare)["cuda"] and hw.capabilities(rich)["cuda"]
    assert hw.capabilities(bare)["cpu"]


def test_select_with_fallback_takes_the_first_kind_here() -> None:
    many = machine(cuda=(gpu(0, A, free_gib=5), gpu(1, B, free_gib=30), gpu(2, C, free_gib=20)))
    assert hw.select_with_fallback(info=many).uuid == B  # the most free memory
    assert hw.select_with_fallback(info=many, min_free_mb=40_000).kind == "cpu"
    assert hw.select_with_fallback(["rocm", "mps", "cpu"], info=many).kind == "cpu"
    assert hw.select_with_fallback(["mps", "cpu"], info=machine(mps=True)).kind == "mps"
    cpu = hw.select_with_fallback(["cpu"], info=machine())
    assert (cpu.kind, cpu.name) == ("cpu", "Fake CPU")


def test_select_with_fallback_respects_the_mask() -> None:
    many = machine(cuda=(gpu(0, A, free_gib=5), gpu(1, B, free_gib=30)))
    chosen = select.select(many, ["cuda"], None, {"CUDA_VISIBLE_DEVICES": A})
    assert chosen.uuid == A


def test_select_with_fallback_refuses_what_it_cannot_do() -> None:
    with pytest.raises(LookupError, match="none of cuda, rocm is available here"):
        hw.select_with_fallback(["cuda", "rocm"], info=machine(notes=("cuda: none",)))
    with pytest.raises(ValueError, match="unknown kind 'cdua' \\(did you mean 'cuda'\\?\\)"):
        hw.select_with_fallback(["cdua"], info=machine())
    with pytest.raises(TypeError, match="pass \\['cuda'\\]"):
        hw.select_with_fallback("cuda", info=machine())
    with pytest.raises(ValueError, match="min_free_mb"):
        hw.select_with_fallback(info=machine(), min_free_mb=-1)


def test_identity_is_stable_and_leaves_out_what_changes() -> None:
    one = machine(cuda=(gpu(0, A, free_gib=5),), cuda_driver="550.54.15")
    other = machine(cuda=(gpu(0, B, free_gib=50),), cuda_driver="550.90.07")
    assert hw.identity(one) == hw.identity(other)  # same model, driver major, features
    ident = hw.identity(one)
    assert ident["cuda"] == {
        "driver_major": "550",
        "devices": [{"name": "NVIDIA A100", "compute_capability": "8.0"}],
    }
    assert ident["cpu"]["features"] == ["avx2", "avx512f"]
    assert ident["accelerator"] == "cuda"
    json.dumps(ident, sort_keys=True)  # JSON-ready
    assert hw.identity(one, instance=True)["cuda"]["devices"][0]["uuid"] == A
    assert hw.identity(one, instance=True) != hw.identity(other, instance=True)
