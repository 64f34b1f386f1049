"""Executing the store's statements: each one compiled once per dialect by
SQLAlchemy and sent through the DBAPI driver, or through a SQLAlchemy
`Connection` when the store works inside the caller's.

Going through SQLAlchemy's `Connection.execute` costs about 50 µs a
statement on this machine (compiled-cache lookup, event dispatch, result
objects), several times what SQLite itself takes for a primary-key lookup.
`RawExecutor` keeps SQLAlchemy's part that matters, the SQL it compiles from
the expressions in `statements` and the types' bind and result processing,
and does the rest directly on the driver's connection:

- `prepare` compiles a statement once per dialect into its SQL text, the
  order of its parameters, the values the statement itself binds, and the
  processors of its parameter and result types;
- errors come back as SQLAlchemy's `DBAPIError` subclasses, as
  `Connection.execute` would raise them (with disconnects flagged), so
  `dberrors` and the repository treat both executors alike;
- a statement with an IN list given at call time (`expanding` parameters)
  is compiled for that call.

Both executors return rows as plain tuples.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, Insert, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

Params = Mapping[str, Any]
Processor = Callable[[Any], Any]


class Outcome(Protocol):
    """What a statement did; read `rowcount` after the unit of work ended
    (a pipelined statement's result arrives with the unit's last exchange)."""

    @property
    def rowcount(self) -> int: ...


class ConnectionFacts(Protocol):
    """What is known of the connection an executor runs on."""

    dialect: Dialect
    driver_connection: Any
    """The driver's own connection object."""
    info: dict[str, Any]
    """Kept as long as the driver's connection (e.g. its payload limit)."""


