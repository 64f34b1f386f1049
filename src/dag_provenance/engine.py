"""Turn what the user gave (a path, a URL, an Engine) into a configured Engine.

SQLite files get what production SQLite users need: WAL, synchronous=NORMAL,
a busy timeout, foreign keys enforced, and transactions whose kind the
unit of work chooses: `BEGIN IMMEDIATE` for writes (the write lock is taken
up front, so two writers never deadlock upgrading a read lock) and a plain
`BEGIN` for reads (a consistent WAL snapshot that never blocks writers).

Server engines keep a call to its useful round trips: no pre-ping (a broken
connection is replaced when a call meets it), session settings made once
when a connection is made, and (MariaDB/MySQL) no ROLLBACK as a connection
goes back to the pool unless it was left in a transaction.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import PoolProxiedConnection

from dag_provenance.errors import (
    DatabaseUnavailableError,
    DriverNotInstalledError,
    InvalidInputError,
)

URL_ENV = "DAG_PROVENANCE_URL"
"""The environment variable naming the database of the CLI and of `alembic`."""

#: Execution option a unit of work sets to ask SQLite for BEGIN IMMEDIATE.
WRITE_OPTION = "dag_provenance_write"

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
# A MariaDB/MySQL connection silent this long in the middle of a statement is
# treated as lost (the call fails with DatabaseUnavailableError, never hangs).
MYSQL_READ_TIMEOUT_S = 600
PG_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                 "keepalives_count": 3}  # fmt: skip
# MariaDB stops recursive CTEs after 1,000 iterations by default; deep sub-DAG
# nesting needs more. Cycles cannot loop: the descendant CTE uses UNION.
MYSQL_MAX_RECURSIVE_ITERATIONS = 1_000_000

_SQLITE_BUSY_PRAGMA = "PRAGMA busy_timeout = " + str(SQLITE_BUSY_TIMEOUT_MS)

DbTarget = str | os.PathLike[str] | Engine


def is_url(target: str) -> bool:
    return "://" in target


def sqlite_file_url(path: str | os.PathLike[str]) -> URL:
    """A `sqlite+pysqlite` URL for `path`, creating its parent folders."""
    file = Path(path).expanduser().resolve()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatabaseUnavailableError(
            f"cannot create the folder of SQLite database {str(file)!r}: {e.strerror or e}"
        ) from e
    return URL.create("sqlite+pysqlite", database=str(file))


#: The pip extra that installs each server engine's driver.
DRIVER_EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


def make_engine(target: DbTarget, **engine_kwargs: Any) -> Engine:
    """An Engine for `target`: an `Engine` as given, a URL string, or a SQLite file path."""
    if isinstance(target, Engine):
        return target
    url = make_url(str(target)) if isinstance(target, str) and is_url(target) else None
    if url is None:
        url = sqlite_file_url(target)
    try:
        engine: Engine = _engine_for(url, **engine_kwargs)
    except ImportError as e:
        raise _not_installed(url, e, DRIVER_EXTRAS.get(url.get_backend_name())) from e
    return engine


def _not_installed(url: URL, e: ImportError, extra: str | None) -> DriverNotInstalledError:
    hint = f": pip install 'dag-provenance[{extra}]'" if extra else ""
    return DriverNotInstalledError(f"the driver for {url.drivername} is not installed ({e}){hint}")


#: The asyncio driver each sync URL's engine is served by.
ASYNC_DRIVERS = {
    "sqlite": "aiosqlite",
    "postgresql": "psycopg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
}
#: The extra that installs each engine's asyncio driver (and greenlet).
ASYNC_EXTRAS = {"postgresql": "postgresql-async", "mysql": "mysql-async", "mariadb": "mysql-async"}
_ASYNC_DRIVER_NAMES = {"aiosqlite", "psycopg", "psycopg_async", "aiomysql"}
_REFUSED_ASYNC_DRIVERS = {
    # asyncmy 0.2 hangs or fails reading a value of 16 MiB or more (a row
    # split over several packets): payloads that large are the store's to keep.
    "asyncmy": "it cannot read back a value of 16 MiB or more",
}
_SYNC_DRIVER_NAMES = {
    "pysqlite",
    "psycopg2",
    "pg8000",
    "pymysql",
    "mysqldb",
    "mysqlconnector",
    "mariadbconnector",
}


def sqlite_file_of(url: URL) -> Path | None:
    """The file a SQLite URL names (None for another engine, or in memory)."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database))
    return None


