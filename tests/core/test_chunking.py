"""Core layer (synchronous): the size of a map's next chunk under ``chunksize="auto"``.

Run times and byte counts are plain numbers given to the sizer, never measured here. A
hypothesis state machine takes chunks at the current size and reports them in any order, as
a map's lanes do.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from snakepit_trio._core._chunking import LARGEST, TARGET, ChunkSizer

items_ = st.integers(min_value=0, max_value=5000)
times = st.one_of(
    st.floats(min_value=0, max_value=1e4),
    st.sampled_from([0.0, math.inf, math.nan, -1.0, 1e-12]),
)
sizes = st.integers(min_value=-1, max_value=1 << 40)


def fits(cost: float, nbytes: float, sizer: ChunkSizer) -> int:
    """What the module's rules say fits, at a cost per item (seconds, bytes)."""
    by_time = sizer.target / cost if cost > 0 else math.inf
    by_bytes = sizer.byte_budget / nbytes if nbytes > 0 else math.inf
    return max(1, int(min(by_time, by_bytes, sizer.largest)))


def test_the_first_chunk_is_one_item_and_cheap_items_double_it() -> None:
    sizer = ChunkSizer()
    assert sizer.size == 1
    assert sizer.ran(1, 1e-6, 20) == 2
    assert sizer.ran(2, 2e-6, 40) == 4
    assert sizer.ran(4, 0.0, 80) == 8  # too quick to see: cheap
    for _ in range(20):
        sizer.ran(sizer.size, sizer.size * 1e-6, sizer.size * 20)
    assert sizer.size == LARGEST


def test_after_slow_items_fast_chunks_grow_only_to_what_the_mix_fits() -> None:
    sizer = ChunkSizer(size=64)
    sizer.ran(64, 64 * 1e-6, 64)  # 1 us an item
    assert sizer.ran(8, 0.05, 8) == 1  # a chunk with a slow item: 6.25 ms an item
    # Fast chunks again: twice their items each, but only what fits at the recent cost.
    sizes = [sizer.ran(sizer.size, sizer.size * 1e-6, sizer.size) for _ in range(40)]
    # Recent cost: 1.0, 0.80, 0.64, 0.51 ms an item; alone, doubling would give 2, 4, 8, 16.
    assert sizes[:4] == [2, 4, 7, 9]
    assert sizes == sorted(sizes) and sizes[-1] == LARGEST  # the slow one is forgotten


def test_slow_items_shrink_the_size_at_once() -> None:
    sizer = ChunkSizer(size=512)
    # 512 items in 0.1 s: 195 us each, 25 fit in 5 ms.
    assert sizer.ran(512, 0.1, 1000) == int(512 * TARGET / 0.1) == 25
    assert sizer.ran(10, 1.0, 100) == 1  # one item alone takes longer than the target
    assert sizer.ran(1, 1.0, 10) == 1


def test_the_byte_budget_bounds_the_size() -> None:
    sizer = ChunkSizer(size=64, byte_budget=1000)
    assert sizer.ran(64, 1e-6, 64 * 100) == 10  # 100 bytes an item: 10 fit in 1000
    assert sizer.ran(10, 1e-6, 10 * 5000) == 1  # one item alone is over the budget


def test_a_failure_starts_again_from_one_and_too_large_halves() -> None:
    sizer = ChunkSizer(size=300)
    assert sizer.failed() == 1
    sizer.size = 300
    assert sizer.too_large(300) == 150
    assert sizer.too_large(1) == 1
    sizer.size = 8
    assert sizer.too_large(100) == 8  # an older, larger chunk: the size is already smaller


