"""What differs between DBAPI drivers when the store runs its own
transactions on a driver connection: how a transaction begins, how to tell
whether one is open without asking the server, and what a single statement
does on its own. One class per driver; anything else gets the DBAPI
defaults (every unit ends with `commit()` or `rollback()`).

The aim is the fewest round trips that keep each promise:

- a single statement commits on its own where the connection autocommits
  (SQLite with `isolation_level=None`, as `engine.configure_sqlite` sets it;
  psycopg switched to autocommit for the unit), so it needs no BEGIN/COMMIT;
- a transaction that reads several statements sees one snapshot;
- writes of several statements are one transaction, and on psycopg they go
  in one exchange (pipeline mode).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from typing import Any


class Driver:
    """The DBAPI defaults: implicit transactions, ended by commit/rollback."""

    begin_write: str | None = None
    """What starts a write transaction (None: the first statement does)."""
    needs_acquire = False
    """Whether `acquire` and `release` do anything (skipped when not)."""
    pipelines = False
    """Whether `pipeline` really queues statements (results come at its end)."""
    begin_snapshot: str | None = None
    """What starts a multi-statement read that must see one snapshot."""

    def acquire(self, connection: Any) -> None:
        """Ready a connection checked out for the store's own units."""

    def release(self, connection: Any) -> None:
        """Leave the connection as the pool's other users expect it."""

    def autocommits(self, connection: Any) -> bool:
        """Whether a single statement commits on its own on `connection`."""
        return False

    def in_transaction(self, connection: Any) -> bool:
        """Whether a transaction is open (unknown: assume so, and end it)."""
        return True

    def pipeline(self, connection: Any) -> AbstractContextManager[Any]:
        """Queue the statements of the block and send them in one exchange."""
        return contextlib.nullcontext()


class SQLiteDriver(Driver):
    """pysqlite: `BEGIN IMMEDIATE` takes the write lock up front (two writers
    never deadlock upgrading a read lock); a deferred `BEGIN` reads one WAL
    snapshot. With `isolation_level=None` each statement otherwise commits on
    its own; with pysqlite's legacy default it opens a transaction before
    DML, which `in_transaction` reports and the unit commits."""

    begin_write = "BEGIN IMMEDIATE"
    begin_snapshot = "BEGIN"

    def autocommits(self, connection: Any) -> bool:
        return connection.isolation_level is None

    def in_transaction(self, connection: Any) -> bool:
        return bool(connection.in_transaction)


class PsycopgDriver(Driver):
    """psycopg 3: autocommit for the store's units (switched on the client,
    no round trip), so a single statement is one exchange; explicit BEGIN for
    transactions; pipeline mode sends a transaction's statements together.
    Switched back on release: SQLAlchemy's own connections expect implicit
    transactions."""

    begin_write = "BEGIN"
    begin_snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    needs_acquire = True
    pipelines = True

    def acquire(self, connection: Any) -> None:
        if not connection.autocommit:
            connection.autocommit = True

    def release(self, connection: Any) -> None:
        if connection.autocommit and not connection.closed and not self.in_transaction(connection):
            connection.autocommit = False

    def autocommits(self, connection: Any) -> bool:
        return bool(connection.autocommit)

    def in_transaction(self, connection: Any) -> bool:
        # psycopg.pq.TransactionStatus: IDLE = 0, UNKNOWN = 4 (connection gone).
        return int(connection.info.transaction_status) not in (0, 4)

    @contextlib.contextmanager
    def pipeline(self, connection: Any) -> Iterator[Any]:
        # Ended by hand: leaving psycopg's `with` block with an error (a
        # refused statement aborts the pipeline) makes it log "error ignored
        # terminating" for every refused call. The unit of work rolls back.
        pipeline = connection.pipeline()
        pipeline.__enter__()
        try:
            yield pipeline
        except BaseException:
            with contextlib.suppress(Exception):
                pipeline.__exit__(None, None, None)
            raise
        pipeline.__exit__(None, None, None)


class PyMySQLDriver(Driver):
    """PyMySQL with autocommit off (SQLAlchemy's default): the first
    statement opens a transaction (InnoDB's REPEATABLE READ, set when the
    connection is made, gives a multi-statement read one snapshot), and every
    unit ends it: the server's IN_TRANS status flag is not set by a plain
    SELECT, whose snapshot would otherwise outlive the unit."""

    _AUTOCOMMIT = 2  # pymysql.constants.SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT

    def autocommits(self, connection: Any) -> bool:
        return bool(connection.server_status & self._AUTOCOMMIT)


_GENERIC = Driver()
_BY_MODULE: dict[str, Driver] = {
    "sqlite3": SQLiteDriver(),
    "psycopg": PsycopgDriver(),
    "pymysql": PyMySQLDriver(),
}


_BY_TYPE: dict[type, Driver] = {}