def async_url(target: str | os.PathLike[str]) -> URL:
    """The asyncio URL for `target`: a SQLite path, or a URL whose sync driver
    (pysqlite, psycopg, psycopg2, PyMySQL, ...) is replaced by its asyncio
    one (aiosqlite, psycopg's async mode, aiomysql); a URL naming one of
    those asyncio drivers as given."""
    url = make_url(str(target)) if isinstance(target, str) and is_url(target) else None
    if url is None:
        url = sqlite_file_url(target)
    if url.get_driver_name() in _ASYNC_DRIVER_NAMES:
        return url
    backend = url.get_backend_name()
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise InvalidInputError(f"no asyncio driver is known for {url.drivername!r} URLs")
    if url.get_driver_name() not in _SYNC_DRIVER_NAMES:
        why = _REFUSED_ASYNC_DRIVERS.get(url.get_driver_name())
        raise InvalidInputError(
            f"the async store does not run on {url.drivername!r}"
            f"{f' ({why})' if why else ''}: use {backend}+{driver} "
            f"(or a {backend} URL of any sync driver, which is mapped to it)"
        )
    return url.set(drivername=f"{backend}+{driver}")


#: The sync driver that reads what each asyncio driver does (aiomysql is built on PyMySQL).
_SYNC_TWINS = {"aiosqlite": "pysqlite", "aiomysql": "pymysql", "asyncmy": "pymysql"}


def sync_url(url: URL) -> URL:
    """The URL of the same database through a sync driver: the inverse of
    `async_url` (psycopg serves both; a sync URL is returned as it is)."""
    twin = _SYNC_TWINS.get(url.get_driver_name())
    if twin is None:
        return url
    return url.set(drivername=f"{url.get_backend_name()}+{twin}")


def make_async_engine(target: str | os.PathLike[str], **engine_kwargs: Any) -> Any:
    """An `AsyncEngine` for `target` (see `async_url`), configured as
    `make_engine` configures a sync one."""
    url = async_url(target)
    try:
        if importlib.util.find_spec("greenlet") is None:  # needed only once connecting
            raise ImportError("No module named 'greenlet'")
        from sqlalchemy.ext.asyncio import create_async_engine

        return _engine_for(url, _Factory(create_async_engine, asyncio=True), **engine_kwargs)
    except ImportError as e:
        raise _not_installed(url, e, ASYNC_EXTRAS.get(url.get_backend_name(), "async")) from e


@dataclass(frozen=True)
class _Factory:
    """How an engine is made: `create_engine`, or asyncio's `create_async_engine`
    (whose events are installed on its `sync_engine`)."""

    create: Callable[..., Any] = create_engine
    asyncio: bool = False

    def events_of(self, engine: Any) -> Engine:
        return engine.sync_engine if self.asyncio else engine  # type: ignore[no-any-return]


_SYNC = _Factory()


#: An async store's pool on a server: tasks wait for a connection without
#: holding a thread, so no overflow (SQLAlchemy's default closes its 10
#: overflow connections after each burst and opens them again on the next);
#: and at most this many calls resume in one turn of the event loop.
#: Measured with 100 tasks writing on PostgreSQL (benchmarks/async_tasks.py):
#: worst loop lag 27 ms with 5 + 10, 16 ms with 10 + 0, 8 ms with 6 + 0, the
#: same throughput; 6 would cap a larger machine's concurrency.
ASYNC_POOL = {"pool_size": 10, "max_overflow": 0}


def _engine_for(url: URL, factory: _Factory = _SYNC, **engine_kwargs: Any) -> Any:
    create = factory.create
    backend = url.get_backend_name()
    if factory.asyncio and backend != "sqlite":
        engine_kwargs = {**ASYNC_POOL, **engine_kwargs}
    if backend == "sqlite":
        return _sqlite_engine(url, factory, **engine_kwargs)
    if backend in ("mysql", "mariadb"):
        return _mysql_engine(url, factory, **engine_kwargs)
    if backend == "postgresql":
        # No pre-ping: it costs every call a round trip. A connection found
        # broken when used is discarded and the call run again on a fresh one
        # (see unit_of_work).
        kwargs: dict[str, Any] = {**engine_kwargs}
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        # TCP keepalives: a server that vanishes mid-statement (host down,
        # network cut) is noticed in about a minute instead of never.
        for name, value in PG_KEEPALIVES.items():
            connect_args.setdefault(name, value)
        return create(url, **kwargs)
    return create(url, pool_pre_ping=True, **engine_kwargs)


def _sqlite_engine(url: URL, factory: _Factory, **engine_kwargs: Any) -> Any:
    kwargs: dict[str, Any] = {"pool_size": 8, "max_overflow": 16, **engine_kwargs}
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = factory.create(url, **kwargs)
    configure_sqlite(factory.events_of(engine))
    return engine


