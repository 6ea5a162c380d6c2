"""Feed a Django model's committed rows into an :class:`AlertEngine`, and rank its investors.

Usage, once at start-up (an ``AppConfig.ready``)::

    watch = watch_model(Payment, engine=engine)

Rows saved inside ``transaction.atomic()`` reach the engine only after the outermost block
commits, all of one block's rows in one :meth:`AlertEngine.process_many` call. A rolled-back
block, or a rolled-back savepoint inside a committed block, sends none of its rows. A row saved
outside a transaction (autocommit) is processed at once.

How rollbacks are told apart (Django has no on-rollback hook): the rows of a block are kept in
a per-connection buffer keyed by the savepoint stack Django tracks (``connection.savepoint_ids``)
when each row was saved. For each stack that holds rows, one witness callback is registered with
``transaction.on_commit``: Django itself drops it when that savepoint (or an enclosing one) is
rolled back, exactly as it drops any on-commit callback. One flush callback per outermost block
is kept last among the watch's callbacks and is exempt from savepoint rollbacks (its savepoint
set is emptied, so only the outermost rollback, which drops every callback, drops it). After
the commit Django runs the surviving witnesses, then the flush, which sends the rows whose
witness ran. A rolled-back block leaves a buffer whose flush Django dropped; the next row finds
its flush gone and starts a new buffer, so no row leaks from one block into the next.

What sends no ``post_save`` signal is not seen: ``QuerySet.bulk_create``,
``QuerySet.update``, raw SQL and fixtures (``raw`` saves). Use :meth:`ModelWatch.bulk_create`
and :meth:`ModelWatch.after_update` for the first two. Edits through ``save()`` of an existing
row are not observed either (a transaction is a fact; see :meth:`ModelWatch.after_update`).

With ``USE_TZ=False`` Django keeps naive datetimes meaning the project's ``TIME_ZONE``; the
default converter reads them so (:func:`project_time`). With ``USE_TZ=True`` a naive timestamp
is an error, as everywhere in the library.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..alerts.alert import Alert
from ..alerts.engine import AlertEngine
from ..domain import Transaction
from ..errors import MissingExtra, ValidationError
from ..money import EXACT
from ..ranking import (
    ADDS,
    COUNTED,
    SUBTRACTS,
    WITHOUT_KIND,
    InvestorRank,
    check_n,
    rank_totals,
    tally,
)

try:
    from django import conf
    from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.functions import Coalesce, Collate
    from django.db.models.signals import post_save
    from django.utils import timezone
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("django", "django") from error

__all__ = [
    "ModelWatch",
    "fields_converter",
    "project_time",
    "top_investors_django",
    "watch_model",
]

logger = logging.getLogger("auptimate_core.integrations.django")

Converter = Callable[[Any], Transaction]


def project_time(value: datetime) -> datetime:
    """``value`` made timezone-aware the way the Django project means it.

    An aware datetime is returned as is. A naive one is read in ``settings.TIME_ZONE`` when
    ``USE_TZ=False`` (Django stores and returns local wall-clock times then); with
    ``USE_TZ=True`` a naive datetime has no meaning and is left naive, so the Transaction
    rejects it with :class:`~auptimate_core.errors.InvalidTimestamp`. A wall-clock time that
    occurs twice (a DST fall-back) is read as its first occurrence.
    """
    if not isinstance(value, datetime) or timezone.is_aware(value) or conf.settings.USE_TZ:
        return value
    return timezone.make_aware(value, timezone.get_default_timezone())


def fields_converter(
    *,
    id: str = "id",
    investor_id: str = "investor_id",
    pool_id: str = "pool_id",
    amount: str = "amount",
    timestamp: str = "timestamp",
    kind: str | None = None,
) -> Converter:
    """A converter reading a model instance's attributes by the given names.

    The names are the Transaction's fields, as for
    :func:`~auptimate_core.integrations.sqlalchemy.columns_converter` and
    :class:`~auptimate_core.backends.sql.ranking.TransactionsTable`; a ForeignKey ``investor``
    is read through its column attribute ``investor_id``. Timestamps go through
    :func:`project_time`.
    """

    def convert(row: Any) -> Transaction:
        key = getattr(row, id)
        if key is None:
            raise ValidationError(
                id, f"{type(row).__name__} row has no {id} yet (bulk_create with "
                "ignore_conflicts does not set primary keys)")
        value = getattr(row, amount)
        at = getattr(row, timestamp)
        if isinstance(at, str):  # assigned as text: read as the field reads it from a form
            at = row._meta.get_field(timestamp).to_python(at)
        return Transaction(
            id=str(key),
            investor_id=str(getattr(row, investor_id)),
            pool_id=str(getattr(row, pool_id)),
            amount=value if isinstance(value, Decimal | int) else Decimal(str(value)),
            timestamp=project_time(at),
            kind=getattr(row, kind) if kind else "investment",
        )

    return convert


class _Witness:
    """Runs after the commit unless Django dropped it with a rolled-back savepoint."""

    __slots__ = ("ran",)

    def __init__(self) -> None:
        self.ran = False

    def __call__(self) -> None:
        self.ran = True


class _Batch:
    """One outermost block's rows on one connection, keyed by their savepoint stack."""

    __slots__ = ("flush", "hooks", "rows", "witnesses")

    def __init__(self, flush: Callable[[], None], hooks: list[Any]) -> None:
        self.flush = flush
        self.hooks = hooks  # the connection's on-commit list when the flush was last seen in it
        self.rows: list[tuple[tuple[str | None, ...], Transaction]] = []
        self.witnesses: dict[tuple[str | None, ...], _Witness] = {}


