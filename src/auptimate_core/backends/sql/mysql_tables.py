"""The ledger's tables on MySQL 8 and MariaDB 10.11+: the column types and table options that
:func:`fit_tables` adds to the tables as variants (the other dialects' DDL is unchanged).

Every text column is ``utf8mb4`` (every character another backend stores, 4-byte emoji
included) with the server's binary collation that does not pad (``utf8mb4_nopad_bin`` on
MariaDB, ``utf8mb4_0900_bin`` on MySQL): ids compare by code point, so ``"Ann"`` and ``"ann"``
are two ids, and so are ``"a"`` and ``"a "``. A column of ids (in a key or an index, or named
``id``, ``*_id``, ``actor`` or ``key``) is ``VARCHAR(``:data:`ID_LENGTH```)``: the members'
primary key holds two ids, 2 × 255 × 4 = 2,040 bytes of InnoDB's 3,072-byte limit on an index
key. Other text without a length (names, e-mails, the audit detail, the feed's JSON) is
``LONGTEXT``. Tables are InnoDB, ``ROW_FORMAT=DYNAMIC`` (the row format with that limit).

>>> import sqlalchemy as sa
>>> from sqlalchemy.dialects import mysql, sqlite
>>> md = sa.MetaData()
>>> t = sa.Table("t", md, sa.Column("id", sa.String, primary_key=True),
...              sa.Column("name", sa.String), sa.Column("code", sa.String(3)))
>>> fit_tables(md)
>>> [str(c.type.compile(dialect=mysql.dialect(is_mariadb=True))) for c in t.c]
... # doctest: +NORMALIZE_WHITESPACE
['VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin',
 'LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin',
 'VARCHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin']
>>> str(t.c.id.type.compile(dialect=mysql.dialect()))
'VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin'
>>> str(t.c.id.type.compile(dialect=sqlite.dialect()))
'VARCHAR'
"""

from __future__ import annotations

from typing import Any, Final

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql
    from sqlalchemy.dialects.mysql.base import MySQLDialect
    from sqlalchemy.engine import Dialect
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["ID_LENGTH", "NAMES", "MySqlText", "binary_collation", "fit_tables"]

ID_LENGTH: Final = 255
"""The longest id (in characters) the ledger stores on MySQL and MariaDB."""

NAMES: Final = ("mariadb", "mysql")
"""SQLAlchemy's names of the MySQL dialects."""


def binary_collation(dialect: Dialect) -> str:
    """The ``utf8mb4`` collation comparing by code point, trailing spaces included."""
    mariadb = not isinstance(dialect, MySQLDialect) or dialect.is_mariadb
    return "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"


class MySqlText(sa.types.TypeDecorator[str]):
    """A text column on MySQL or MariaDB: ``VARCHAR(length)`` (``LONGTEXT`` without a length)
    in ``utf8mb4`` with the server's binary no-pad collation."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int | None) -> None:
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        collation = binary_collation(dialect)
        if self.length is None:
            return dialect.type_descriptor(mysql.LONGTEXT(charset="utf8mb4",
                                                          collation=collation))
        return dialect.type_descriptor(mysql.VARCHAR(self.length, charset="utf8mb4",
                                                     collation=collation))


def _holds_ids(table: sa.Table, column: sa.Column[Any]) -> bool:
    indexed = any(column.name in index.columns for index in table.indexes)
    name = column.name
    return (column.primary_key or indexed or name in ("id", "actor", "key")
            or name.endswith("_id"))


def fit_tables(metadata: sa.MetaData) -> None:
    """Give the tables in ``metadata`` their MySQL and MariaDB forms (see the module notes):
    InnoDB, ``utf8mb4``, and a variant of each text column. Other dialects are unchanged."""
    for table in metadata.tables.values():
        table.dialect_kwargs["mysql_engine"] = "InnoDB"
        table.dialect_kwargs["mysql_charset"] = "utf8mb4"
        table.dialect_kwargs["mysql_collate"] = "utf8mb4_bin"
        table.dialect_kwargs["mysql_row_format"] = "DYNAMIC"
        for column in table.columns:
            kind = column.type
            if not isinstance(kind, sa.String):
                continue
            length = kind.length
            if isinstance(kind, sa.Text):
                length = None
            elif length is None and _holds_ids(table, column):
                length = ID_LENGTH
            column.type = kind.with_variant(MySqlText(length), *NAMES)