def configure_sqlite(engine: Engine) -> None:
    """Install the pragmas and the BEGIN handling on a SQLite engine."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not pysqlite, decide when transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(_SQLITE_BUSY_PRAGMA)
            if sqlite_file_of(engine.url) is not None:
                _use_wal(cursor)
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        # Straight to the DBAPI connection (for aiosqlite, SQLAlchemy's
        # adapter): the statement needs none of SQLAlchemy's execution machinery.
        conn.connection.dbapi_connection.cursor().execute("BEGIN IMMEDIATE" if write else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (once: the mode is stored in the file).

    The switch needs an exclusive lock, and SQLite does not call the busy
    handler for it: with several processes opening a new file at once it
    fails with "database is locked" at once. Retry until the busy timeout.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _bound_async_connect(engine: Engine, driver: str) -> None:
    """Bound an asyncio MySQL driver's whole connect (TCP, handshake, login)
    by the connect timeout: aiomysql's connect_timeout covers only the TCP
    connect, and its handshake has no read timeout, so a server that accepts
    and never answers would hang the task. A connect that times out fails
    as the driver's own refused connect does (OperationalError 2003)."""
    connect = importlib.import_module(driver).connect
    dbapi = engine.dialect.loaded_dbapi

    async def bounded(*args: Any, **kwargs: Any) -> Any:
        timeout = kwargs.get("connect_timeout") or CONNECT_TIMEOUT_S
        try:
            async with asyncio.timeout(timeout):
                return await connect(*args, **kwargs)
        except TimeoutError as e:
            host = kwargs.get("host", "localhost")
            raise dbapi.OperationalError(
                2003, f"Can't connect to MySQL server on {host!r} (no answer in {timeout} s)"
            ) from e

    @event.listens_for(engine, "do_connect")
    def _do_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["async_creator_fn"] = bounded


def _mysql_engine(url: URL, factory: _Factory, **engine_kwargs: Any) -> Any:
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    # No pre-ping (see the PostgreSQL engine). The pool's own reset sends a
    # ROLLBACK, a round trip, each time a connection goes back; the "reset"
    # listener below skips it when SQLAlchemy or the store's unit of work
    # already ended the connection's transaction.
    kwargs: dict[str, Any] = {
        "pool_recycle": 3600,
        "pool_reset_on_return": None,
        **engine_kwargs,
    }
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    # PyMySQL's connect_timeout covers only the TCP connect; the handshake
    # reads with read_timeout, so a server that accepts and never answers
    # would hang the caller. Bound the handshake by the connect timeout...
    bound_handshake = "read_timeout" not in connect_args and not factory.asyncio
    if bound_handshake:
        connect_args["read_timeout"] = CONNECT_TIMEOUT_S
    made = factory.create(url, **kwargs)
    engine = factory.events_of(made)
    if factory.asyncio:
        _bound_async_connect(engine, url.get_driver_name())

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # ...then give statements the longer bound (no public setter exists).
        if bound_handshake and hasattr(dbapi_conn, "_read_timeout"):
            dbapi_conn._read_timeout = MYSQL_READ_TIMEOUT_S
        cursor = dbapi_conn.cursor()
        try:
            # UTC on the wire, so NOW() and DATETIME values never shift.
            cursor.execute("SET time_zone = '+00:00'")
            # Multi-statement reads see one snapshot: set once per connection,
            # whatever the server's default.
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT VERSION()")
            if "mariadb" in str(cursor.fetchone()[0]).lower():
                cursor.execute(
                    "SET SESSION max_recursive_iterations = %s",
                    (MYSQL_MAX_RECURSIVE_ITERATIONS,),
                )
            else:
                cursor.execute(
                    "SET SESSION cte_max_recursion_depth = %s",
                    (MYSQL_MAX_RECURSIVE_ITERATIONS,),
                )
        finally:
            cursor.close()

    if kwargs["pool_reset_on_return"] is None:

        @event.listens_for(engine, "reset")
        def _reset(dbapi_conn: Any, record: Any, state: Any) -> None:
            if state.transaction_was_reset or record.info.pop(ENDED_CLEAN, False):
                return
            dbapi_conn.rollback()

    return made


ENDED_CLEAN = "dag_provenance_ended_clean"
"""Set in a pooled connection's `info` by a unit of work that committed or
rolled back all it began, so the MariaDB/MySQL pool skips its ROLLBACK."""