def test_a_report_of_nothing_or_of_a_meaningless_time_changes_nothing() -> None:
    sizer = ChunkSizer(size=16)
    assert sizer.ran(0, 1.0, 10) == 16
    assert sizer.ran(16, math.nan, 10) == 16
    assert sizer.ran(16, -0.5, 10) == 16
    assert sizer.ran(16, 0.001, -1) == 16
    assert sizer.ran(16, math.inf, 10) == 16
    assert sizer.seconds is None  # and nothing was averaged


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("ran"), items_, times, sizes),
            st.tuples(st.just("failed")),
            st.tuples(st.just("too_large"), items_),
        ),
        max_size=60,
    ),
    st.integers(min_value=1, max_value=4096),
)
def test_the_size_stays_within_bounds_and_grows_at_most_twofold(
    events: list[tuple[object, ...]], largest: int
) -> None:
    sizer = ChunkSizer(largest=largest)
    for event in events:
        before = sizer.size
        if event[0] == "ran":
            _, items, run_time, size = event
            assert isinstance(items, int) and isinstance(run_time, float)
            assert isinstance(size, int)
            after = sizer.ran(items, run_time, size)
            assert after <= max(before, 2 * items)  # never more than twice what was measured
        elif event[0] == "failed":
            after = sizer.failed()
            assert after == 1
        else:
            items = event[1]
            assert isinstance(items, int)
            after = sizer.too_large(items)
            assert after <= max(1, items // 2) and after <= before
        assert after == sizer.size and 1 <= after <= largest


@given(
    st.integers(min_value=1, max_value=LARGEST),
    st.floats(min_value=1e-9, max_value=10.0),
    st.integers(min_value=0, max_value=10_000_000),
)
def test_a_shrink_lands_on_what_fits_the_target_and_budget(
    before: int, cost: float, nbytes: int
) -> None:
    """The size after a report is never more than what the report says fits."""
    sizer = ChunkSizer(size=before)
    after = sizer.ran(before, before * cost, before * nbytes)
    assert after <= fits(cost, nbytes, sizer)
    if after > 1:
        assert after * cost <= TARGET * (1 + 1e-9)
        assert after * nbytes <= sizer.byte_budget


@given(
    st.floats(min_value=0.0, max_value=0.1),
    st.integers(min_value=0, max_value=1 << 22),
    st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40),
)
def test_under_constant_costs_the_size_never_shrinks_and_reaches_what_fits(
    cost: float, nbytes: int, stale: list[float]
) -> None:
    """Each report is of a chunk taken at some earlier size (``stale`` picks which); every
    item costs ``cost`` seconds and ``nbytes`` bytes."""
    sizer = ChunkSizer()
    goal = fits(cost, nbytes, sizer)
    taken = [sizer.size]
    for pick in stale:
        chunk = taken[int(pick * (len(taken) - 1))]
        before = sizer.size
        after = sizer.ran(chunk, chunk * cost, chunk * nbytes)
        assert before <= after <= goal
        taken.append(after)
    # Fresh reports (of chunks of the current size) get there within log2(largest) steps.
    for _ in range(LARGEST.bit_length()):
        sizer.ran(sizer.size, sizer.size * cost, sizer.size * nbytes)
    assert sizer.size == goal


class Lanes(RuleBasedStateMachine):
    """Chunks taken at the size of the moment and reported in any order, by items that cost
    ``cost`` each until the costs change."""

    def __init__(self) -> None:
        super().__init__()
        self.sizer = ChunkSizer()
        self.cost = 1e-6
        self.out: list[int] = []  # chunks taken, not yet reported

    @rule()
    def take(self) -> None:
        self.out.append(self.sizer.size)

    @precondition(lambda self: self.out)
    @rule(pick=st.integers(min_value=0))
    def report(self, pick: int) -> None:
        chunk = self.out.pop(pick % len(self.out))
        before = self.sizer.size
        after = self.sizer.ran(chunk, chunk * self.cost, chunk * 8)
        goal = fits(self.cost, 8, self.sizer)
        if before <= goal:
            assert before <= after <= min(goal, max(before, 2 * chunk))
        else:  # the costs rose since the size was set: it drops to what fits now
            assert after == goal

    @rule(cost=st.sampled_from([0.0, 1e-6, 1e-4, 1e-3, 0.01, 1.0]))
    def change_costs(self, cost: float) -> None:
        self.cost = cost

    @rule()
    def fail(self) -> None:
        assert self.sizer.failed() == 1

    @invariant()
    def within_bounds(self) -> None:
        assert 1 <= self.sizer.size <= LARGEST


TestLanes = Lanes.TestCase
