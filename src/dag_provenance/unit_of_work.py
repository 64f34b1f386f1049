"""Units of work: how each call of the store reaches the database.

A unit of work runs one call's statements (a function given an `Executor`)
as one transaction that commits once or rolls back whole. Two kinds:

- `EngineUnitOfWork`, for a store that owns its connections: each call
  checks a driver connection out of the engine's pool and runs its
  statements there with as few round trips as its promises allow (see
  `drivers`): a single-statement read or write commits on its own, a
  multi-statement read sees one snapshot, a multi-statement write is one
  transaction (one exchange on psycopg). Inside an open `batch()` calls join
  the batch's connection under a savepoint instead. A connection found
  broken (a server restart, a killed session) is discarded and the call run
  again on a fresh one, when that is safe: always for reads and for writes
  that set values; a write that inserts is replayed only with a check that
  can tell its own earlier commit from someone else's row (`on_replay`).
- `CallerUnitOfWork`, for a store given the caller's `Connection` or ORM
  `Session`: every call runs under a savepoint inside the caller's current
  transaction, through SQLAlchemy, so the caller's commit keeps the
  provenance writes with its own rows and its rollback removes both, and a
  refused call leaves the caller's transaction usable. The store never
  commits, rolls back or closes the caller's connection.

Both check payload sizes against the connection's limit before a write's
first statement (`payload_limits`). They let SQLAlchemy's errors through
(`execution` raises the driver's as SQLAlchemy's): the repository interprets
integrity errors and `dberrors` translates.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Protocol, TypeVar, cast

from sqlalchemy import Connection, Engine, event, exc
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from dag_provenance import payload_limits
from dag_provenance.dberrors import translated
from dag_provenance.drivers import Driver, driver_for
from dag_provenance.engine import ENDED_CLEAN, ThreadConnections
from dag_provenance.errors import BatchThreadError, InvalidInputError
from dag_provenance.events import ChangeEvent
from dag_provenance.execution import (
    Executor,
    RawExecutor,
    SAExecutor,
    is_observed,
    wrap_driver_error,
)
from dag_provenance.runner import drive

T = TypeVar("T")
Work = Callable[[Executor], T]
Deliver = Callable[[Sequence[ChangeEvent]], None]

#: How many broken pooled connections one call may meet (each is discarded)
#: before it gives up: more than a pool holds (5 + 10 overflow by default).
MAX_RECONNECTS = 16


class UnitOfWork(Protocol):
    """What the repository and maintenance need from a unit of work."""

    @property
    def engine(self) -> Engine:
        """The engine of the database the units run on."""
        ...

    def read(self, work: Work[T], *, snapshot: bool = False) -> T:
        """Run `work`'s reads. `snapshot`: it reads several statements that
        must see one state of the database."""
        ...

    def write(
        self,
        work: Work[T],
        *,
        payloads: payload_limits.Payloads = (),
        single: bool = False,
        pipeline: bool = False,
        on_replay: Callable[[], bool] | None = None,
    ) -> T | None:
        """Run `work`'s writes as one transaction, committed when this returns.

        `payloads` are checked against the connection's limit first.
        `single`: `work` sends one statement, which may commit on its own.
        `pipeline`: `work` reads no result before it returns (outcomes are
        read afterwards), so its statements may go in one exchange.
        `on_replay`: for work that inserts rows, whose replay after a lost
        connection may meet its own earlier commit: called when a replay
        fails on a constraint, it says whether the database holds exactly
        what this call wrote (then the call succeeded, and this returns None).
        """
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Make the calls in the block one transaction (see `DagProvenance.batch`)."""
        ...

    def publish(self, events: Sequence[ChangeEvent], deliver: Deliver) -> None:
        """`deliver(events)` of a write that has returned: now, if it committed;
        when its batch or the caller's transaction commits, if one is open
        (never, if that rolls back)."""
        ...


class HeldEvents:
    """Change events held until a transaction commits, with the marks of the
    savepoints open since they began (a savepoint rolled back drops what was
    held after its mark)."""

    def __init__(self) -> None:
        self.held: list[tuple[Deliver, Sequence[ChangeEvent]]] = []
        self._marks: dict[str, int] = {}

    def hold(self, events: Sequence[ChangeEvent], deliver: Deliver) -> None:
        self.held.append((deliver, events))

    def mark(self, savepoint: str) -> None:
        self._marks[savepoint] = len(self.held)

    def rolled_back_to(self, savepoint: str) -> None:
        # A savepoint with no mark began before anything was held.
        del self.held[self._marks.pop(savepoint, 0) :]

    def released(self, savepoint: str) -> None:
        self._marks.pop(savepoint, None)

    def release(self) -> None:
        """The transaction committed: deliver everything held, in order."""
        held, self.held = self.held, []
        self._marks.clear()
        for deliver, events in held:
            deliver(events)

    def drop(self) -> None:
        """The transaction rolled back: nothing held happened."""
        self.held.clear()
        self._marks.clear()


