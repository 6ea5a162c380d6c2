"""The pace of a feed follower (:class:`~auptimate_core.pools.feed.Pace`), the one place both
follow loops (sync and asyncio) take their waits and their end from."""

from __future__ import annotations

from auptimate_core.pools.feed import WAIT_SLICE, Pace


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_read_is_followed_by_another_at_once() -> None:
    clock = Clock()
    pace = Pace(timeout=1.0, batch=3, now=clock)
    clock.now += 5  # long past the timeout: a full read still reads on
    assert pace.after(3) == 0.0


def test_the_timeout_counts_from_the_last_change_found() -> None:
    clock = Clock()
    pace = Pace(timeout=10.0, batch=3, now=clock)
    clock.now += 4
    assert pace.after(0) == 6.0  # nothing yet: 4 of the 10 seconds gone
    clock.now += 5
    assert pace.after(2) == 10.0  # news: the whole timeout again
    clock.now += 9.5
    assert pace.after(0) == 0.5
    clock.now += 0.5
    assert pace.after(0) is None


def test_a_zero_timeout_stops_once_caught_up() -> None:
    pace = Pace(timeout=0.0, batch=3, now=Clock())
    assert pace.after(3) == 0.0
    assert pace.after(2) is None


def test_without_a_timeout_a_wait_is_one_slice_and_it_never_stops() -> None:
    clock = Clock()
    pace = Pace(timeout=None, batch=3, now=clock)
    for _ in range(3):
        clock.now += 10 * WAIT_SLICE
        assert pace.after(0) == WAIT_SLICE


def test_a_long_timeout_is_waited_in_slices() -> None:
    pace = Pace(timeout=10 * WAIT_SLICE, batch=3, now=Clock())
    assert pace.after(0) == WAIT_SLICE
