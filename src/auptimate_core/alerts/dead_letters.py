"""Dead letters: the alerts a sink never accepted, and where they are written.

A :class:`~auptimate_core.alerts.delivery.Dispatcher` hands every delivery it gives up on to a
dead-letter destination, a callable taking a :class:`DeadLetter`. :func:`dead_letter_destination`
turns what a caller names (a file path, a callable, or nothing) into one: a path is written by
:class:`JsonLinesDeadLetters`, one JSON line per letter, which :func:`read_dead_letters` reads
back; nothing means a log record on ``auptimate_core.alerts.dead_letters``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from ..errors import ValidationError
from .alert import Alert

__all__ = [
    "DeadLetter",
    "DeadLetterDestination",
    "JsonLinesDeadLetters",
    "dead_letter_destination",
    "read_dead_letters",
]

dead_letter_logger = logging.getLogger("auptimate_core.alerts.dead_letters")


@attrs.frozen
class DeadLetter:
    """An alert a sink never accepted: which sink, why, after how many attempts, and when.

    ``to_dict()`` is one line of a dead-letter file: ``{"alert": alert.to_dict(), "sink": ...,
    "error": ..., "attempts": ..., "at": ...}`` (``attempts`` is 0 for an alert refused by a
    full queue or a closed dispatcher); :meth:`from_dict` reads it back.
    """

    alert: Alert
    sink: str
    error: str
    attempts: int
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert.to_dict(),
            "sink": self.sink,
            "error": self.error,
            "attempts": self.attempts,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadLetter:
        return cls(
            alert=Alert.from_dict(data["alert"]),
            sink=data["sink"],
            error=data["error"],
            attempts=int(data["attempts"]),
            at=datetime.fromisoformat(data["at"]),
        )


DeadLetterDestination = Callable[[DeadLetter], object]
"""Where dead letters go: called once with each :class:`DeadLetter`."""


class JsonLinesDeadLetters:
    """Appends each dead letter to ``path`` as one JSON line (UTF-8). Safe to share between
    threads.

    The file is opened for each letter (dead letters are rare), so an operator may move it
    away at any time; ``fsync=True`` also forces each line to disk before returning.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()

    def __call__(self, letter: DeadLetter) -> None:
        line = json.dumps(letter.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(line)
            if self.fsync:
                file.flush()
                os.fsync(file.fileno())

    def __repr__(self) -> str:
        return f"JsonLinesDeadLetters({str(self.path)!r})"


def read_dead_letters(path: str | os.PathLike[str]) -> list[DeadLetter]:
    """The dead letters of a JSON Lines file, in the order they were written; to re-send
    them once the sink is mended: ``for letter in read_dead_letters(p): sink(letter.alert)``."""
    with Path(path).open(encoding="utf-8") as file:
        return [DeadLetter.from_dict(json.loads(line)) for line in file if line.strip()]


def dead_letter_destination(
    dead_letter: str | os.PathLike[str] | DeadLetterDestination | None,
) -> DeadLetterDestination:
    """The destination a ``dead_letter`` argument names: a path is a
    :class:`JsonLinesDeadLetters` file, a callable is used as it is, and ``None`` logs each
    letter on ``auptimate_core.alerts.dead_letters`` (at ERROR, with the alert's key, rule,
    state, pool and transaction, without the amounts).

    >>> dead_letter_destination("dead-letters.jsonl")
    JsonLinesDeadLetters('dead-letters.jsonl')
    """
    if dead_letter is None:
        return _log_dead_letter
    if isinstance(dead_letter, str | os.PathLike):
        return JsonLinesDeadLetters(dead_letter)
    if callable(dead_letter):
        return dead_letter
    raise ValidationError(
        "dead_letter", f"must be a file path, a callable or None, not {dead_letter!r}"
    )


def _log_dead_letter(letter: DeadLetter) -> None:
    """The destination when none is given: the log, with what identifies the alert."""
    alert = letter.alert
    dead_letter_logger.error(
        "dead letter for sink %s: alert %s (%s)", letter.sink, alert.key, letter.error,
        extra={"sink": letter.sink, "alert_key": alert.key, "alert_rule": alert.name,
               "alert_state": alert.state, "pool_id": alert.pool_id,
               "transaction_id": alert.transaction_id, "attempts": letter.attempts},
    )
