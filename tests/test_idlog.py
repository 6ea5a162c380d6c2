"""The columnar store's id log against a plain list of (id, value) entries.

The log's chunks, its filter's rebuilds and its sorted lookup only show on long logs; the tests
shrink their thresholds so that hypothesis's short examples reach every branch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core.windows import idlog
from auptimate_core.windows.idlog import IdLog

ids = st.sampled_from([f"t{i}" for i in range(40)])
batch = st.lists(ids, max_size=12)
operation = st.one_of(
    st.tuples(st.just("add"), batch),
    st.tuples(st.just("find"), batch),
    st.tuples(st.just("keep"), st.integers(0, 2**32)),
)


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(idlog, "_SMALL_CHUNK", 3)  # chunks of a few ids: many of them
    monkeypatch.setattr(idlog, "_FEW", 2)  # the sorted lookup from three candidates on
    monkeypatch.setattr(idlog, "_MIN_BITS", 128)  # a two-word filter: soon full, rebuilt
    yield


def model_find(entries: list[tuple[str, int]], wanted: list[str], odd_only: bool
               ) -> dict[int, int]:
    """The newest entry of each wanted id (with an odd value, if ``odd_only``)."""
    found = {}
    for position, name in enumerate(wanted):
        for held, value in reversed(entries):
            if held == name and (value % 2 == 1 or not odd_only):
                found[position] = value
                break
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=30))
def test_log_matches_a_list_of_entries(operations: list[tuple[str, object]]) -> None:
    log = IdLog()
    entries: list[tuple[str, int]] = []
    serial = 0
    for kind, arg in operations:
        if kind == "add":
            names = list(arg)  # type: ignore[call-overload]
            values = list(range(serial, serial + len(names)))
            serial += len(names)
            log.add(names, np.array(values, dtype=np.int64))
            entries += zip(names, values)
        elif kind == "find":
            wanted = list(arg)  # type: ignore[call-overload]
            assert log.find(wanted, lambda _i, _v: True) == model_find(entries, wanted, False)
            odd = log.find(wanted, lambda _i, value: value % 2 == 1)
            assert odd == model_find(entries, wanted, True)
        else:
            seed = int(arg)  # type: ignore[call-overload]
            keep = np.array([(seed >> (i % 32)) & 1 == 1 for i in range(len(entries))],
                            dtype=np.bool_)
            log.keep_only(keep)
            entries = [entry for entry, kept in zip(entries, keep.tolist()) if kept]
        assert len(log) == len(entries)
        assert log.names() == [name for name, _ in entries]
        assert log.values().tolist() == [value for _, value in entries]


def test_probes_given_by_the_caller_are_those_it_would_compute() -> None:
    log = IdLog()
    names = [f"id-{i}" for i in range(1_000)]
    h = idlog.hashes(names)
    probes = log.probes(h)
    assert log.find(names, lambda _i, _v: True, h, probes) == {}
    log.add(names, np.arange(1_000, dtype=np.int64), h, probes)
    assert bool(log.maybe(h).all())
    again = log.find(names, lambda _i, _v: True, h, log.probes(h))
    assert again == {i: i for i in range(1_000)}