class _Batch:
    """An open batch of an `EngineUnitOfWork`: its connection and owning thread."""

    def __init__(self, connection: PoolProxiedConnection, executor: RawExecutor) -> None:
        self.connection = connection
        self.executor = executor
        self.thread = threading.get_ident()
        self.is_open = True
        self.events = HeldEvents()
        self._names = itertools.count()

    @contextmanager
    def savepoint(self) -> Iterator[RawExecutor]:
        """A savepoint around the block: if it raises, only its work (and the
        events it published) is undone."""
        name = f"dag_provenance_{next(self._names)}"
        self.executor.control(f"SAVEPOINT {name}")
        self.events.mark(name)
        try:
            yield self.executor
        except BaseException:
            self.events.rolled_back_to(name)
            with contextlib.suppress(exc.DBAPIError):  # the original error matters
                self.executor.control(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        self.events.released(name)
        self.executor.control(f"RELEASE SAVEPOINT {name}")


_batches: ContextVar[Mapping[EngineUnitOfWork, _Batch]] = ContextVar(
    "dag_provenance_batches", default=MappingProxyType({})
)
"""The batches open in the current context, by unit of work."""


class EngineUnitOfWork:
    """Each call on a pooled driver connection of its own (see the module)."""

    def __init__(self, engine: Engine, threads: ThreadConnections | None = None) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._threads = threads

    @property
    def engine(self) -> Engine:
        return self._engine

    def read(self, work: Work[T], *, snapshot: bool = False) -> T:
        batch = self._open_batch()
        if batch is not None:
            with batch.savepoint() as executor:
                return work(executor)

        def once(executor: RawExecutor, driver: Driver) -> T:
            conn = executor.driver_connection
            if not snapshot:
                result = work(executor)
            else:
                with executor.driver_errors("pipeline"), driver.pipeline(conn):
                    if driver.begin_snapshot:
                        executor.control(driver.begin_snapshot)
                    if driver.pipelines:
                        executor.end_with = "COMMIT"
                    result = work(executor)
                    if executor.end_with is not None:  # `work` sent no all_of
                        executor.end_with = None
                        executor.control("COMMIT")
            if driver.in_transaction(conn):
                executor.commit()
            return result

        # Without `on_replay` a run never ends in None: it returns or raises.
        return cast(T, self._run(once, replay=True, on_replay=None))

    def write(
        self,
        work: Work[T],
        *,
        payloads: payload_limits.Payloads = (),
        single: bool = False,
        pipeline: bool = False,
        on_replay: Callable[[], bool] | None = None,
    ) -> T | None:
        batch = self._open_batch()
        if batch is not None:
            with batch.savepoint() as executor:
                if payloads:
                    drive(payload_limits.checking(executor, payloads), executor)
                return work(executor)

        def once(executor: RawExecutor, driver: Driver) -> T:
            conn = executor.driver_connection
            if payloads:
                drive(payload_limits.checking(executor, payloads), executor)
            if single and driver.autocommits(conn):
                return work(executor)
            with (
                executor.driver_errors("pipeline"),
                driver.pipeline(conn) if pipeline else contextlib.nullcontext(),
            ):
                if driver.begin_write:
                    executor.control(driver.begin_write)
                executor.deferred = pipeline and driver.pipelines
                result = work(executor)
                if driver.begin_write:
                    executor.control("COMMIT")
            if driver.in_transaction(conn):
                executor.commit()
            return result

        return self._run(once, replay=True, on_replay=on_replay)

    def _run(
        self,
        once: Callable[[RawExecutor, Driver], T],
        *,
        replay: bool,
        on_replay: Callable[[], bool] | None,
    ) -> T | None:
        """Run `once` on a pooled connection; on a connection found broken,
        discard it and run again on another (up to `MAX_RECONNECTS`)."""
        for attempt in itertools.count():
            connection, executor, observed, held = self._checkout()
            conn = executor.driver_connection
            driver = driver_for(conn)
            try:
                if driver.needs_acquire:
                    executor.call(driver.acquire, "acquire")
                result = once(executor, driver)
                connection.info[ENDED_CLEAN] = True
                return result
            except exc.IntegrityError:
                self._end(connection, executor, driver)
                if attempt > 0 and on_replay is not None and on_replay():
                    return None
                raise
            except exc.DBAPIError as e:
                if not e.connection_invalidated:
                    self._end(connection, executor, driver)
                    raise
                connection.invalidate(e)
                if not replay or attempt >= MAX_RECONNECTS:
                    raise
            except BaseException:
                self._end(connection, executor, driver)
                raise
            finally:
                if held:
                    if not connection.is_valid:
                        self._threads.drop()  # type: ignore[union-attr]
                else:
                    if connection.is_valid and driver.needs_acquire:
                        with contextlib.suppress(Exception):
                            driver.release(conn)
                    (observed or connection).close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(
        self, own: bool = True
    ) -> tuple[PoolProxiedConnection, RawExecutor, Connection | None, bool]:
        """A pooled connection, its executor, the SQLAlchemy Connection lent
        when the engine is observed, and whether the connection is the
        thread's own (kept after the call; `own=False` never gives that).

        An engine someone observes (cursor-execute listeners, `echo`) lends a
        SQLAlchemy Connection, so the executor can pass every statement
        through the listeners."""
        engine = self._engine
        if is_observed(engine):
            observed = engine.connect()
            connection = observed.connection
            executor = RawExecutor(
                connection.driver_connection, self._dialect, connection.info, observed
            )
            return connection, executor, observed, False
        if own and self._threads is not None:
            kept = self._threads.take()
            if kept is not None:
                executor = RawExecutor(kept.driver_connection, self._dialect, kept.info)
                return kept, executor, None, True
        try:
            connection = engine.raw_connection()
        except self._dialect.loaded_dbapi.Error as e:
            # Engine.connect wraps a failed connect in SQLAlchemy's error; the
            # pool, which raw_connection calls directly, does not.
            raise wrap_driver_error(e, self._dialect, None, "connect", None) from e
        return (
            connection,
            RawExecutor(connection.driver_connection, self._dialect, connection.info),
            None,
            False,
        )

    @staticmethod
    def _end(connection: PoolProxiedConnection, executor: RawExecutor, driver: Driver) -> None:
        """After a failed unit: roll back what it left open (if the connection
        still works; if not, it is discarded)."""
        if not connection.is_valid:
            return
        try:
            if driver.in_transaction(executor.driver_connection):
                executor.rollback()
            connection.info[ENDED_CLEAN] = True
        except exc.DBAPIError as e:
            connection.invalidate(e)

    def publish(self, events: Sequence[ChangeEvent], deliver: Deliver) -> None:
        batch = self._open_batch()
        if batch is None:
            deliver(events)
        else:
            batch.events.hold(events, deliver)

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
                with outer.savepoint():
                    yield
                return
            connection, executor, observed, _ = self._checkout(own=False)
            conn = executor.driver_connection
            driver = driver_for(conn)
            batch = _Batch(connection, executor)
            token = _batches.set({**_batches.get(), self: batch})
            try:
                executor.call(driver.acquire, "acquire")
                executor.control(driver.begin_write or "BEGIN")
                yield
                executor.control("COMMIT")
                connection.info[ENDED_CLEAN] = True
            except BaseException:
                batch.events.drop()
                self._end(connection, executor, driver)
                raise
            finally:
                batch.is_open = False
                _batches.reset(token)
                if connection.is_valid:
                    with contextlib.suppress(Exception):
                        driver.release(conn)
                (observed or connection).close()
        batch.events.release()


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
        self._held: weakref.WeakKeyDictionary[Connection, HeldEvents] = weakref.WeakKeyDictionary()

    @property
    def engine(self) -> Engine:
        return self._engine

    def publish(self, events: Sequence[ChangeEvent], deliver: Deliver) -> None:
        """Held until the caller's transaction commits (SQLAlchemy's `commit`
        event of its connection, sent as the COMMIT goes out); dropped if it
        rolls back, or rolls back to a savepoint taken before the call."""
        owner = self._owner
        conn = owner.connection() if isinstance(owner, Session) else owner
        held = self._held.get(conn)
        if held is None:
            held = self._held[conn] = HeldEvents()
            _follow_transaction(conn, held)
        held.hold(events, deliver)

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

    def read(self, work: Work[T], *, snapshot: bool = False) -> T:
        # A savepoint for reads too: a failing statement must not abort the
        # caller's transaction (PostgreSQL would refuse everything after it).
        with self._savepoint() as conn:
            return work(SAExecutor(conn))

    def write(
        self,
        work: Work[T],
        *,
        payloads: payload_limits.Payloads = (),
        single: bool = False,
        pipeline: bool = False,
        on_replay: Callable[[], bool] | None = None,
    ) -> T | None:
        with self._savepoint() as conn:
            executor = SAExecutor(conn)
            if payloads:
                drive(payload_limits.checking(executor, payloads), executor)
            return work(executor)

    @contextmanager
    def batch(self) -> Iterator[None]:
        with translated(), self._savepoint():
            yield


def _follow_transaction(conn: Connection, held: HeldEvents) -> None:
    """Release `held` when `conn`'s transaction commits, drop it when it rolls
    back, and drop what a rolled-back savepoint covered."""
    event.listen(conn, "commit", lambda _conn: held.release())
    event.listen(conn, "rollback", lambda _conn: held.drop())
    event.listen(conn, "savepoint", lambda _conn, name: held.mark(name))
    event.listen(conn, "rollback_savepoint", lambda _conn, name, _ctx: held.rolled_back_to(name))
    event.listen(conn, "release_savepoint", lambda _conn, name, _ctx: held.released(name))


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


__all__ = ["MAX_RECONNECTS", "CallerUnitOfWork", "EngineUnitOfWork", "UnitOfWork"]
