"""The ledger's values as the SQL tables' rows, and back (the tables are in
:mod:`auptimate_core.backends.sql.tables`).

Amounts are integers of ``10**-SCALE`` of the currency, read back at the currency's minor
unit; times are integer microseconds. A PostgreSQL write of many rows (the statement is
:func:`~auptimate_core.backends.sql.statements.append_sql`) passes each table's rows as a
JSON array of arrays, each a row's values in the order of its columns (:func:`append_params`),
and a batch's changes as one text of events (:func:`changes_params`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, TypeAlias

from ...domain import Pool, to_micros
from ...money import minor_digits
from ...pools.audit import AuditChain, Entry
from ...pools.events import LedgerEvent, PoolEvent
from ...pools.position import Amounts
from ...pools.repository import PoolRecord, Receipt
from ...store import from_units, to_units
from .statements import ENTRY_COLUMNS, HELD_COLUMNS, RECEIPT_COLUMNS
from .tables import SCALE, TOTALS

__all__ = ["Append", "amount_of", "amounts_in", "amounts_of", "append_params", "by_pool",
           "changes_params", "entry_row", "feed_row", "record_of", "single", "units_of"]

Append: TypeAlias = tuple[PoolRecord, Sequence[Entry], Mapping[str, Amounts], list[Receipt]]
"""What one ``append`` of a unit of work keeps: the pool's new record, its entries, the
holdings it changed and its receipts."""



@functools.cache
def _scale(currency: str | None) -> tuple[Decimal | None, int, int]:
    """The currency's minor unit (None for no currency), its exponent, and how many stored
    units make one of it (0 when a minor unit is finer than the stored units)."""
    if currency is None:
        return None, 0, 0
    digits = minor_digits(currency)
    step = 10 ** (SCALE - digits) if digits <= SCALE else 0
    return Decimal(1).scaleb(-digits), -digits, step


def _amount(units: int, currency: str | None) -> Decimal:
    unit, exponent, step = _scale(currency)
    units = int(units)
    if step and units % step == 0:  # whole minor units: read at the unit, no rounding to test
        return Decimal(units // step).scaleb(exponent)
    value = from_units(units)
    if unit is None:
        return value
    exact = value.quantize(unit)
    return exact if exact == value else value


def amount_of(units: int, currency: str | None) -> Decimal:
    """Stored units as an amount at the currency's minor unit; kept as is if that would round
    (a value edited in the database then fails the audit instead of being hidden)."""
    return _amount(units, currency)


def amounts_of(row: Any, currency: str, carry: bool = False, prefix: str = "") -> Amounts:
    """:func:`amounts_in` of a SQLAlchemy row."""
    return amounts_in(row._mapping, currency, carry, prefix)


def amounts_in(values: Mapping[str, Any], currency: str, carry: bool = False,
               prefix: str = "") -> Amounts:
    """The totals stored in the columns ``<prefix><name>`` of ``values`` (``carry`` too for
    a pool; zero for a member)."""
    return Amounts(_amount(values[prefix + "invested"], currency),
                   _amount(values[prefix + "refunded"], currency),
                   _amount(values[prefix + "fees"], currency),
                   _amount(values[prefix + "distributed"], currency),
                   _amount(values[prefix + "carry"] if carry else 0, currency))


def held_of(units: Sequence[int], currency: str) -> Amounts:
    """A member's totals from the stored units of :data:`~.tables.TOTALS`, in that order."""
    invested, refunded, fees, distributed = units
    return Amounts(_amount(invested, currency), _amount(refunded, currency),
                   _amount(fees, currency), _amount(distributed, currency),
                   _amount(0, currency))


def record_of(values: Mapping[str, Any]) -> PoolRecord:
    """A pool's record from its row's values."""
    currency = values["currency"]
    pool = Pool(values["id"], values["manager_id"], values["name"], currency)
    return PoolRecord(pool, int(values["head_seq"]), values["head_hash"],
                      amounts_in(values, currency, carry=True))


def units_of(totals: Amounts, names: Sequence[str]) -> dict[str, int]:
    """The stored units of the totals ``names``."""
    return {name: to_units(getattr(totals, name)) for name in names}


def entry_row(entry: Entry) -> tuple[Any, ...]:
    """An entry's values in the order of :data:`~.statements.ENTRY_COLUMNS`."""
    return (entry.seq, entry.kind, entry.investor_id, _units(entry.amount),
            to_micros(entry.at), entry.actor, entry.detail, entry.prev_hash, entry.hash)


def feed_row(event: LedgerEvent) -> tuple[str, str | None, str]:
    """The feed row's ``type``, ``pool_id`` and ``event`` (JSON text) of ``event``."""
    pool_id = event.pool_id if isinstance(event, PoolEvent) else None
    return type(event).__name__, pool_id, event.to_json()