class ThreadConnections:
    """Each thread's own pooled SQLite connection, kept checked out between
    the thread's calls.

    A pool checkout and checkin cost more than a SQLite primary-key lookup
    (about 15 µs against 12), so a thread that calls the store keeps one
    connection of the pool for its calls; a SQLite connection outside a
    transaction holds no lock, as an idle pooled one does not. At most
    `limit` threads hold one (the pool keeps the rest for other threads,
    batches and migrations); a thread's connection goes back to the pool when
    the thread ends, and every one when the engine is released. A process
    forked while holding them leaves them to the parent.
    """

    def __init__(self, engine: Engine, limit: int) -> None:
        self._engine = engine
        self._limit = limit
        self._local = threading.local()
        self._lock = threading.Lock()
        self._holders: weakref.WeakSet[_HeldConnection] = weakref.WeakSet()

    def take(self) -> PoolProxiedConnection | None:
        """This thread's connection, checked out on first use; None when
        `limit` threads already hold one."""
        holder: _HeldConnection | None = getattr(self._local, "holder", None)
        if holder is not None:
            if holder.connection is not None and holder.fork == _forks[0]:
                return holder.connection
            holder.forget()
        with self._lock:
            if len(self._holders) >= self._limit:
                return None
            holder = _HeldConnection(self._engine.raw_connection())
            self._holders.add(holder)
        self._local.holder = holder
        return holder.connection

    def drop(self) -> None:
        """Give up this thread's connection (it was invalidated)."""
        holder: _HeldConnection | None = getattr(self._local, "holder", None)
        if holder is not None:
            holder.release()
            self._local.holder = None

    def release_all(self) -> None:
        """Return every thread's connection to the pool (the engine is going)."""
        with self._lock:
            holders = list(self._holders)
        for holder in holders:
            holder.release()


class _HeldConnection:
    """A connection a thread keeps; returned to the pool when dropped."""

    def __init__(self, connection: PoolProxiedConnection) -> None:
        self.connection: PoolProxiedConnection | None = connection
        self.fork = _forks[0]

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and self.fork == _forks[0]:
            connection.close()

    def forget(self) -> None:
        """Let go of a connection from before a fork: it is the parent's."""
        if self.connection is not None and self.fork != _forks[0]:
            _abandoned.append(self.connection)  # never closed or reused here
        self.connection = None

    def __del__(self) -> None:  # the holding thread ended
        self.release()


_forks = [0]
_abandoned: list[PoolProxiedConnection] = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))

#: Threads that may each keep a SQLite connection (the pool holds 8 + 16).
SQLITE_THREAD_CONNECTIONS = 8


class _SharedEngines:
    """One Engine per database URL per process, as SQLAlchemy recommends.

    Stores opened on the same path or URL share its pool, so opening a store
    on a database this process already uses costs one cheap query, not a new
    engine, a first-connect handshake and (on SQLite) a WAL file open. When
    the last store using an engine is closed, its pooled connections are
    released; the engine itself (a few kilobytes) is kept for the next store.

    The schema check is remembered the same way: while a store of this
    process has a database open, more stores on it skip the check; once the
    last one closes, the next store checks again.

    A process forked from one holding stores starts with fresh pools: a
    database connection must never be used from both sides of a fork.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, Engine] = {}
        self._threads: dict[str, ThreadConnections] = {}
        self._users: dict[str, int] = {}
        self._schema_checked: set[str] = set()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held at the fork; the child has one thread.
        self._lock = threading.Lock()
        self._threads.clear()  # the parent's threads and connections
        for engine in self._engines.values():
            # Forget the parent's connections without closing them (closing
            # would end the parent's sessions too).
            engine.dispose(close=False)

    def schema_checked(self, key: str) -> bool:
        return key in self._schema_checked

    def mark_schema_checked(self, key: str) -> None:
        with self._lock:
            if self._users.get(key, 0) > 0:
                self._schema_checked.add(key)

    def acquire(self, target: str | os.PathLike[str]) -> tuple[Engine, str]:
        """The shared engine for `target` and the key to release it with."""
        key = _engine_key(target)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = make_engine(target)
            self._users[key] = self._users.get(key, 0) + 1
            return engine, key

    def release(self, key: str) -> None:
        with self._lock:
            users = self._users.get(key, 0) - 1
            self._users[key] = max(users, 0)
            if users == 0:
                self._schema_checked.discard(key)
                threads = self._threads.pop(key, None)
                if threads is not None:
                    threads.release_all()
                self._engines[key].dispose()

    def thread_connections(self, key: str) -> ThreadConnections | None:
        """The per-thread connections of a shared SQLite file engine, else None."""
        with self._lock:
            threads = self._threads.get(key)
            engine = self._engines.get(key)
            if threads is None and engine is not None and engine.dialect.name == "sqlite":
                threads = self._threads[key] = ThreadConnections(engine, SQLITE_THREAD_CONNECTIONS)
            return threads


def _engine_key(target: str | os.PathLike[str]) -> str:
    if isinstance(target, str) and is_url(target):
        url = make_url(target)
    else:
        url = URL.create("sqlite+pysqlite", database=str(Path(target).expanduser().resolve()))
    return url.render_as_string(hide_password=False)


shared_engines = _SharedEngines()
