"""No parameters nor personal data in the exception chains of the asyncio SQL ledger: a server
that cannot be reached, one whose listening connection is cut, and an insert the database
refuses carry the driver's error only as the sync ledger does (a scrubbed
:class:`~auptimate_core.backends.sql.driver_errors.DriverError`, never the driver's own)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from auptimate_core import Investor, LedgerError, StoreUnavailable
from auptimate_core.aio import AsyncPoolLedger
from auptimate_core.aio.sql import SqlStorage
from auptimate_core.testing.servers import free_port
from tests.test_ledger_sql import assert_scrubbed, fresh_schema, listening_pid
from tests.test_privacy import EMAIL, NAME, PASSWORD

pytestmark = pytest.mark.postgres


def test_an_unreachable_server() -> None:
    url = f"postgresql+psycopg://ada:{PASSWORD}@127.0.0.1:{free_port()}/nothing"

    async def main() -> None:
        ledger = AsyncPoolLedger.from_url(url)
        with pytest.raises(StoreUnavailable, match="cannot be reached") as caught:
            await ledger.open()
        assert_scrubbed(caught.value)
        await ledger.close()

    asyncio.run(main())


def test_a_failing_insert(request: pytest.FixtureRequest) -> None:
    postgres_url, schema = fresh_schema(request, "postgres")

    async def main() -> None:
        async with AsyncPoolLedger(SqlStorage.from_url(postgres_url, schema=schema)) as ledger:
            async with ledger.storage.engine.begin() as conn:  # type: ignore[attr-defined]
                table = f"{schema}.auptimate_investors"
                await conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT refuse "
                                           f"CHECK (name <> '{NAME}')"))
            with pytest.raises(LedgerError) as caught:
                await ledger.register_investor(Investor("grace", NAME, EMAIL))
            assert "refuse" in str(caught.value)
            assert_scrubbed(caught.value)

    asyncio.run(main())


def test_a_cut_listening_connection(request: pytest.FixtureRequest) -> None:
    """A follower whose LISTEN connection the server ends raises StoreUnavailable, the
    driver's error scrubbed."""
    postgres_url, schema = fresh_schema(request, "postgres")

    async def main() -> None:
        async with AsyncPoolLedger(SqlStorage.from_url(postgres_url, schema=schema)) as ledger:
            follower = ledger.follow()
            assert [type(c.event).__name__ async for c in ledger.follow(timeout=0)] == []
            reading = asyncio.ensure_future(anext(follower))
            identity = ledger.storage.repository.identity
            await asyncio.to_thread(listening_pid, postgres_url, identity, True)
            with pytest.raises(StoreUnavailable, match="listening") as caught:
                await asyncio.wait_for(reading, 30)
            assert_scrubbed(caught.value)
            await follower.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())