class Executor(Protocol):
    """Runs statements inside one unit of work."""

    dialect: Dialect
    deferred: bool
    """Statements are queued (pipelined): an outcome's rowcount can be read
    only after the unit of work ends."""
    driver_connection: Any
    """The driver's own connection object."""
    info: dict[str, Any]
    """Kept as long as the driver's connection (e.g. its payload limit)."""

    def all(self, statement: ClauseElement, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Every row of a SELECT."""
        ...

    def first(
        self, statement: ClauseElement, params: Params | None = None
    ) -> tuple[Any, ...] | None:
        """The first row of a SELECT, or None."""
        ...

    def execute(self, statement: ClauseElement, params: Params | None = None) -> Outcome:
        """Run an INSERT/UPDATE/DELETE; its rowcount is read from the outcome."""
        ...

    def many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        """Run a statement once per parameter set (executemany)."""
        ...

    def all_of(
        self, queries: Sequence[tuple[ClauseElement, Params]]
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of several SELECTs, sent together where the driver can."""
        ...


@dataclass(frozen=True)
class Prepared:
    """A statement compiled for one dialect, ready for the driver."""

    sql: str
    positional: bool
    names: tuple[str, ...]
    """Every parameter, in the order a positional driver takes them."""
    defaults: Mapping[str, Any]
    """Values the statement binds itself (e.g. a status it sets)."""
    bind_processors: Mapping[str, Processor]
    result_processors: tuple[Processor | None, ...] | None
    """One per result column (None: no conversion); None if no column needs one."""
    expanding: SQLCompiler | None
    """For a statement with IN lists: its compiled form, expanded per call."""

    def args(self, params: Params | None) -> tuple[str, Any]:
        """The SQL and the driver's parameters (a tuple, or a dict by name)."""
        if self.expanding is not None:
            return self._expanded(self.expanding, params)
        values = {**self.defaults, **params} if params else self.defaults
        if self.positional:
            return self.sql, tuple(
                [values[n] if p is None else p(values[n]) for n, p in self._ordered]
            )
        return self.sql, {n: values[n] if p is None else p(values[n]) for n, p in self._ordered}

    @functools.cached_property
    def _ordered(self) -> tuple[tuple[str, Processor | None], ...]:
        return tuple((name, self.bind_processors.get(name)) for name in self.names)

    def _expanded(self, compiled: SQLCompiler, params: Params | None) -> tuple[str, Any]:
        state = compiled.construct_expanded_state(dict(params or {}))
        base = {
            expanded: name
            for name, names in (state.parameter_expansion or {}).items()
            for expanded in names
        }
        processors = self.bind_processors
        values = {}
        for name, value in state.parameters.items():
            processor = processors.get(base.get(name, name))
            values[name] = value if processor is None else processor(value)
        if state.positiontup is not None:
            return state.statement, tuple(values[name] for name in state.positiontup)
        return state.statement, values

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The driver's rows with the result types' processing applied."""
        if self.result_processors is None:
            return [tuple(r) for r in raw]
        return [self.row(r) for r in raw]

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """One driver row with the result types' processing applied."""
        if self.result_processors is None:
            return tuple(raw)
        values = list(raw)
        for i, process in self._processing:
            values[i] = process(values[i])
        return tuple(values)

    @functools.cached_property
    def _processing(self) -> tuple[tuple[int, Processor], ...]:
        return tuple((i, p) for i, p in enumerate(self.result_processors or ()) if p is not None)


def compile_for(
    statement: ClauseElement, dialect: Dialect, columns: frozenset[str] | None = None
) -> Prepared:
    """Compile `statement` for `dialect`, once. An INSERT given its rows at
    execution is compiled for the `columns` its rows have (as SQLAlchemy does)."""
    compiled = cast(
        SQLCompiler,
        statement.compile(
            dialect=dialect, column_keys=None if columns is None else sorted(columns)
        ),
    )
    binds: dict[str, BindParameter[Any]] = dict(compiled.binds)
    processors: dict[str, Processor] = {}
    for name, bind in binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    columns = getattr(statement, "selected_columns", None)
    result_processors: tuple[Processor | None, ...] | None = None
    if columns is not None:
        found = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        if any(p is not None for p in found):
            result_processors = found
    expanding = any(bind.expanding for bind in binds.values())
    return Prepared(
        sql=compiled.string,
        positional=bool(compiled.positional),
        names=tuple(compiled.positiontup or ()) if compiled.positional else tuple(binds),
        defaults={name: bind.effective_value for name, bind in binds.items() if not bind.required},
        bind_processors=processors,
        result_processors=result_processors,
        expanding=compiled if expanding else None,
    )


_CacheKey = tuple[int, frozenset[str] | None]


class _Statements:
    """The prepared form of each statement, per dialect (kept as long as the dialect)."""

    def __init__(self) -> None:
        self._by_dialect: weakref.WeakKeyDictionary[
            Dialect, dict[_CacheKey, tuple[ClauseElement, Prepared]]
        ] = weakref.WeakKeyDictionary()

    def for_dialect(self, dialect: Dialect) -> dict[_CacheKey, tuple[ClauseElement, Prepared]]:
        """The cache of one dialect (an executor keeps it for its calls)."""
        cache = self._by_dialect.get(dialect)
        if cache is None:
            cache = self._by_dialect.setdefault(dialect, {})
        return cache

    @staticmethod
    def get_in(
        cache: dict[_CacheKey, tuple[ClauseElement, Prepared]],
        statement: ClauseElement,
        dialect: Dialect,
        params: Params | None,
    ) -> Prepared:
        """The prepared form of `statement` (for an INSERT, of the columns
        `params` name), from the dialect's cache (`for_dialect`)."""
        if not isinstance(statement, Insert):
            hit = cache.get((id(statement), None))
            if hit is not None and hit[0] is statement:
                return hit[1]
        columns = frozenset(params) if isinstance(statement, Insert) and params else None
        key = (id(statement), columns)
        hit = cache.get(key)
        if hit is not None and hit[0] is statement:
            return hit[1]
        prepared = compile_for(statement, dialect, columns)
        # Statements built per call (maintenance pages) are not worth keeping.
        if len(cache) < 2_000:
            cache[key] = (statement, prepared)
        return prepared


prepared_statements = _Statements()


class DriverOutcome:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class _StatementContext:
    """Stands in for SQLAlchemy's execution context in the cursor events the
    raw path fires (listeners such as tracers keep their state on it)."""

    def __init__(self, executemany: bool) -> None:
        self.executemany = executemany


def is_observed(engine: Engine) -> bool:
    """Whether someone watches `engine`'s statements (cursor-execute
    listeners, `echo`): the raw paths then pass theirs through too."""
    dispatch = engine.dispatch
    return bool(engine.echo or dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def before_cursor_execute(
    observed: Connection, cursor: Any, sql: str, args: Any, many: bool
) -> tuple[str, Any, _StatementContext]:
    """Pass a statement the raw path is about to send through `observed`'s
    engine's `before_cursor_execute` listeners (which may change it) and its
    `echo` log, as SQLAlchemy would; the context for `after_cursor_execute`."""
    context = _StatementContext(many)
    for listener in observed.dispatch.before_cursor_execute:
        sql, args = listener(observed, cursor, sql, args, context, many)
    if observed.engine.echo:
        observed.engine.logger.info("%s", sql)
        observed.engine.logger.info("[dag-provenance] %r", args)
    return sql, args, context


def echo_control(observed: Connection, sql: str) -> None:
    """Log a transaction control statement, as SQLAlchemy logs its own (they
    do not go to cursor listeners: SQLAlchemy reports transactions through
    other events)."""
    if observed.engine.echo:
        observed.engine.logger.info("%s", sql)


class RawExecutor:
    """Runs statements on a DBAPI connection; the transaction is the unit of
    work's business. Inside psycopg's pipeline mode (opened by the unit of
    work) statements are queued and reach the server with the unit's others
    in one exchange; fetching rows, or the unit's end, sends them.

    `observed`: the SQLAlchemy `Connection` of an engine that has
    `before_cursor_execute`/`after_cursor_execute` listeners or `echo` on.
    Every statement is then logged and passed through those listeners as
    SQLAlchemy would (a listener registered with `retval=True` may change the
    statement and its parameters), so logging and tracing see the store."""

    def __init__(
        self,
        dbapi_connection: Any,
        dialect: Dialect,
        info: dict[str, Any],
        observed: Connection | None = None,
    ) -> None:
        self.dialect = dialect
        self.driver_connection = dbapi_connection
        self.info = info
        self._conn = dbapi_connection
        self._error = dialect.loaded_dbapi.Error
        self._observed = observed
        self._prepared = prepared_statements.for_dialect(dialect)
        self.deferred = False
        self.end_with: str | None = None
        """A statement (COMMIT) to queue after the queries of `all_of`, so it
        goes in their exchange; the unit of work sets it for pipelined reads."""

    @contextmanager
    def _driver_errors(self, sql: str, args: Any) -> Iterator[None]:
        try:
            yield
        except self._error as e:
            raise wrap_driver_error(e, self.dialect, self._conn, sql, args) from e

    def driver_errors(self, what: str) -> AbstractContextManager[None]:
        """Raise the driver's errors in the block as SQLAlchemy's (e.g. those a
        pipeline reports when it is sent, at the end of its block)."""
        return self._driver_errors(what, None)

    def _send(self, cursor: Any, sql: str, args: Any, many: bool = False) -> None:
        observed = self._observed
        if observed is not None:
            sql, args, context = before_cursor_execute(observed, cursor, sql, args, many)
        try:
            if args is None:
                cursor.execute(sql)
            elif many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
        except self._error as e:
            raise wrap_driver_error(e, self.dialect, self._conn, sql, args) from e
        if observed is not None:
            observed.dispatch.after_cursor_execute(observed, cursor, sql, args, context, many)

    def _run(self, statement: ClauseElement, params: Params | None) -> tuple[Prepared, Any]:
        prepared = prepared_statements.get_in(self._prepared, statement, self.dialect, params)
        sql, args = prepared.args(params)
        cursor = self._conn.cursor()
        self._send(cursor, sql, args)
        return prepared, cursor

    def all(self, statement: ClauseElement, params: Params | None = None) -> list[tuple[Any, ...]]:
        prepared, cursor = self._run(statement, params)
        try:
            return prepared.rows(cursor.fetchall())
        except self._error as e:
            raise wrap_driver_error(e, self.dialect, self._conn, prepared.sql, None) from e

    def first(
        self, statement: ClauseElement, params: Params | None = None
    ) -> tuple[Any, ...] | None:
        prepared, cursor = self._run(statement, params)
        try:
            row = cursor.fetchone()
        except self._error as e:
            raise wrap_driver_error(e, self.dialect, self._conn, prepared.sql, None) from e
        return None if row is None else prepared.row(row)

    def execute(self, statement: ClauseElement, params: Params | None = None) -> Outcome:
        return DriverOutcome(self._run(statement, params)[1])

    def many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        prepared = prepared_statements.get_in(
            self._prepared, statement, self.dialect, rows[0] if rows else None
        )
        args = [prepared.args(row)[1] for row in rows]
        self._send(self._conn.cursor(), prepared.sql, args, many=True)

    def all_of(
        self, queries: Sequence[tuple[ClauseElement, Params]]
    ) -> list[list[tuple[Any, ...]]]:
        started = [self._run(statement, params) for statement, params in queries]
        if self.end_with is not None:
            end, self.end_with = self.end_with, None
            self.control(end)
        try:
            return [prepared.rows(cursor.fetchall()) for prepared, cursor in started]
        except self._error as e:
            raise wrap_driver_error(e, self.dialect, self._conn, "fetch", None) from e

    def control(self, sql: str) -> None:
        """Send a transaction control statement (BEGIN, COMMIT, SAVEPOINT ...).
        Like SQLAlchemy's own, these are logged but not passed to cursor
        listeners (SQLAlchemy reports transactions through other events)."""
        if self._observed is not None:
            echo_control(self._observed, sql)
        try:
            self._conn.cursor().execute(sql)
        except self._error as e:
            raise wrap_driver_error(e, self.dialect, self._conn, sql, None) from e

    def commit(self) -> None:
        with self._driver_errors("COMMIT", None):
            self._conn.commit()

    def rollback(self) -> None:
        with self._driver_errors("ROLLBACK", None):
            self._conn.rollback()

    def call(self, fn: Callable[[Any], object], what: str) -> None:
        """`fn(driver connection)`, its driver errors raised as SQLAlchemy's."""
        with self._driver_errors(what, None):
            fn(self._conn)


class SAExecutor:
    """Runs statements through a SQLAlchemy `Connection` (the caller's)."""

    def __init__(self, connection: Connection) -> None:
        self.dialect = connection.dialect
        self.deferred = False
        self.driver_connection = connection.connection.driver_connection
        self.info = connection.connection.info
        self._conn = connection

    def all(self, statement: ClauseElement, params: Params | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(statement, params)]  # type: ignore[call-overload]

    def first(
        self, statement: ClauseElement, params: Params | None = None
    ) -> tuple[Any, ...] | None:
        row = self._conn.execute(statement, params).first()  # type: ignore[call-overload]
        return None if row is None else tuple(row)

    def execute(self, statement: ClauseElement, params: Params | None = None) -> Outcome:
        result: Outcome = self._conn.execute(statement, params)  # type: ignore[call-overload]
        return result

    def many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        self._conn.execute(statement, list(rows))  # type: ignore[call-overload]

    def all_of(
        self, queries: Sequence[tuple[ClauseElement, Params]]
    ) -> list[list[tuple[Any, ...]]]:
        return [self.all(statement, params) for statement, params in queries]


def wrap_driver_error(
    e: Exception,
    dialect: Dialect,
    dbapi_connection: Any,
    sql: str,
    args: Any,
    base: type[Exception] | None = None,
) -> exc.DBAPIError:
    """`e` as SQLAlchemy's DBAPIError subclass, flagged when the connection is
    gone. `base`: the driver's error classes, when they are not the dialect's
    DBAPI ones (an asyncio driver used directly)."""
    try:
        disconnect = bool(dialect.is_disconnect(e, dbapi_connection, None))  # type: ignore[arg-type]
    except Exception:  # a dialect's check must never hide the real error
        disconnect = False
    wrapped = exc.DBAPIError.instance(
        sql,
        args,
        e,
        base or dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect,
        dialect=dialect,
    )
    assert isinstance(wrapped, exc.DBAPIError)  # `e` is the driver's Error
    return wrapped
