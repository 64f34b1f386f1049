"""Units of work: how each call of the store reaches the database.

A unit of work hands a call a `Connection` inside the transaction that call
belongs to, and commits or rolls back as one. Two kinds:

- `EngineUnitOfWork`, for a store that owns its connections: each call takes
  a pooled connection and runs one transaction (SQLite writes `BEGIN
  IMMEDIATE`; reads one snapshot), unless a `batch()` is open in the calling
  context, whose connection it joins under a savepoint.
- `CallerUnitOfWork`, for a store given the caller's `Connection` or ORM
  `Session`: every call runs under a savepoint inside the caller's current
  transaction, so the caller's commit keeps the provenance writes with its
  own rows and its rollback removes both, and a refused call leaves the
  caller's transaction usable. The store never commits, rolls back or closes
  the caller's connection.

Both check payload sizes against the connection's limit before a write's
first statement (`payload_limits`). They let SQLAlchemy's errors through:
the repository interprets integrity errors and `dberrors` translates.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from dag_provenance import payload_limits
from dag_provenance.dberrors import translated
from dag_provenance.engine import WRITE_OPTION
from dag_provenance.errors import BatchThreadError, InvalidInputError


class UnitOfWork(Protocol):
    """What the repository and maintenance need from a unit of work."""

    @property
    def engine(self) -> Engine:
        """The engine of the database the units run on."""
        ...

    def write(self, payloads: payload_limits.Payloads = ()) -> AbstractContextManager[Connection]:
        """A connection in a write transaction; `payloads` are checked first."""
        ...

    def read(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction that sees one snapshot."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Make the calls in the block one transaction (see `DagProvenance.batch`)."""
        ...


class _Batch:
    """An open batch of an `EngineUnitOfWork`: its connection and owning thread."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.thread = threading.get_ident()
        self.is_open = True


_batches: ContextVar[Mapping[EngineUnitOfWork, _Batch]] = ContextVar(
    "dag_provenance_batches", default=MappingProxyType({})
)
"""The batches open in the current context, by unit of work."""


class EngineUnitOfWork:
    """One pooled connection and one transaction per call, or the open batch's.

    Writes ask SQLite for `BEGIN IMMEDIATE` (the write lock up front, so two
    writers never deadlock); reads see one snapshot of the database across
    their statements (a plain BEGIN on SQLite's WAL, REPEATABLE READ on the
    servers).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._read_engine = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="REPEATABLE READ")
        )

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def write(self, payloads: payload_limits.Payloads = ()) -> Iterator[Connection]:
        with self._unit(self._write_engine, payloads) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._unit(self._read_engine, ()) as conn:
            yield conn

    @contextmanager
    def _unit(self, engine: Engine, payloads: payload_limits.Payloads) -> Iterator[Connection]:
        """Inside a batch each call runs under a savepoint, so a refused call
        leaves the batch as it was before that call."""
        batch = self._open_batch()
        if batch is not None:
            with batch.connection.begin_nested():
                if payloads:
                    payload_limits.check(batch.connection, payloads)
                yield batch.connection
            return
        with engine.connect() as conn, conn.begin():
            if payloads:
                payload_limits.check(conn, payloads)
            yield conn

    def _open_batch(self) -> _Batch | None:
        """The batch of this unit of work open in the calling context, if any."""
        batch = _batches.get().get(self)
        if batch is None or not batch.is_open:
            return None
        if batch.thread != threading.get_ident():
            raise BatchThreadError(
                "this call is inside a batch() opened on another thread (the context was "
                "copied, as asyncio.to_thread does): a batch's connection is used only by "
                "the thread that opened it; call the store from that thread, or outside "
                "the batch"
            )
        return batch

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for the calls made in the block in this context.

        The batch belongs to the execution context that opened it (a
        `ContextVar`): asyncio tasks created inside the block copy it and
        join; other tasks, and threads without the context, are outside it. A
        copy of the context on another thread raises `BatchThreadError`. A
        batch inside a batch is a savepoint of the outer one.
        """
        with translated():
            outer = self._open_batch()
            if outer is not None:
                with outer.connection.begin_nested():
                    yield
                return
            with self._write_engine.connect() as conn, conn.begin():
                batch = _Batch(conn)
                token = _batches.set({**_batches.get(), self: batch})
                try:
                    yield
                finally:
                    batch.is_open = False
                    _batches.reset(token)


class CallerUnitOfWork:
    """Every call under a savepoint of the caller's `Connection` or `Session`.

    The caller owns the transaction: nothing here begins its outermost level
    (SQLAlchemy's autobegin does, as for any statement on it), commits it,
    rolls it back or closes it. A batch is one more savepoint around the
    calls in its block. Like the connection itself, a store built on it is
    for the thread using that connection.
    """

    def __init__(self, owner: Connection | Session) -> None:
        self._owner = owner
        bind = owner.get_bind() if isinstance(owner, Session) else owner
        engine = bind.engine if isinstance(bind, Connection) else bind
        if not isinstance(engine, Engine):
            raise InvalidInputError(
                f"the Session must be bound to an Engine or Connection, got {bind!r}"
            )
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _savepoint(self) -> Iterator[Connection]:
        if isinstance(self._owner, Session):
            _begin_sqlite_transaction(self._owner.connection())
            with self._owner.begin_nested():
                yield self._owner.connection()
            return
        _begin_sqlite_transaction(self._owner)
        with self._owner.begin_nested():
            yield self._owner

    @contextmanager
    def write(self, payloads: payload_limits.Payloads = ()) -> Iterator[Connection]:
        with self._savepoint() as conn:
            if payloads:
                payload_limits.check(conn, payloads)
            yield conn

    def read(self) -> AbstractContextManager[Connection]:
        # A savepoint for reads too: a failing statement must not abort the
        # caller's transaction (PostgreSQL would refuse everything after it).
        return self._savepoint()

    @contextmanager
    def batch(self) -> Iterator[None]:
        with translated(), self._savepoint():
            yield


def _begin_sqlite_transaction(conn: Connection) -> None:
    """Make sure SQLite itself is in the caller's transaction before a SAVEPOINT.

    pysqlite (unless the engine is configured as `engine.configure_sqlite`
    does) defers BEGIN until the first INSERT/UPDATE/DELETE. A SAVEPOINT
    sent first would open SQLite's transaction itself, and releasing it would
    commit, outside the caller's control; BEGIN first keeps the caller's
    commit and rollback in charge.
    """
    if conn.dialect.name != "sqlite":
        return
    if not conn.in_transaction():
        conn.begin()  # what the first statement would autobegin anyway
    driver = conn.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        driver.execute("BEGIN")