def changes_params(events: Sequence[LedgerEvent]) -> dict[str, str]:
    """The parameters of a batch's changes: ``events``, the events' JSON texts separated by
    the record separator (U+001E, which JSON text never holds unescaped), and ``changes``, a
    JSON array of each one's ``[type, pool id]``."""
    texts, kinds = [], []
    for event in events:
        kind, pool_id, text = feed_row(event)
        texts.append(text)
        kinds.append((kind, pool_id))
    return {"events": _SEPARATOR.join(texts), "changes": _dumps(kinds)}


def by_pool(appends: list[Append], most: int | None = None) -> list[Append]:
    """The appends of each pool as one (its last record, every entry in order, each holding's
    last value, every receipt), pools in the order first appended; with ``most``, a pool's
    appends in runs of at most ``most``, each run as one, in order."""
    if len(appends) < 2:
        return appends
    pools: dict[str, list[Append]] = {}
    for append in appends:
        pools.setdefault(append[0].pool.id, []).append(append)
    merged: list[Append] = []
    for found in pools.values():
        step = len(found) if most is None else most
        merged.extend(_merged(found[start:start + step]) for start in range(0, len(found), step))
    return merged


def _merged(appends: list[Append]) -> Append:
    if len(appends) == 1:
        return appends[0]
    entries: list[Entry] = []
    holdings: dict[str, Amounts] = {}
    receipts: list[Receipt] = []
    for _, more, held, kept in appends:
        entries.extend(more)
        holdings.update(held)
        receipts.extend(kept)
    return appends[-1][0], entries, holdings, receipts


def single(record: PoolRecord, entries: Sequence[Entry], holdings: Mapping[str, Amounts],
           receipts: list[Receipt]) -> bool:
    """Whether an append has at most one row of each table (its statement takes scalars)."""
    return len(entries) == 1 and len(holdings) <= 1 and len(receipts) <= 1


def receipt_marks(chain: AuditChain, receipts: Sequence[Receipt],
                  entries: Sequence[Entry]) -> list[str]:
    """The marks of ``receipts``, each bound to the hash of its first entry (in ``entries``)."""
    if not receipts:
        return []
    hashes = {e.seq: e.hash for e in entries}
    return [chain.receipt_mark(r.key, r.fingerprint, r.action, r.pool_id, r.first_seq, r.count,
                               hashes[r.first_seq]) for r in receipts]


def append_params(record: PoolRecord, entries: Sequence[Entry], holdings: Mapping[str, Amounts],
                  receipts: list[Receipt], chain: AuditChain, one: bool = False
                  ) -> dict[str, Any]:
    """The parameters of the PostgreSQL append: the pool's new head, its mark and totals, and
    the rows of the entries, holdings and receipts (with ``one``, the only row's values, None
    for a table without one; otherwise each table's rows as a JSON array of arrays)."""
    params: dict[str, Any] = {
        "pid": record.pool.id, "old_seq": record.head_seq - len(entries),
        "new_seq": record.head_seq, "head_hash": record.head_hash,
        "head_mark": chain.head_mark(record.pool.id, record.head_seq, record.head_hash),
        **units_of(record.totals, (*TOTALS, "carry"))}
    marks = receipt_marks(chain, receipts, entries)
    if one:
        rows = (("e", ENTRY_COLUMNS, [entry_row(e) for e in entries]),
                ("m", HELD_COLUMNS, [_held_row(i, held) for i, held in holdings.items()]),
                ("r", RECEIPT_COLUMNS, [_receipt_row(r, m) for r, m in zip(receipts, marks)]))
        for prefix, columns, values in rows:
            for n, column in enumerate(columns):
                params[f"{prefix}_{column}"] = values[0][n] if values else None
        return params
    params["e_rows"] = _dumps([entry_row(e) for e in entries])
    params["m_rows"] = _dumps([_held_row(i, held) for i, held in sorted(holdings.items())])
    params["r_rows"] = _dumps([_receipt_row(r, m) for r, m in zip(receipts, marks, strict=True)])
    return params


def _held_row(investor_id: str, held: Amounts) -> tuple[Any, ...]:
    return (investor_id, _units(held.invested), _units(held.refunded), _units(held.fees),
            _units(held.distributed))


def _receipt_row(r: Receipt, mark: str) -> tuple[Any, ...]:
    return (r.key, r.fingerprint, r.action, r.first_seq, r.count, mark)


def _units(amount: Decimal) -> int:
    """:func:`~auptimate_core.store.to_units` of ``amount``, without its rounding when the
    amount has no more decimals than the stored units (every amount the ledger keeps)."""
    units = amount.scaleb(SCALE)
    whole = int(units)
    return whole if whole == units else to_units(amount)


_SEPARATOR: Final = "\x1e"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