def _find(hooks: list[Any], func: Callable[[], None]) -> int:
    """Index of ``func``'s entry in a connection's on-commit list, or -1 (scans from the end)."""
    for index in range(len(hooks) - 1, -1, -1):
        if hooks[index][1] is func:
            return index
    return -1


class ModelWatch:
    """The ``post_save`` receiver installed by :func:`watch_model`; :meth:`remove` uninstalls it.

    Safe to share between threads: Django connections are per thread, and so is each buffer.
    """

    def __init__(self, model: type[models.Model], engine: AlertEngine, convert: Converter,
                 using: str | None, on_error: Callable[[BaseException], object] | None) -> None:
        self.model = model
        self.engine = engine
        self.convert = convert
        self.using = using
        self.on_error = on_error
        self._batches: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Batch] = (
            weakref.WeakKeyDictionary())
        self._uid = f"auptimate_core.watch_model:{id(self)}"
        post_save.connect(self._saved, sender=model, weak=False, dispatch_uid=self._uid)

    def remove(self) -> None:
        """Stop watching (rows already buffered in an open block are still sent on commit)."""
        post_save.disconnect(sender=self.model, dispatch_uid=self._uid)

    def _saved(self, sender: type[models.Model], instance: models.Model, created: bool,
               raw: bool = False, using: str = DEFAULT_DB_ALIAS, **_: Any) -> None:
        if created and not raw and (self.using is None or using == self.using):
            self.feed([self.convert(instance)], using=using)

    def feed(self, transactions: Sequence[Transaction], *, using: str | None = None) -> None:
        """Send ``transactions`` to the engine when the current transaction on ``using`` commits.

        Outside a transaction they are processed now; in manual transaction management
        (autocommit off, no ``atomic`` block) Django refuses, with TransactionManagementError.
        """
        if not transactions:
            return
        connection = connections[using or self.using or DEFAULT_DB_ALIAS]
        if not connection.in_atomic_block:
            if not connection.get_autocommit():
                raise transaction.TransactionManagementError(
                    "watch_model cannot tell when a manual transaction commits: use atomic()")
            self._process(list(transactions))
            return
        batch = self._batch(connection)
        key = tuple(connection.savepoint_ids)
        if key not in batch.witnesses:
            witness = _Witness()
            batch.witnesses[key] = witness
            connection.on_commit(witness)
            hooks = connection.run_on_commit
            # Keep the flush after every witness: Django runs on-commit callbacks in order.
            hooks.append(hooks.pop(_find(hooks, batch.flush)))
        batch.rows.extend((key, tx) for tx in transactions)

    def _batch(self, connection: BaseDatabaseWrapper) -> _Batch:
        batch = self._batches.get(connection)
        hooks = connection.run_on_commit
        if batch is not None:
            if hooks is batch.hooks:
                return batch  # the list was not replaced: no rollback since, the flush is there
            if _find(hooks, batch.flush) >= 0:
                batch.hooks = hooks
                return batch
        # No buffer, or its block ended (committed, or rolled back and its flush dropped).

        def flush() -> None:
            if self._batches.get(connection) is fresh:
                del self._batches[connection]
            rows = [tx for key, tx in fresh.rows if fresh.witnesses[key].ran]
            if rows:
                self._process(rows)

        fresh = _Batch(flush, hooks)
        connection.on_commit(flush)
        hooks[-1][0].clear()  # exempt from savepoint rollbacks: only the outermost one drops it
        self._batches[connection] = fresh
        return fresh

    def _process(self, rows: list[Transaction]) -> list[Alert]:
        try:
            return self.engine.process_many(rows)
        except Exception as error:  # the commit stands; the caller decides what to do
            logger.error("alert engine failed on %d committed rows: %s", len(rows), error)
            if self.on_error is None:
                raise
            self.on_error(error)
            return []

    def bulk_create(self, objs: Iterable[models.Model], **options: Any) -> list[models.Model]:
        """``Model.objects.bulk_create(objs, **options)``, its rows fed as saved ones would be.

        ``bulk_create`` sends no ``post_save``. The primary keys must come back from the
        database (PostgreSQL, SQLite, MariaDB do; ``ignore_conflicts=True`` sets none, and the
        converter then refuses the rows).
        """
        alias = self.using or DEFAULT_DB_ALIAS
        with transaction.atomic(using=alias):
            created = self.model._default_manager.using(alias).bulk_create(objs, **options)
            self.feed([self.convert(obj) for obj in created], using=alias)
        return created

    def after_update(self, queryset: models.QuerySet[Any]) -> int:
        """Feed the rows of ``queryset`` after a ``queryset.update(...)`` changed them.

        ``update`` sends no signal. Each row goes to the engine as a revision of its
        transaction: the id becomes ``"<id>~<digest of its investor, pool, amount, time and
        kind>"``, so an amount raised to 700,000 is a new event that the threshold rule sees,
        while feeding an unchanged row again is counted once (the engine's dedup). A revision
        is counted by the spike rule as one more event. Returns the number of rows fed.
        """
        revisions = [_revision(self.convert(row)) for row in queryset]
        self.feed(revisions, using=queryset.db)
        return len(revisions)


