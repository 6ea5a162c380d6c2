"""Wire the alert engine to an application's own SQLAlchemy model, on SQLite.

The application keeps its payments in its own table, with its own column names (the brief's
``syndicate_id``, amounts in integer cents, a ``created_at`` column). One call,
``watch_model``, sends every committed new row through an AlertEngine: rows are handed over
after the commit, never before it, so a rolled-back payment raises nothing.

    python examples/sqlalchemy_observer.py [--db sqlite:///payments.db]

Without ``--db`` the database is a file in a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, CollectingSink, SpikeRule, ThresholdRule
from auptimate_core.integrations.sqlalchemy import watch_model


class Base(DeclarativeBase):
    pass


class Payment(Base):
    """The application's model: nothing in it knows about auptimate_core."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    investor_id: Mapped[str] = mapped_column(sa.String(64))
    syndicate_id: Mapped[str] = mapped_column(sa.String(64))
    amount_cents: Mapped[int]  # integer minor units: exact on every database, SQLite included
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


def to_transaction(row: Payment) -> Transaction:
    """How a Payment row reads as a Transaction (called once per new row, at flush time)."""
    return Transaction(
        id=f"payment-{row.id}",
        investor_id=row.investor_id,
        pool_id=row.syndicate_id,
        amount=Decimal(row.amount_cents).scaleb(-2),
        timestamp=row.created_at,
    )


def pay(session: Session, investor: str, pool: str, amount: str, at: datetime) -> None:
    cents = int(Decimal(amount) * 100)
    session.add(Payment(investor_id=investor, syndicate_id=pool, amount_cents=cents,
                        created_at=at))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a SQLAlchemy URL (default: SQLite in a temporary dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'payments.db'}"
        run(url)


def run(url: str) -> None:
    db = sa.create_engine(url)
    Base.metadata.create_all(db)
    Sessions = sessionmaker(db)

    alerts = CollectingSink()
    engine = AlertEngine(
        rules=[ThresholdRule(limit=Decimal("250000")),
               SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1),
                         factor=10, min_count=5)],
        sinks=[alerts, lambda alert: print(f"  ALERT {alert.rule} {alert.state}: "
                                           f"{alert.message}")],
    )
    watch = watch_model(Sessions, Payment, engine, convert=to_transaction)

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    print("1. Ordinary payments, one commit each: no alert")
    for i in range(4):
        with Sessions() as session:
            pay(session, f"inv-{i}", "fund-a", "1200.00", t0 + timedelta(minutes=10 * i))
            session.commit()

    print("2. A payment of 400,000 that is rolled back: no alert, it never happened")
    with Sessions() as session:
        pay(session, "inv-9", "fund-a", "400000.00", t0 + timedelta(minutes=45))
        session.flush()  # the row has an id now, but the transaction is not committed
        session.rollback()

    print("3. The same payment, committed: a threshold alert, after the commit")
    with Sessions() as session:
        pay(session, "inv-9", "fund-a", "400000.00", t0 + timedelta(minutes=46))
        session.commit()

    print("4. Six payments into fund-b within 30 seconds, in one commit: a spike")
    burst = t0 + timedelta(hours=2)
    with Sessions() as session:
        for i in range(6):
            pay(session, f"inv-{i}", "fund-b", "500.00", burst + timedelta(seconds=5 * i))
        session.commit()

    print("5. Time passes with no payment into fund-b: the spike resolves")
    engine.evaluate(burst + timedelta(minutes=5))

    watch.remove()
    with Sessions() as session:
        stored = session.scalar(sa.select(sa.func.count()).select_from(Payment))
    kinds = [(a.rule, a.state) for a in alerts]
    print(f"\n{stored} payments stored; alerts: {kinds}")
    assert kinds == [("threshold", "firing"), ("spike", "firing"), ("spike", "resolved")], kinds
    assert stored == 11, stored
    db.dispose()


if __name__ == "__main__":
    main()