def driver_for(connection: Any) -> Driver:
    """The driver strategy for a DBAPI connection object."""
    kind = type(connection)
    driver = _BY_TYPE.get(kind)
    if driver is None:
        driver = _BY_TYPE[kind] = _BY_MODULE.get(kind.__module__.split(".")[0], _GENERIC)
    return driver


# --- asyncio drivers --------------------------------------------------------------------


class AsyncDriver:
    """An asyncio driver: the same transaction rules as its sync twin
    (`sync`), and the coroutines its connection and cursors offer."""

    sync: Driver = _GENERIC
    errors: tuple[type[Exception], ...] = ()
    """The driver's own exception classes (its DBAPI `Error`)."""

    async def acquire(self, connection: Any) -> None:
        """Ready a connection checked out for the store's own units."""

    async def release(self, connection: Any) -> None:
        """Leave the connection as the pool's other users expect it."""

    async def execute(self, connection: Any, sql: str, args: Any, many: bool = False) -> Any:
        """Send `sql`; return a cursor to read the result from."""
        cursor = await self.cursor(connection)
        if args is None:
            await cursor.execute(sql)
        elif many:
            await cursor.executemany(sql, args)
        else:
            await cursor.execute(sql, args)
        return cursor

    async def cursor(self, connection: Any) -> Any:
        return connection.cursor()

    async def fetchall(self, cursor: Any) -> list[Any]:
        return list(await cursor.fetchall())

    async def fetchone(self, cursor: Any) -> Any:
        return await cursor.fetchone()

    async def commit(self, connection: Any) -> None:
        await connection.commit()

    async def rollback(self, connection: Any) -> None:
        await connection.rollback()

    def pipeline(self, connection: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()


class AiosqliteDriver(AsyncDriver):
    """aiosqlite: sqlite3 run on a thread of its own per connection."""

    sync = SQLiteDriver()

    async def execute(self, connection: Any, sql: str, args: Any, many: bool = False) -> Any:
        if args is None:
            return await connection.execute(sql)
        if many:
            return await connection.executemany(sql, args)
        return await connection.execute(sql, args)


class PsycopgAsyncDriver(AsyncDriver):
    """psycopg 3's AsyncConnection, with its async pipeline; autocommit for
    the store's units, as the sync driver (set on the client, no round trip)."""

    sync = PsycopgDriver()

    async def acquire(self, connection: Any) -> None:
        if not connection.autocommit:
            await connection.set_autocommit(True)

    async def release(self, connection: Any) -> None:
        if (
            connection.autocommit
            and not connection.closed
            and not self.sync.in_transaction(connection)
        ):
            await connection.set_autocommit(False)

    @contextlib.asynccontextmanager
    async def pipeline(self, connection: Any) -> AsyncIterator[Any]:
        # Ended by hand, as the sync driver's is (no warning for a refusal).
        pipeline = connection.pipeline()
        await pipeline.__aenter__()
        try:
            yield pipeline
        except BaseException:
            with contextlib.suppress(Exception):
                await pipeline.__aexit__(None, None, None)
            raise
        await pipeline.__aexit__(None, None, None)


class AsyncmyDriver(AsyncDriver):
    """asyncmy (Cython): PyMySQL's protocol and rules, as coroutines."""

    sync = PyMySQLDriver()


class AiomysqlDriver(AsyncDriver):
    """aiomysql: PyMySQL's protocol and rules, as coroutines."""

    sync = PyMySQLDriver()

    async def cursor(self, connection: Any) -> Any:
        return await connection.cursor()


_ASYNC_ERRORS = {
    "aiosqlite": "sqlite3",
    "psycopg": "psycopg",
    "asyncmy": "asyncmy.errors",
    "aiomysql": "pymysql.err",
}
"""Where each asyncio driver's DBAPI `Error` class lives (already imported,
with the driver, by the time a connection of it is seen)."""


def _async_errors(name: str) -> tuple[type[Exception], ...]:
    module = _ASYNC_ERRORS.get(name)
    return () if module is None else (importlib.import_module(module).Error,)


_ASYNC_BY_MODULE: dict[str, type[AsyncDriver]] = {
    "aiosqlite": AiosqliteDriver,
    "psycopg": PsycopgAsyncDriver,
    "asyncmy": AsyncmyDriver,
    "aiomysql": AiomysqlDriver,
}
_ASYNC_BY_TYPE: dict[type, AsyncDriver] = {}


def async_driver_for(connection: Any) -> AsyncDriver:
    """The driver strategy for an asyncio driver's connection."""
    kind = type(connection)
    driver = _ASYNC_BY_TYPE.get(kind)
    if driver is None:
        name = kind.__module__.split(".")[0]
        driver = _ASYNC_BY_MODULE.get(name, AsyncDriver)()
        driver.errors = _async_errors(name)
        _ASYNC_BY_TYPE[kind] = driver
    return driver
