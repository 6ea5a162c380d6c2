"""LifecycleTable: what an idle key leaves behind against what is firing, what the collector
stops tracking, and every call against a model of the contract."""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from auptimate_core.backends.lifecycle import LifecycleTable
from auptimate_core.store import IDLE, LifecycleState, Transition


def test_forget_keeps_only_the_firing_states_of_keys_firing_for_a_rule() -> None:
    table = LifecycleTable()
    table.transition([
        Transition("p1", "a", True, 10, "t1"),
        Transition("p1", "b", True, 11, "t2"),
        Transition("p1", "b", False, 12, "t3"),
        Transition("p2", "a", True, 13, "t4"),
        Transition("p2", "a", False, 14, "t5"),
        Transition("p3", "b", True, 15, "t6"),
    ])
    table.forget(iter(["p1", "p2", "p9"]))  # any iterable; unknown keys are nothing to forget
    got = table.states([("p1", "a"), ("p1", "b"), ("p2", "a"), ("p3", "b")])
    assert got == {
        ("p1", "a"): LifecycleState(True, 10, "t1"),
        ("p1", "b"): IDLE,
        ("p2", "a"): IDLE,
        ("p3", "b"): LifecycleState(True, 15, "t6"),
    }
    assert table.firing("a") == frozenset({"p1"})
    assert table.firing("b") == frozenset({"p3"})


def test_forget_with_nothing_firing_drops_every_key() -> None:
    table = LifecycleTable()
    table.transition([Transition("p1", "a", True, 1), Transition("p1", "a", False, 2)])
    table.forget(["p1"])
    assert table.states([("p1", "a")]) == {("p1", "a"): IDLE}
    assert table._pairs == {}


def test_held_states_are_left_to_reference_counting() -> None:
    """The entries are plain tuples of atoms, in a plain tuple per key: after two collections
    the cyclic collector no longer tracks them, so many pools' states add nothing to later
    collections."""
    table = LifecycleTable()
    table.transition([Transition(f"p{i}", "spike", True, i, f"t{i}") for i in range(100)])
    table.transition([Transition(f"p{i}", "spike", False, 200 + i, "b", batch="b1")
                      for i in range(50)])
    for _ in range(2):  # a key's tuple of entries, then the entries: two collections
        gc.collect()
    assert not any(map(gc.is_tracked, table._pairs.values()))
    assert not any(map(gc.is_tracked, table._pairs))
    assert table.states([("p1", "spike")], batch="b1") == {
        ("p1", "spike"): LifecycleState(True, 1, "t1")}
    assert table.states([("p1", "spike")]) == {("p1", "spike"): LifecycleState(False, 201, "b")}


changes = st.lists(st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["a", "b"]),
                             st.booleans(), st.integers(0, 5), st.sampled_from([None, "t1", "t2"]),
                             st.sampled_from([None, "b1", "b2"])), max_size=30)


@given(changes)
def test_one_pair_switched_and_read_as_a_batch_of_one_would(script: list[Any]) -> None:
    """switch() and state_of() against transition() and states() of a batch of one, on two
    tables fed the same changes."""
    one, many = LifecycleTable(), LifecycleTable()
    for key, rule, firing, at, cause, batch in script:
        assert one.switch(key, rule, firing, at, cause, batch) == many.transition(
            [Transition(key, rule, firing, at, cause, batch)])[0]
        for pair in [("p", "a"), ("p", "b"), ("q", "a"), ("q", "b")]:
            assert one.state_of(*pair) == many.states([pair])[pair]
    assert one.firing("a") == many.firing("a") and one.firing("b") == many.firing("b")


class _Model:
    """The lifecycle as a dict per (key, rule), written from the contract."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], tuple[LifecycleState, str | None, LifecycleState]] = {}

    def switch(self, key: str, rule: str, firing: bool, at: int, cause: str | None,
               batch: str | None) -> bool:
        now, tag, then = self.held.get((key, rule), (IDLE, None, IDLE))
        if batch is not None and tag != batch:
            tag, then = batch, now
        if now.firing == firing:
            applied = cause is not None and now.since == at and now.cause == cause
        else:
            now, applied = LifecycleState(firing, at, cause), True
        self.held[(key, rule)] = (now, tag, then)
        return applied

    def state(self, key: str, rule: str, batch: str | None) -> LifecycleState:
        now, tag, then = self.held.get((key, rule), (IDLE, None, IDLE))
        return then if batch is not None and tag == batch else now

    def forget(self, keys: list[str]) -> None:
        for (key, rule), (now, _, _) in list(self.held.items()):
            if key in keys and not now.firing:  # a firing one is kept whole
                del self.held[(key, rule)]


steps = st.lists(st.one_of(
    st.tuples(st.just("switch"), st.sampled_from(["p", "q", "r"]), st.sampled_from(["a", "b"]),
              st.booleans(), st.integers(0, 5), st.sampled_from([None, "t1"]),
              st.sampled_from([None, "b1", "b2"])),
    st.tuples(st.just("forget"), st.lists(st.sampled_from(["p", "q", "r", "s"]), max_size=3)),
), max_size=40)


@given(steps)
def test_switch_states_and_forget_match_a_model(script: list[Any]) -> None:
    table, model = LifecycleTable(), _Model()
    for step in script:
        if step[0] == "switch":
            assert table.switch(*step[1:]) == model.switch(*step[1:])
        else:
            table.forget(step[1])
            model.forget(step[1])
        for key in "pqr":
            for rule in "ab":
                for batch in (None, "b1", "b2"):
                    assert table.states([(key, rule)], batch)[(key, rule)] == model.state(
                        key, rule, batch)
                assert table.state_of(key, rule) == model.state(key, rule, None)
        for rule in "ab":
            assert table.firing(rule) == frozenset(
                key for (key, r), (now, _, _) in model.held.items() if r == rule and now.firing)
