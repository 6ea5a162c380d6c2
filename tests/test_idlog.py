"""The columnar store's id log against a plain list of (id, key code, value) entries.

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
batch = st.lists(st.tuples(ids, st.integers(0, 2)), max_size=12)  # (id, key code)
operation = st.one_of(
    st.tuples(st.just("add"), batch),
    st.tuples(st.just("find"), batch),
    st.tuples(st.just("keep"), st.integers(0, 2**32)),
    st.tuples(st.just("recode"), st.permutations([0, 1, 2])),
)
Entry = tuple[str, int, int]  # id, key code, value


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(idlog, "_SMALL_CHUNK", 3)  # chunks of a few ids: many of them
    monkeypatch.setattr(idlog, "_FEW", 2)  # the sorted lookup from three candidates on
    monkeypatch.setattr(idlog, "_MIN_BITS", 128)  # a two-word filter: soon full, rebuilt
    yield


def model_find(entries: list[Entry], wanted: list[tuple[str, int]]) -> dict[int, int]:
    """The value of the newest entry of each wanted id and key code."""
    found = {}
    for position, (name, code) in enumerate(wanted):
        for held, held_code, value in reversed(entries):
            if (held, held_code) == (name, code):
                found[position] = value
                break
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=30))
def test_log_matches_a_list_of_entries(operations: list[tuple[str, object]]) -> None:
    log = IdLog()
    entries: list[Entry] = []
    serial = 0
    for kind, arg in operations:
        if kind == "add":
            pairs = list(arg)  # type: ignore[call-overload]
            values = list(range(serial, serial + len(pairs)))
            serial += len(pairs)
            log.add([name for name, _ in pairs], np.array([c for _, c in pairs], np.int64),
                    np.array(values, dtype=np.int64))
            entries += [(name, code, v) for (name, code), v in zip(pairs, values)]
        elif kind == "find":
            wanted = list(arg)  # type: ignore[call-overload]
            codes = np.array([code for _, code in wanted], np.int64)
            assert log.find([name for name, _ in wanted], codes) == model_find(entries, wanted)
        elif kind == "recode":
            mapping = list(arg)  # type: ignore[call-overload]
            log.recode(np.array(mapping, np.int64))
            entries = [(name, mapping[code], value) for name, code, value in entries]
        else:
            seed = int(arg)  # type: ignore[call-overload]
            keep = np.array([(seed >> (i % 32)) & 1 == 1 for i in range(len(entries))],
                            dtype=np.bool_)
            log.keep_only(keep)
            entries = [entry for entry, kept in zip(entries, keep.tolist()) if kept]
        assert len(log) == len(entries)
        assert log.names() == [name for name, _, _ in entries]
        assert log.codes().tolist() == [code for _, code, _ in entries]
        assert log.values().tolist() == [value for _, _, value in entries]


def test_probes_given_by_the_caller_are_those_it_would_compute() -> None:
    log = IdLog()
    names = [f"id-{i}" for i in range(1_000)]
    codes = np.zeros(1_000, np.int64)
    h = idlog.hashes(names)
    probes = log.probes(h)
    assert log.find(names, codes, h, probes) == {}
    log.add(names, codes, np.arange(1_000, dtype=np.int64), h, probes)
    assert bool(log.maybe(h).all())
    again = log.find(names, codes, h, log.probes(h))
    assert again == {i: i for i in range(1_000)}
    assert log.find(names, codes + 1, h, probes) == {}  # the same ids, another key
