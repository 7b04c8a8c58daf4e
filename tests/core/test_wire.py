"""Core layer (synchronous): batch splitting shared by host and worker."""

from __future__ import annotations

from snakepit_trio._shared import _frames as w


def test_split_batches_caps_frames_and_bytes_and_keeps_order() -> None:
    frames = [[w.RESULT, i, b"x" * 10] for i in range(w.MAX_BATCH_FRAMES * 2 + 3)]
    batches = w.split_batches(frames, lambda f: len(f[2]))
    assert [len(b) for b in batches] == [w.MAX_BATCH_FRAMES, w.MAX_BATCH_FRAMES, 3]
    assert [f for b in batches for f in b] == frames

    big = [[w.RESULT, i, b""] for i in range(5)]
    sizes = {1: w.MAX_BATCH_BYTES, 3: w.MAX_BATCH_BYTES}
    batches = w.split_batches(big, lambda f: sizes.get(f[1], 0))
    assert [[f[1] for f in b] for b in batches] == [[0, 1], [2, 3], [4]]
    assert w.split_batches([], lambda f: 0) == []
