"""The change feed: every committed change of a ledger, in commit order, with a cursor.

A ledger's repository writes each change's event to its feed in the same unit of work as the
change itself (an outbox), at the next *position* (1, 2, 3, ... with no gap), and the positions
follow the order of the commits: the feed holds exactly the committed changes, and a reader that
has seen position ``n`` has seen everything committed before it. How each backend keeps that
promise is told in its module; :class:`~auptimate_core.PoolLedger` turns positions into
:class:`Change` values whose ``cursor`` is opaque text.

A cursor names the ledger it belongs to (an identity made when the ledger's storage was created
and kept in it) and a position: a cursor of another ledger, another database or garbage is a
:class:`~auptimate_core.errors.ValidationError`, never a silent restart from the beginning.

>>> cursor = encode_cursor("6f1c0a9e2b7d4c35", 42)
>>> decode_cursor(cursor, "6f1c0a9e2b7d4c35", head=50)
42
>>> decode_cursor(cursor, "0000000000000000", head=50)
Traceback (most recent call last):
...
auptimate_core.errors.ValidationError: after: the cursor belongs to another ledger \
(6f1c0a9e2b7d4c35, this one is 0000000000000000)
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import datetime
from typing import Any, Final, Protocol, Self

import attrs

from ..errors import ValidationError
from . import codec
from .events import LedgerEvent

MAX_LIMIT: Final = 10_000
"""The most changes one call of ``changes()`` returns."""

_PREFIX: Final = "c1"
_CURSOR: Final = re.compile(r"c1\.([0-9a-f]{16})\.([0-9a-f]{1,16})")


def new_identity() -> str:
    """A fresh ledger identity: 16 random hexadecimal digits."""
    return secrets.token_hex(8)


def encode_cursor(identity: str, position: int) -> str:
    """The cursor of ``position`` in the feed of the ledger named ``identity``."""
    return f"{_PREFIX}.{identity}.{position:x}"


def decode_cursor(cursor: object, identity: str, head: int, field: str = "after") -> int:
    """The position ``cursor`` names in the feed of ``identity`` whose last position is ``head``.

    Refused with a :class:`ValidationError` naming ``field``: a value that is not a cursor, a
    cursor of another ledger, and one past the end of this feed (made by a database that has
    since been restored from an older copy, or by another database with a copied identity).
    """
    if not isinstance(cursor, str):
        raise ValidationError(field, f"a cursor is a string, not {type(cursor).__name__}")
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise ValidationError(field, f"{cursor[:80]!r} is not a change feed cursor")
    if found.group(1) != identity:
        raise ValidationError(field, f"the cursor belongs to another ledger "
                                     f"({found.group(1)}, this one is {identity})")
    position = int(found.group(2), 16)
    if position > head:
        raise ValidationError(field, f"the cursor is past the end of this ledger's feed "
                                     f"(position {position}, the feed ends at {head}): was "
                                     "the database restored from an older copy?")
    return position


def check_limit(limit: object) -> int:
    """``limit`` if it is an int from 1 to :data:`MAX_LIMIT`, else a :class:`ValidationError`."""
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise ValidationError("limit", f"must be an int, not {type(limit).__name__}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be from 1 to {MAX_LIMIT:,}, not {limit}")
    return limit


def check_interval(value: object, field: str = "poll_interval") -> float:
    """``value`` if it is a number of seconds > 0 (how often a follower polls the feed), else a
    :class:`ValidationError` naming ``field``."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value < math.inf):
        raise ValidationError(field, f"must be a number of seconds > 0, not {value!r}")
    return float(value)


@attrs.frozen(slots=True)
class Recorded:
    """A change as a repository stores it: its position, commit time and event."""

    position: int
    at: datetime
    event: LedgerEvent


@attrs.frozen(slots=True)
class Change:
    """One committed change of a ledger: its ``event``, its commit time ``at`` (by the ledger's
    clock, taken when its place in the feed was assigned, just before the commit) and its
    ``cursor``: ``ledger.changes(after=cursor)`` gives what came after it.
    """

    event: LedgerEvent
    at: datetime
    cursor: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: the event's ``to_dict()``, ``at`` in ISO 8601, the cursor."""
        return {"cursor": self.cursor, "at": self.at.isoformat(), "event": self.event.to_dict()}

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """The inverse of :meth:`to_dict`; a missing or malformed value is a ValidationError."""
        found = codec.mapping(data, "change")
        return cls(LedgerEvent.from_dict(codec.mapping(codec.get(found, "event", "change"),
                                                       "change.event")),
                   codec.moment(found, "at", "change"), codec.text(found, "cursor", "change"))


class FeedWatch(Protocol):
    """A wake-up for followers of a feed: held open while following, closed after.

    The watch starts listening when it is made, so a change committed after that always ends
    a :meth:`wait`; a wait may also end early for nothing (the caller reads the feed again).
    """

    def wait(self, after: int, timeout: float) -> None:
        """Return once the feed may hold a position past ``after``, or after ``timeout``
        seconds."""

    def close(self) -> None:
        """Stop listening and release what the watch holds."""


__all__ = ["MAX_LIMIT", "Change", "FeedWatch", "Recorded", "check_interval", "check_limit",
           "decode_cursor", "encode_cursor", "new_identity"]