def _revision(tx: Transaction) -> Transaction:
    state = "\x1f".join((tx.investor_id, tx.pool_id, format(tx.amount, "f"),
                         tx.timestamp.isoformat(), tx.kind))
    digest = hashlib.sha256(state.encode()).hexdigest()[:16]
    return Transaction(f"{tx.id}~{digest}", tx.investor_id, tx.pool_id, tx.amount,
                       tx.timestamp, tx.kind)


def watch_model(
    model: type[models.Model],
    to_transaction: Converter | None = None,
    *,
    engine: AlertEngine,
    using: str | None = None,
    on_error: Callable[[BaseException], object] | None = None,
) -> ModelWatch:
    """Send every committed new ``model`` row through ``engine`` (see the module notes).

    ``to_transaction`` turns a saved instance into a :class:`~auptimate_core.Transaction`
    (default: :func:`fields_converter`, attributes named like the Transaction's fields); it runs
    at save time, so a bad row fails its ``save()``. ``using`` limits the watch to one database
    alias (default: every alias). An engine error after a commit is passed to ``on_error``
    when given, else raised from the ``atomic`` block's exit (the data is committed either way).
    """
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise TypeError(f"expected a Django model class, not {model!r}")
    return ModelWatch(model, engine, to_transaction or fields_converter(), using, on_error)


