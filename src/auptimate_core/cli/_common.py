"""Pieces the commands share: reading FILE (--skip-invalid, --rejects, --timezone), durations,
amounts, and the observability options (--metrics-port, --log-format)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sized
from contextlib import ExitStack
from datetime import timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click

from ..errors import RowError, ValidationError

if TYPE_CHECKING:
    from ..domain import Transaction
    from ..io.schema import RejectedRow
    from ..io.vectorised import Batch
    from ..io.writers import RejectsWriter

# The input pipeline, the rejects writer, zoneinfo and logging are imported where they are
# used: top-investors starts its vectorised engine before it needs any of them.

_B = TypeVar("_B", bound=Sized)

EXIT_BAD_ROW = 2


class BadInput(click.ClickException):
    """A bad row or file: exit status 2 with a message naming the line and the field."""

    exit_code = EXIT_BAD_ROW


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"1m"``, ``"1h30m"``, ``"2d"`` as a timedelta (see
    :func:`auptimate_core.alerts.registry.parse_duration`; ValueError when it is not one).

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    from ..alerts.registry import parse_duration as parse

    return parse(text)


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class Amount(click.ParamType):  # type: ignore[type-arg]
    name = "amount"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal amount", param, ctx)
        if not amount.is_finite() or amount < 0:
            self.fail(f"{value!r} must be a finite amount >= 0", param, ctx)
        return amount


class TimeZone(click.ParamType):  # type: ignore[type-arg]
    name = "zone"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tzinfo:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if isinstance(value, tzinfo):
            return value
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"{value!r} is not a time zone name like UTC or Europe/London", param, ctx)


class Input:
    """Reads FILE as transactions through the input pipeline, reporting (and optionally writing)
    every rejected row.

    Use as a context manager; ``read`` counts the transactions read, ``rejected`` what was
    reported.
    """

    def __init__(
        self, path: str, *, skip_invalid: bool, rejects: str | None,
        assume_tz: tzinfo | None = None,
    ) -> None:
        if rejects and not skip_invalid:
            raise click.UsageError("--rejects needs --skip-invalid (without it the first bad "
                                   "row stops the run)")
        self.path = path
        self.skip_invalid = skip_invalid
        self.assume_tz = assume_tz
        self.rejected = 0
        self.read = 0
        self._stack = ExitStack()
        self._writer: RejectsWriter | None = None
        if rejects:
            from ..io.writers import RejectsWriter

            out = self._stack.enter_context(
                open(rejects, "w", encoding="utf-8", newline="")  # noqa: SIM115
            )
            self._writer = RejectsWriter(out)

    def __enter__(self) -> Input:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _reject(self, row: RejectedRow) -> None:
        self.rejected += 1
        click.echo(f"rejected {row}", err=True)
        if self._writer is not None:
            self._writer(row)

    def transactions(self, stream: IO[bytes] | None = None) -> Iterator[Transaction]:
        """The file's transactions; ``stream`` reads FILE's bytes through another stream (a
        progress counter, say). A bad row, or a file that cannot be read, is BadInput."""
        from ..io.readers import read_transactions

        try:
            for tx in read_transactions(
                self.path if stream is None else stream, name=self.path,
                skip_invalid=self.skip_invalid,
                on_reject=self._reject if self.skip_invalid else None, assume_tz=self.assume_tz,
            ):
                self.read += 1
                yield tx
        except RowError as error:
            raise BadInput(str(error)) from None
        except OSError as error:
            raise BadInput(f"{self.path}: {error}") from None

    def batches(self) -> Iterator[list[Transaction]]:
        """The file's transactions in lists of thousands, the same as :meth:`transactions`
        gives one by one, read by the vectorised reader
        (:func:`auptimate_core.io.vectorised.transaction_batches`)."""
        from ..io.vectorised import transaction_batches

        yield from self._counted(transaction_batches(
            self.path, skip_invalid=self.skip_invalid,
            on_reject=self._reject if self.skip_invalid else None, assume_tz=self.assume_tz))

    def column_batches(self) -> Iterator[Batch]:
        """The same rows as :meth:`batches`, a block of plain rows as columns
        (:func:`auptimate_core.io.vectorised.column_batches`)."""
        from ..io.vectorised import column_batches

        yield from self._counted(column_batches(
            self.path, skip_invalid=self.skip_invalid,
            on_reject=self._reject if self.skip_invalid else None, assume_tz=self.assume_tz))

    def _counted(self, batches: Iterator[_B]) -> Iterator[_B]:
        try:
            for batch in batches:
                self.read += len(batch)
                yield batch
        except RowError as error:
            raise BadInput(str(error)) from None
        except OSError as error:
            raise BadInput(f"{self.path}: {error}") from None

    def summary(self, done: str = "read") -> None:
        """``N rows rejected, M read`` on stderr, when a row was rejected."""
        if self.rejected:
            click.echo(f"{self.rejected} rows rejected, {self.read} {done}", err=True)


def input_options(command: _Command) -> _Command:
    """Adds ``--skip-invalid``, ``--rejects`` and ``--timezone`` to a click command that reads
    FILE; it receives them as ``skip_invalid``, ``rejects`` and ``assume_tz`` (for
    :class:`Input`)."""
    options = (
        click.option("--skip-invalid", is_flag=True,
                     help="Report bad rows on stderr and go on, instead of stopping at the "
                          "first."),
        click.option("--rejects", type=click.Path(dir_okay=False),
                     help="With --skip-invalid: also write every rejected row (line, field, "
                          "reason, row) to this CSV file."),
        click.option("--timezone", "assume_tz", type=TimeZone(), default=None,
                     help="Time zone of timestamps written without an offset (default: reject "
                          "them)."),
    )
    decorated: Callable[..., Any] = command
    for option in reversed(options):
        decorated = option(decorated)
    return cast(_Command, decorated)


def progress_wanted(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


# -- observability: metrics server and log format ----------------------------------------------

_Command = TypeVar("_Command", bound=Callable[..., Any])


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> Callable[[], None]:
    """Enable the Prometheus metrics and serve ``/metrics`` on ``addr:port`` in a thread.

    Returns a function that stops the server and switches the metrics off again. Raises
    click.UsageError when prometheus_client is missing or the port cannot be bound.
    """
    from .. import metrics
    from ..errors import MissingExtra

    try:
        server, thread = metrics.serve_metrics(port, addr=addr)
    except MissingExtra as error:
        raise click.UsageError(f"--metrics-port: {error}") from None
    except OSError as error:
        raise click.UsageError(f"--metrics-port {port}: cannot listen on {addr}: {error}"
                               ) from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        metrics.disable_metrics()

    return stop


def configure_logging(fmt: str = "text", level: str = "INFO") -> Callable[[], None]:
    """Send the library's logs to stderr as ``text`` or ``json`` lines at ``level``.

    Returns a function that removes the handler again.
    """
    import logging

    from ..logs import configure_logging as configure

    root = logging.getLogger()
    previous = root.level
    handler = configure(fmt, level)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    return undo


def observability_options(command: _Command) -> _Command:
    """Adds ``--metrics-port``, ``--metrics-addr``, ``--log-format`` and ``--log-level`` to a
    click command and acts on them before it runs (undone when the command's context closes).

    Put it between ``@click.command(...)`` and the command's own options.
    """

    @functools.wraps(command)
    def run(*args: Any, metrics_port: int | None, metrics_addr: str, log_format: str | None,
            log_level: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if log_format is not None or log_level is not None:
            ctx.call_on_close(configure_logging(log_format or "text", log_level or "INFO"))
        if metrics_port is not None:
            ctx.call_on_close(start_metrics_server(metrics_port, metrics_addr))
        return command(*args, **kwargs)

    options = (
        click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
                     help="Serve Prometheus metrics on this port at /metrics while running "
                          "(needs the 'metrics' extra)."),
        click.option("--metrics-addr", default="0.0.0.0", show_default=True,
                     help="Address the metrics server listens on."),
        click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
                     help="Log lines on stderr as text or JSON with structured fields "
                          "(pool_id, alert_rule, alert_state, transaction_id ...)."),
        click.option("--log-level", type=click.Choice(
                         ["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
                     default=None, help="Lowest level logged (default INFO with --log-format)."),
    )
    decorated: Callable[..., Any] = run
    for option in reversed(options):
        decorated = option(decorated)
    return cast(_Command, decorated)


def rule_options(command: _Command) -> _Command:
    """Adds ``--rule NAME`` (repeatable: which rules run, the threshold and spike rules when
    none is named) and every registered rule's parameters as options (``--threshold``,
    ``--spike-factor``, ``--spike-window``, ``--baseline``, ``--min-count``, ...) to a click
    command, which receives the built rules as ``rules``. The options come from
    :data:`auptimate_core.alerts.registry.RULES`, so a registered rule is reachable here."""
    from ..alerts.registry import DEFAULT_RULES, RULES, build_rules

    params = [param for spec in RULES.values() for param in spec.params]

    @functools.wraps(command)
    def run(*args: Any, rule: tuple[str, ...], **kwargs: Any) -> Any:
        values = {param.name: kwargs.pop(param.name) for param in params}
        try:
            rules = build_rules(rule or DEFAULT_RULES, values)
        except ValidationError as error:
            hint = "--rule" if error.field == "rule" else "--" + error.field.replace("_", "-")
            raise click.BadParameter(error.reason, param_hint=hint) from None
        return command(*args, rules=rules, **kwargs)

    options = [click.option(
        "--rule", "rule", multiple=True, type=click.Choice(list(RULES)),
        help="A rule to run (repeat for several); default: " + ", ".join(DEFAULT_RULES) + ".")]
    for spec in RULES.values():
        for param in spec.params:
            options.append(click.option(
                param.option, param.name, default=param.default, show_default=True,
                help=f"{param.help} ({spec.name})"))
    for option in reversed(options):
        run = option(run)
    return cast(_Command, run)
