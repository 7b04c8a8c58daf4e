"""Unit (pure): the environment a worker's placement becomes (device masks, thread
variables, who wins), as the host writes it and as a worker reads it back."""

from __future__ import annotations

import pytest

from snakepit_trio._shared._placement import (
    DEVICE,
    THREAD_VARS,
    THREADS,
    apply,
    device_env,
    library_threads,
    template_thread_env,
    thread_env,
)
from snakepit_trio._supervision._placement import Placement
from snakepit_trio.worker import placement

A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"


def test_the_pool_sets_every_thread_variable_the_user_left_unset() -> None:
    env = thread_env(4, {})
    assert {var: env[var] for var in THREAD_VARS} == dict.fromkeys(THREAD_VARS, "4")
    assert env[THREADS] == "4"


def test_the_users_variable_wins_and_so_does_what_libraries_fall_back_to() -> None:
    env = thread_env(4, {"OMP_NUM_THREADS": "2", "VECLIB_MAXIMUM_THREADS": "8"})
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["VECLIB_MAXIMUM_THREADS"] == "8"
    # These fall back to OMP_NUM_THREADS: set, they would override the user's 2.
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        assert env[var] is None
    assert thread_env(4, {"GOTO_NUM_THREADS": "3"})["OPENBLAS_NUM_THREADS"] is None
    assert thread_env(4, {"MKL_NUM_THREADS": "1"})["OPENBLAS_NUM_THREADS"] == "4"


def test_the_template_runs_one_thread_per_library() -> None:
    assert template_thread_env() == dict.fromkeys(THREAD_VARS, "1")


def test_device_variables() -> None:
    assert device_env(f"cuda:{A}") == {"CUDA_VISIBLE_DEVICES": A, DEVICE: f"cuda:{A}"}
    rocm = device_env("rocm:GPU-0123456789abcdef")
    assert rocm["ROCR_VISIBLE_DEVICES"] == "GPU-0123456789abcdef"
    # indices into the ROCR set would name nothing once it holds one device
    assert rocm["HIP_VISIBLE_DEVICES"] is None and rocm["CUDA_VISIBLE_DEVICES"] is None
    assert device_env(None) == {DEVICE: None}


def test_apply_sets_and_removes() -> None:
    env = {"KEEP": "1", "DROP": "2"}
    apply(env, {"DROP": None, "NEW": "3", "ABSENT": None})
    assert env == {"KEEP": "1", "NEW": "3"}


@pytest.mark.parametrize(
    ("library", "env", "threads"),
    [
        ("openblas", {"OPENBLAS_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, 3),
        ("openblas", {"OMP_NUM_THREADS": "5"}, 5),
        ("openblas", {"GOTO_NUM_THREADS": "6", "OMP_NUM_THREADS": "5"}, 6),
        ("mkl", {"MKL_NUM_THREADS": "2"}, 2),
        ("openmp", {"OMP_NUM_THREADS": "4,2"}, 4),  # one count per nesting level
        ("openmp", {"OMP_NUM_THREADS": "many"}, None),
        ("openmp", {"OMP_NUM_THREADS": "0"}, None),
        ("blis", {}, None),
        ("flexiblas", {"OMP_NUM_THREADS": "4"}, None),  # a library we do not know
    ],
)
def test_what_each_library_reads(library: str, env: dict[str, str], threads: int | None) -> None:
    assert library_threads(library, env) == threads


def test_a_slot_placement_and_the_template_s() -> None:
    pinned = Placement(devices=(f"cuda:{A}", "cuda:GPU-b"), threads=2, given={})
    assert pinned.device(0) == f"cuda:{A}" and pinned.device(3) == "cuda:GPU-b"
    slot = pinned.worker(2)
    assert slot["CUDA_VISIBLE_DEVICES"] == A and slot[DEVICE] == f"cuda:{A}"
    assert slot["OMP_NUM_THREADS"] == "2" and slot[THREADS] == "2"
    template = pinned.template()
    assert template[DEVICE] is None and template[THREADS] is None
    assert template["OPENBLAS_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in template  # the template keeps the host's mask
    free = Placement()
    assert free.device(0) is None
    assert free.worker(0) == {DEVICE: None, THREADS: None}  # none inherited from a worker
    assert free.template() == {DEVICE: None, THREADS: None}


def test_a_worker_reads_its_placement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEVICE, raising=False)
    monkeypatch.delenv(THREADS, raising=False)
    assert placement() == placement().__class__(None, None, None, None)
    monkeypatch.setenv(DEVICE, f"cuda:{A}")
    monkeypatch.setenv(THREADS, "3")
    got = placement()
    assert (got.device, got.kind, got.uuid, got.threads) == (f"cuda:{A}", "cuda", A, 3)
    monkeypatch.setenv(THREADS, "x")
    assert placement().threads is None
