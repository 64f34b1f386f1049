"""`AsyncRawExecutor`: the store's statements on an asyncio driver's
connection, for the async store (`async_unit_of_work`). The statements,
their parameters, row processing, error wrapping and cursor listeners are
`execution`'s; each exchange is awaited through the driver's strategy
(`drivers.AsyncDriver`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from dag_provenance.execution import (
    DriverOutcome,
    Outcome,
    Params,
    Prepared,
    before_cursor_execute,
    echo_control,
    prepared_statements,
    wrap_driver_error,
)


class AsyncRawExecutor:
    """`RawExecutor`'s twin for asyncio drivers: the same prepared statements,
    parameters, row processing and error wrapping, each statement awaited
    through the driver strategy (`drivers.AsyncDriver`). `observed`: as for
    `RawExecutor` (the `AsyncConnection`'s sync face), except that
    `before_cursor_execute` listeners get no cursor (None): the asyncio
    drivers make it as they send."""

    def __init__(
        self,
        connection: Any,
        dialect: Dialect,
        info: dict[str, Any],
        driver: Any,
        observed: Connection | None = None,
    ) -> None:
        self.dialect = dialect
        self.driver_connection = connection
        self.info = info
        self._driver = driver
        self._observed = observed
        self._errors: tuple[type[Exception], ...] = driver.errors or (dialect.loaded_dbapi.Error,)
        self._prepared = prepared_statements.for_dialect(dialect)
        self.deferred = False
        self.end_with: str | None = None

    def _wrap(self, e: Exception, sql: str, args: Any) -> exc.DBAPIError:
        return wrap_driver_error(
            e, self.dialect, self.driver_connection, sql, args, self._errors[0]
        )

    async def _send(self, sql: str, args: Any, many: bool = False) -> Any:
        observed = self._observed
        if observed is not None:  # the driver makes the cursor as it sends
            sql, args, context = before_cursor_execute(observed, None, sql, args, many)
        try:
            cursor = await self._driver.execute(self.driver_connection, sql, args, many)
        except self._errors as e:
            raise self._wrap(e, sql, args) from e
        if observed is not None:
            observed.dispatch.after_cursor_execute(observed, cursor, sql, args, context, many)
        return cursor

    async def _run(self, statement: ClauseElement, params: Params | None) -> tuple[Prepared, Any]:
        prepared = prepared_statements.get_in(self._prepared, statement, self.dialect, params)
        sql, args = prepared.args(params)
        return prepared, await self._send(sql, args)

    async def all(
        self, statement: ClauseElement, params: Params | None = None
    ) -> list[tuple[Any, ...]]:
        prepared, cursor = await self._run(statement, params)
        return prepared.rows(await self._fetch(self._driver.fetchall, cursor, prepared.sql))

    async def first(
        self, statement: ClauseElement, params: Params | None = None
    ) -> tuple[Any, ...] | None:
        prepared, cursor = await self._run(statement, params)
        row = await self._fetch(self._driver.fetchone, cursor, prepared.sql)
        return None if row is None else prepared.row(row)

    async def _fetch(self, fetch: Callable[[Any], Awaitable[Any]], cursor: Any, sql: str) -> Any:
        try:
            return await fetch(cursor)
        except self._errors as e:
            raise self._wrap(e, sql, None) from e

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> Outcome:
        return DriverOutcome((await self._run(statement, params))[1])

    async def many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        prepared = prepared_statements.get_in(
            self._prepared, statement, self.dialect, rows[0] if rows else None
        )
        await self._send(prepared.sql, [prepared.args(row)[1] for row in rows], many=True)

    async def all_of(
        self, queries: Sequence[tuple[ClauseElement, Params]]
    ) -> list[list[tuple[Any, ...]]]:
        started = [await self._run(statement, params) for statement, params in queries]
        if self.end_with is not None:
            end, self.end_with = self.end_with, None
            await self.control(end)
        return [
            prepared.rows(await self._fetch(self._driver.fetchall, cursor, prepared.sql))
            for prepared, cursor in started
        ]

    async def control(self, sql: str) -> None:
        """Send a transaction control statement (BEGIN, COMMIT, SAVEPOINT ...),
        logged as `RawExecutor.control`'s."""
        if self._observed is not None:
            echo_control(self._observed, sql)
        try:
            await self._driver.execute(self.driver_connection, sql, None)
        except self._errors as e:
            raise self._wrap(e, sql, None) from e

    async def commit(self) -> None:
        await self._call(self._driver.commit, "COMMIT")

    async def rollback(self) -> None:
        await self._call(self._driver.rollback, "ROLLBACK")

    async def _call(self, fn: Callable[[Any], Awaitable[Any]], what: str) -> None:
        try:
            await fn(self.driver_connection)
        except self._errors as e:
            raise self._wrap(e, what, None) from e

    @contextlib.asynccontextmanager
    async def driver_errors(self, what: str) -> AsyncIterator[None]:
        """Raise the driver's errors in the block as SQLAlchemy's."""
        try:
            yield
        except self._errors as e:
            raise self._wrap(e, what, None) from e
