"""How large a payload each engine accepts, checked before a statement is sent.

A payload larger than the server accepts must be refused with an error that
says so, before anything is written. Sent anyway, MariaDB/MySQL drop the
connection ("MySQL server has gone away") and PostgreSQL closes it ("server
closed the connection unexpectedly"), which reads as an outage.

- MariaDB/MySQL take one statement in one packet of at most the session's
  `max_allowed_packet` (16 MiB by default); PyMySQL sends values inline,
  escaped, so a payload costs its UTF-8 bytes plus one per escaped character.
- PostgreSQL takes at most 1 GB in one protocol message, all of a statement's
  parameters together (and 1 GB in one text value); it cannot be raised.
- SQLite takes at most `SQLITE_LIMIT_LENGTH` bytes (1,000,000,000 unless the
  library was built otherwise) in one value or one row.

The limit is read once per connection (MariaDB's with one SELECT) and kept
in the connection's `info`. Payloads that cannot reach any limit are passed
without measuring them: the hot path pays a length check.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, literal_column, select

from dag_provenance.errors import PayloadTooLargeError
from dag_provenance.execution import ConnectionFacts
from dag_provenance.requests import First, Work

#: PostgreSQL's largest protocol message (MaxAllocSize - 1), fixed in the server.
POSTGRESQL_MESSAGE_MAX = 0x3FFF_FFFE
#: Room kept in a statement for its SQL text and identifiers (ids are at most
#: a few hundred characters each).
STATEMENT_OVERHEAD = 16 * 1024
# A character is at most 4 UTF-8 bytes, and PyMySQL's escaping doubles it at worst.
_WORST_BYTES_PER_CHAR = 8
_MYSQL_ESCAPED = ("\\", "'", '"', "\0", "\n", "\r", "\x1a")
_INFO_KEY = "dag_provenance_payload_limit"


@dataclass(frozen=True)
class PayloadLimit:
    """The most payload bytes one statement may carry on a connection."""

    max_bytes: int
    setting: str
    """What bounds it, and how to raise it if it can be raised."""


Payloads = Sequence[tuple[str, str | None]]
"""(name, text) of the payloads one statement carries."""


def checking(executor: ConnectionFacts, payloads: Payloads) -> Work[None]:
    """Raise `PayloadTooLargeError` if `payloads` exceed what one statement on
    the executor's connection may carry. Costs a length check unless they are
    near the limit. A work (see `operations`): it asks for MariaDB's limit
    the first time a connection needs it, through whichever executor runs it.
    """
    chars = sum(len(text) for _, text in payloads if text)
    if chars == 0:
        return
    limit: PayloadLimit | None = executor.info.get(_INFO_KEY)
    if limit is None:
        mysql = executor.dialect.name in ("mysql", "mariadb")
        row = (yield First(_MAX_ALLOWED_PACKET)) if mysql else None
        limit = executor.info[_INFO_KEY] = _limit_of(executor, row)
    if chars * _WORST_BYTES_PER_CHAR <= limit.max_bytes:
        return
    mysql = executor.dialect.name in ("mysql", "mariadb")
    sizes = [(name, encoded_size(text, mysql)) for name, text in payloads if text]
    total = sum(size for _, size in sizes)
    if total > limit.max_bytes:
        name, size = max(sizes, key=lambda named: named[1])
        raise PayloadTooLargeError(
            f"{name} is {size:,} bytes ({total:,} in this call) and the database accepts at "
            f"most {limit.max_bytes:,} bytes of payload in one statement ({limit.setting}); "
            "nothing was written",
            size=total,
            limit=limit.max_bytes,
        )


def encoded_size(text: str, mysql_escaped: bool = False) -> int:
    """Bytes `text` takes on the wire: UTF-8, plus PyMySQL's escape characters."""
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if mysql_escaped:
        size += sum(text.count(c) for c in _MYSQL_ESCAPED)
    return size


_MAX_ALLOWED_PACKET: Select[Any] = select(literal_column("@@session.max_allowed_packet"))


def _limit_of(executor: ConnectionFacts, packet_row: tuple[Any, ...] | None) -> PayloadLimit:
    """The connection's limit (MariaDB's from its max_allowed_packet row)."""
    dialect = executor.dialect.name
    if dialect in ("mysql", "mariadb"):
        packet = int(packet_row[0]) if packet_row is not None else 0
        return PayloadLimit(
            max(packet - STATEMENT_OVERHEAD, packet // 2),
            f"the server's max_allowed_packet is {packet:,} bytes: raise it, e.g. "
            "SET GLOBAL max_allowed_packet = 1073741824, or max_allowed_packet = 1G "
            "under [mysqld] in the server's configuration",
        )
    if dialect == "postgresql":
        return PayloadLimit(
            POSTGRESQL_MESSAGE_MAX - STATEMENT_OVERHEAD,
            "PostgreSQL accepts at most 1 GB of parameters in one statement; this cannot be raised",
        )
    if dialect == "sqlite":
        driver = executor.driver_connection
        if isinstance(driver, sqlite3.Connection):
            length = driver.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
            return PayloadLimit(
                length - STATEMENT_OVERHEAD,
                f"SQLite's SQLITE_LIMIT_LENGTH is {length:,} bytes per value and per row",
            )
    return PayloadLimit(POSTGRESQL_MESSAGE_MAX, "this engine's limit is not known")
