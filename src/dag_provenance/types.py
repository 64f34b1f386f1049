"""Small column types that hide engine differences in one place.

- `UTCDateTime`: a real timestamp type with microseconds on every engine
  (timestamptz on PostgreSQL, DATETIME(6) on MariaDB/MySQL, ISO text on
  SQLite), always UTC in and out; a naive datetime is refused.
- `LongText`: payload text of at least 64 MiB everywhere (LONGTEXT on MySQL).
- `Identifier`: a length-limited string compared byte for byte (a binary,
  no-pad collation on MySQL, where the default collation would fold case and
  ignore trailing spaces and so make two distinct ids collide).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

MYSQL_ID_COLLATION = "utf8mb4_nopad_bin"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, microsecond precision on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "sqlite":
            # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" in UTC; the C parser is
            # several times faster than the generic regex-based one.
            return _parse_sqlite_utc
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def LongText() -> TypeEngine[str]:
    """Text of at least 64 MiB: unbounded text on SQLite/PostgreSQL, LONGTEXT on MySQL."""
    return Text().with_variant(mysql.LONGTEXT(charset="utf8mb4"), "mysql", "mariadb")


def Identifier(length: int) -> TypeEngine[str]:
    """A string of at most `length` characters, compared exactly on every engine."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation=MYSQL_ID_COLLATION),
        "mysql",
        "mariadb",
    )


def _parse_sqlite_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value + "+00:00")