def top_investors_django(
    source: type[models.Model] | models.QuerySet[Any],
    n: int = 5,
    *,
    investor_id: str = "investor_id",
    pool_id: str = "pool_id",
    amount: str = "amount",
    kind: str | None = "kind",
    scale: int | None = None,
) -> list[InvestorRank]:
    """The ``n`` top investors of a model's rows, as :func:`~auptimate_core.top_investors`.

    ``source`` is a model (all its rows) or a queryset (its filters, and its database alias,
    respected). The keyword names are the model's fields, named like
    :class:`~auptimate_core.backends.sql.ranking.TransactionsTable`'s arguments; ``kind=None``
    means every row is an investment; ``scale`` says the amount field holds integer minor
    units (``scale=2`` for cents).

    One ``GROUP BY`` query on the queryset's own connection, ``LIMIT n`` in the database, with
    the contract's order (investor ids by code point: ``COLLATE "C"`` on PostgreSQL). On SQLite
    a non-integer amount is summed as a float by the database, so there the rows are read and
    summed exactly in Python instead, ``O(rows)``.
    """
    check_n(n)
    if isinstance(source, type) and issubclass(source, models.Model):
        queryset: models.QuerySet[Any] = source._default_manager.all()
    elif isinstance(source, models.QuerySet):
        queryset = source
        if queryset.query.is_sliced:
            queryset = queryset.model._default_manager.using(queryset.db).filter(
                pk__in=queryset.values("pk"))
    else:
        raise TypeError(f"expected a Django model class or a QuerySet, not {source!r}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 0):
        raise ValidationError("scale", f"must be None or a non-negative int, not {scale!r}")
    fields = {"investor_id": investor_id, "pool_id": pool_id, "amount": amount, "kind": kind}
    model = queryset.model
    found = {role: _field(model, role, name) for role, name in fields.items() if name is not None}
    kind_expr: Any = Coalesce(models.F(kind), models.Value(WITHOUT_KIND)) if kind else None
    rows = queryset.order_by().filter(**{f"{investor_id}__isnull": False})
    if kind_expr is not None:
        rows = rows.annotate(_auptimate_kind=kind_expr).filter(_auptimate_kind__in=COUNTED)
    integer = isinstance(found["amount"], models.IntegerField)
    connection = connections[queryset.db]
    if connection.vendor == "sqlite" and not integer:
        return _rank_in_python(rows, investor_id, pool_id, amount, kind, scale, n)
    if kind_expr is None:
        pools: Any = models.Count(pool_id, distinct=True)
        total: Any = models.Sum(amount)
    else:
        adds = models.Q(_auptimate_kind__in=ADDS)
        subtracts = models.Q(_auptimate_kind__in=SUBTRACTS)
        pools = models.Count(models.Case(models.When(adds, then=models.F(pool_id))),
                             distinct=True)
        total = models.Sum(models.Case(
            models.When(subtracts, then=models.Value(0) - models.F(amount)),
            default=models.F(amount)))
    tie_break: Any = (Collate(investor_id, "C") if connection.vendor == "postgresql"
                      else models.F(investor_id))
    grouped = (rows.values(investor_id)
               .annotate(_auptimate_pools=pools, _auptimate_total=total)
               .filter(_auptimate_pools__gt=0)
               .order_by("-_auptimate_pools", "-_auptimate_total", tie_break.asc())
               .values_list(investor_id, "_auptimate_pools", "_auptimate_total")[:n])
    return [InvestorRank(str(inv), int(count), _exact(value, scale, str(inv)))
            for inv, count, value in grouped]


def _field(model: type[models.Model], role: str, name: str) -> Any:
    """The field ``name`` of ``model`` (a ForeignKey also by its column attribute ``x_id``)."""
    options = model._meta
    for candidate in (name, name.removesuffix("_id")):
        try:
            return options.get_field(candidate)
        except Exception:  # FieldDoesNotExist
            continue
    raise ValidationError(role, f"{model.__name__} has no field {name!r}")


def _exact(value: object, scale: int | None, investor: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValidationError(
            "amount", f"the database summed investor {investor!r}'s amounts to a "
            f"{type(value).__name__}, not an exact number")
    total = Decimal(value)
    return total.scaleb(-scale, EXACT) if scale else total


def _rank_in_python(rows: models.QuerySet[Any], investor_id: str, pool_id: str, amount: str,
                    kind: str | None, scale: int | None, n: int) -> list[InvestorRank]:
    kind_field = "_auptimate_kind" if kind else None
    values = rows.values_list(investor_id, pool_id, amount,
                              *([kind_field] if kind_field else []))

    def counted() -> Iterable[tuple[str, str, str, Decimal]]:
        for row in values.iterator(chunk_size=10_000):
            investor, pool, value = row[0], row[1], row[2]
            if value is None:
                continue
            number = value if isinstance(value, Decimal) else Decimal(str(value))
            if scale:
                number = number.scaleb(-scale, EXACT)
            yield str(investor), str(pool), str(row[3]) if kind_field else WITHOUT_KIND, number

    return rank_totals(tally(counted()), n)
