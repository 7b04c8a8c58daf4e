"""Shared memory over TCP, decided in the handshake (synchronous, no workers): the host id,
the host's offer and probe, and each reason a worker turns an offer down."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from snakepit_trio._shared import _samehost, _shm

pytestmark = pytest.mark.skipif(
    not _shm.available() or _samehost.host_id() is None, reason="needs /dev/shm and a host id"
)
TOKEN = "samehosttest"


@pytest.fixture
def offered() -> Iterator[tuple[dict[str, object], _samehost.Probe]]:
    made = _samehost.offer(TOKEN, "w1", 1 << 20)
    assert made is not None
    yield made
    made[1].remove()
    _shm.sweep(_shm.prefix(TOKEN))


def test_an_offer_on_this_host_is_accepted_with_the_probes_bytes(
    offered: tuple[dict[str, object], _samehost.Probe],
) -> None:
    offer, probe = offered
    assert offer["prefix"] == _shm.prefix(TOKEN, "w1") and offer["threshold"] == 1 << 20
    assert str(offer["probe"]).startswith(_shm.prefix(TOKEN))  # swept with the pool
    accepted, why = _samehost.accept(offer)
    assert accepted is not None and why == ""
    assert accepted.proof == probe.secret and accepted.threshold == 1 << 20
    assert accepted.segments.prefix == _shm.prefix(TOKEN, "w1")
    assert probe.matches({"shm": accepted.proof})
    probe.remove()
    assert not os.path.exists(os.path.join(_shm.SHM_DIR, probe.name))


@pytest.mark.parametrize("answer", [None, b"", b"x" * _samehost.PROBE_BYTES, "not bytes"], ids=repr)
def test_the_host_trusts_only_the_probes_own_bytes(
    offered: tuple[dict[str, object], _samehost.Probe], answer: object
) -> None:
    describe = {} if answer is None else {"shm": answer}
    assert not offered[1].matches(describe)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"host_id": "another"}, "another host"),
        ({"host_id": None}, "another host"),
        ({"probe": "snakepit-nothing-here"}, "cannot be opened here"),
        ({"probe": "../etc/passwd"}, "cannot be opened here"),
        ({"prefix": "/tmp/x-"}, "malformed"),
        ({"prefix": "other-"}, "malformed"),
        ({"prefix": "snakepit-" + "x" * 200}, "malformed"),
        ({"threshold": 0}, "malformed"),
        ({"threshold": True}, "malformed"),
        ({"probe": 3}, "malformed"),
    ],
)
def test_a_worker_turns_down_an_offer_saying_why(
    offered: tuple[dict[str, object], _samehost.Probe], change: dict[str, object], reason: str
) -> None:
    accepted, why = _samehost.accept({**offered[0], **change})
    assert accepted is None
    assert reason in why


def test_not_a_map_is_no_offer() -> None:
    assert _samehost.accept(None) == (None, "no offer")
    assert _samehost.accept(["x"]) == (None, "no offer")


def test_a_probe_of_another_user_is_not_opened(
    offered: tuple[dict[str, object], _samehost.Probe],
) -> None:
    # Open to others: as if another user made it under our name (attach's rule).
    os.chmod(os.path.join(_shm.SHM_DIR, offered[1].name), 0o644)
    accepted, why = _samehost.accept(offered[0])
    assert accepted is None and "not this user's" in why


def test_without_a_host_id_nothing_is_offered_or_accepted(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pathlib.Path,
    offered: tuple[dict[str, object], _samehost.Probe],
) -> None:
    monkeypatch.setattr(_samehost, "MACHINE_ID", str(tmp_path / "missing"))
    _samehost.host_id.cache_clear()
    try:
        assert _samehost.host_id() is None
        assert _samehost.offer(TOKEN, "w2", 1 << 20) is None
        assert _samehost.accept(offered[0]) == (
            None,
            "another host (its host id differs from this worker's)",
        )
    finally:
        _samehost.host_id.cache_clear()  # the real one again, once the patch is undone


def test_an_empty_id_file_is_no_host_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setattr(_samehost, "MACHINE_ID", str(tmp_path / "empty"))
    _samehost.host_id.cache_clear()
    try:
        assert _samehost.host_id() is None
    finally:
        _samehost.host_id.cache_clear()


def test_the_host_id_is_a_hash_of_the_boot_and_machine_ids(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    ids = []
    for machine in ("one", "two"):
        (tmp_path / machine).write_text(machine + "\n")
        monkeypatch.setattr(_samehost, "MACHINE_ID", str(tmp_path / machine))
        _samehost.host_id.cache_clear()
        ids.append(_samehost.host_id())
    _samehost.host_id.cache_clear()
    assert ids[0] != ids[1] and all(i is not None and len(i) == 32 for i in ids)
    assert not any("one" in str(i) or "two" in str(i) for i in ids)


def test_a_payload_made_for_segments_is_copied_inline_for_a_worker_elsewhere() -> None:
    import numpy as np

    from snakepit_trio._engine._payloads import Payloads
    from snakepit_trio._shared._codec import Outbound, decode, encode, segment_names
    from snakepit_trio._shared._segments import SegmentCache

    cache = SegmentCache(_shm.prefix(TOKEN, "host"))
    value = {"array": np.arange(1 << 18, dtype=np.float64), "blob": b"y" * (1 << 20), "n": 1}
    out = Outbound(cache, 1 << 16)
    try:
        payload = encode(value, what="args", limit=1 << 24, shm=out)
        assert len(segment_names(payload)) == 2
        inline = Payloads.inline(payload, "arguments of 'f'", 1 << 24)
        assert segment_names(inline) == []
        back = decode(inline, what="args")
        assert np.array_equal(back["array"], value["array"]) and back["blob"] == value["blob"]
    finally:
        out.release()
        _shm.sweep(_shm.prefix(TOKEN))


def test_a_payload_that_cannot_go_inline_is_sent_as_it_is_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from snakepit_trio._engine._payloads import Payloads

    assert Payloads.inline(b"\xc1", "arguments of 'f'", 1 << 20) == b"\xc1"  # not msgpack
    assert "arguments of 'f' cannot go inline" in caplog.text
