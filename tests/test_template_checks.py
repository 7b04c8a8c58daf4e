"""The template's own checks, run in-process (the end-to-end cases are in e2e/test_zygote.py)."""

from __future__ import annotations

import os

import pytest

from snakepit_trio.worker import _zygote


def test_no_pidfd_means_no_template(monkeypatch: pytest.MonkeyPatch) -> None:
    # Linux before 5.3, or a seccomp profile that forbids it: the host could not watch forks.
    def refuse(pid: int) -> int:
        raise OSError(38, os.strerror(38))

    monkeypatch.setattr(os, "pidfd_open", refuse)
    reason = _zygote.preload("tests.adapters.forking:Lineage")
    assert reason is not None and "pidfd_open is not available" in reason
