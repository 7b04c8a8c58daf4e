"""Shared-memory segments (synchronous, no workers): filled through their descriptor, reused
once free, and neither lost nor left behind by a fill that fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from snakepit_trio._shared import _shm
from snakepit_trio._shared._segments import SegmentCache

pytestmark = pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")


@pytest.fixture
def cache() -> Iterator[SegmentCache]:
    made = SegmentCache(_shm.prefix("segmenttest", "host"))
    yield made
    for name in made.free_names() + made.out_names():
        _shm.unlink(name)


def _content(name: str, size: int) -> bytes:
    with _shm.attach(name, size) as mapping:
        return bytes(mapping)


def _on_disk(cache: SegmentCache) -> list[str]:
    return sorted(n for n in os.listdir(_shm.SHM_DIR) if n.startswith(cache.prefix))


def test_a_segment_is_filled_through_its_descriptor_and_reused_once_free(
    cache: SegmentCache,
) -> None:
    def fill(fd: int) -> None:
        _shm.write_all(fd, memoryview(b"head"))
        _shm.write_all(fd, memoryview(b"-tail"), offset=4)

    name = cache.put_with(9, fill)
    assert _content(name, 9) == b"head-tail"
    cache.done([name])
    assert cache.free_names() == [name]
    again = cache.put(memoryview(b"NEW"))
    assert again == name and cache.reused == 1
    assert _content(name, 9) == b"NEWd-tail"  # the start rewritten, the rest as it was


class _Broken(Exception):
    pass


def _broken(fd: int) -> None:
    _shm.write_all(fd, memoryview(b"half"))
    raise _Broken


def test_a_fill_that_fails_removes_a_new_segment(cache: SegmentCache) -> None:
    with pytest.raises(_Broken):
        cache.put_with(4096, _broken)
    assert _on_disk(cache) == [] and cache.out_names() == []


def test_a_fill_that_fails_leaves_a_free_segment_free(cache: SegmentCache) -> None:
    name = cache.put(memoryview(b"x" * 4096))
    cache.done([name])
    with pytest.raises(_Broken):
        cache.put_with(4096, _broken)
    assert cache.free_names() == [name] and cache.out_names() == []
    assert _on_disk(cache) == [name]
    assert cache.put(memoryview(b"y" * 4096)) == name  # still reused


def test_remove_all_unlinks_free_and_lent_segments(cache: SegmentCache) -> None:
    lent = cache.put(memoryview(b"lent"))
    cache.sent([lent], "host")
    free = cache.put(memoryview(b"free"))
    cache.done([free])
    assert set(_on_disk(cache)) == {lent, free}
    with _shm.attach(lent, 4) as mapping:  # a receiver's mapping outlives the name
        cache.remove_all()
        assert bytes(mapping) == b"lent"
    assert _on_disk(cache) == []
    assert cache.free_names() == cache.out_names() == []
