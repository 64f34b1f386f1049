"""The asyncio twin of `unit_of_work.EngineUnitOfWork`: each call of the
async store on a pooled connection of its `AsyncEngine`, with the same
rules, per driver (`drivers`): a single statement commits on its own, a
multi-statement read sees one snapshot, a multi-statement write is one
transaction (one exchange on psycopg); a broken connection is discarded and
the call replayed when that is safe; an open `batch()` of the calling task's
context is joined under a savepoint.

What differs from the sync unit of work is only that every exchange is
awaited, so the event loop runs other tasks meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import exc

from dag_provenance import payload_limits
from dag_provenance.async_execution import AsyncRawExecutor
from dag_provenance.dberrors import translated
from dag_provenance.drivers import AsyncDriver, async_driver_for
from dag_provenance.engine import ENDED_CLEAN
from dag_provenance.events import ChangeEvent
from dag_provenance.execution import is_observed
from dag_provenance.runner import drive_async
from dag_provenance.unit_of_work import MAX_RECONNECTS, Deliver, HeldEvents

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
AsyncWork = Callable[[AsyncRawExecutor], Awaitable[T]]


class _AsyncBatch:
    """An open batch: its connection and executor, and savepoint names.

    Tasks created inside the batch's block share it, so its connection is
    used by one call at a time (`lock`): each call runs under a savepoint of
    its own, taken and ended with no other call's statements in between.
    """

    def __init__(self, executor: AsyncRawExecutor) -> None:
        self.executor = executor
        self.is_open = True
        self.lock = asyncio.Lock()
        self.events = HeldEvents()
        self._names = itertools.count()

    async def call(self, work: AsyncWork[T]) -> T:
        """Run one call's work under a savepoint: if it fails, only it is undone."""
        async with self.lock, self._savepoint(self.executor.control):
            return await work(self.executor)

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A savepoint around a nested batch's block: if the block raises, what
        was done on the batch since it began is undone."""
        return self._savepoint(self._locked_control)

    async def _locked_control(self, sql: str) -> None:
        async with self.lock:
            await self.executor.control(sql)

    @contextlib.asynccontextmanager
    async def _savepoint(self, control: Callable[[str], Awaitable[None]]) -> AsyncIterator[None]:
        name = f"dag_provenance_{next(self._names)}"
        await control(f"SAVEPOINT {name}")
        self.events.mark(name)
        try:
            yield
        except BaseException:
            self.events.rolled_back_to(name)
            with contextlib.suppress(exc.DBAPIError):  # the original error matters
                await control(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        self.events.released(name)
        await control(f"RELEASE SAVEPOINT {name}")


_batches: ContextVar[Mapping[AsyncEngineUnitOfWork, _AsyncBatch]] = ContextVar(
    "dag_provenance_async_batches", default=MappingProxyType({})
)
"""The async batches open in the current context, by unit of work."""


class AsyncEngineUnitOfWork:
    """Each call on a pooled connection of an `AsyncEngine` (see the module)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def read(self, work: AsyncWork[T], *, snapshot: bool = False) -> T:
        batch = self._open_batch()
        if batch is not None:
            return await batch.call(work)

        async def once(executor: AsyncRawExecutor, driver: AsyncDriver) -> T:
            conn = executor.driver_connection
            rules = driver.sync
            if not snapshot:
                result = await work(executor)
            else:
                async with executor.driver_errors("pipeline"), driver.pipeline(conn):
                    if rules.begin_snapshot:
                        await executor.control(rules.begin_snapshot)
                    if rules.pipelines:
                        executor.end_with = "COMMIT"
                    result = await work(executor)
                    if executor.end_with is not None:  # `work` sent no all_of
                        executor.end_with = None
                        await executor.control("COMMIT")
            if rules.in_transaction(conn):
                await executor.commit()
            return result

        result = await self._run(once, on_replay=None)
        return result  # type: ignore[return-value]  # without on_replay, never None

    async def write(
        self,
        work: AsyncWork[T],
        *,
        payloads: payload_limits.Payloads = (),
        single: bool = False,
        pipeline: bool = False,
        on_replay: Callable[[], Awaitable[bool]] | None = None,
    ) -> T | None:
        batch = self._open_batch()
        if batch is not None:

            async def checked(executor: AsyncRawExecutor) -> T:
                if payloads:
                    await drive_async(payload_limits.checking(executor, payloads), executor)
                return await work(executor)

            return await batch.call(checked)

        async def once(executor: AsyncRawExecutor, driver: AsyncDriver) -> T:
            conn = executor.driver_connection
            rules = driver.sync
            if payloads:
                await drive_async(payload_limits.checking(executor, payloads), executor)
            if single and rules.autocommits(conn):
                return await work(executor)
            async with (
                executor.driver_errors("pipeline"),
                driver.pipeline(conn) if pipeline else contextlib.nullcontext(),
            ):
                if rules.begin_write:
                    await executor.control(rules.begin_write)
                executor.deferred = pipeline and rules.pipelines
                result = await work(executor)
                if rules.begin_write:
                    await executor.control("COMMIT")
            if rules.in_transaction(conn):
                await executor.commit()
            return result

        return await self._run(once, on_replay=on_replay)

    async def _run(
        self,
        once: Callable[[AsyncRawExecutor, AsyncDriver], Awaitable[T]],
        *,
        on_replay: Callable[[], Awaitable[bool]] | None,
    ) -> T | None:
        """Run `once` on a pooled connection; on a connection found broken,
        discard it and run again on another (up to `MAX_RECONNECTS`)."""
        for attempt in itertools.count():
            connection, executor, driver = await self._checkout()
            try:
                await driver.acquire(executor.driver_connection)
                result = await once(executor, driver)
                executor.info[ENDED_CLEAN] = True
                return result
            except exc.IntegrityError:
                await self._end(connection, executor, driver)
                if attempt > 0 and on_replay is not None and await on_replay():
                    return None
                raise
            except exc.DBAPIError as e:
                if not e.connection_invalidated:
                    await self._end(connection, executor, driver)
                    raise
                await connection.invalidate(e)
                if attempt >= MAX_RECONNECTS:
                    raise
            except BaseException:
                await self._end(connection, executor, driver)
                raise
            finally:
                await self._release(connection, executor, driver)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _checkout(self) -> tuple[AsyncConnection, AsyncRawExecutor, AsyncDriver]:
        with translated():
            connection = await self._engine.connect()
            raw = await connection.get_raw_connection()
        conn = raw.driver_connection
        driver = async_driver_for(conn)
        observed = connection.sync_connection if is_observed(self._engine.sync_engine) else None
        executor = AsyncRawExecutor(conn, self._dialect, raw.info, driver, observed)
        return connection, executor, driver

    @staticmethod
    async def _release(
        connection: AsyncConnection, executor: AsyncRawExecutor, driver: AsyncDriver
    ) -> None:
        if not connection.invalidated:
            with contextlib.suppress(Exception):
                await driver.release(executor.driver_connection)
        await connection.close()

    @staticmethod
    async def _end(
        connection: AsyncConnection, executor: AsyncRawExecutor, driver: AsyncDriver
    ) -> None:
        """After a failed unit: roll back what it left open (if the connection
        still works; if not, it is discarded)."""
        if connection.invalidated:
            return
        try:
            if driver.sync.in_transaction(executor.driver_connection):
                await executor.rollback()
            executor.info[ENDED_CLEAN] = True
        except exc.DBAPIError as e:
            await connection.invalidate(e)

    def publish(self, events: Sequence[ChangeEvent], deliver: Deliver) -> None:
        """Deliver a committed write's events now, or when its batch commits."""
        batch = self._open_batch()
        if batch is None:
            deliver(events)
        else:
            batch.events.hold(events, deliver)

    def _open_batch(self) -> _AsyncBatch | None:
        """The batch of this unit of work open in the calling task's context."""
        batch = _batches.get().get(self)
        return batch if batch is not None and batch.is_open else None

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """One transaction for the calls made in the block in this context
        (tasks created inside copy it and join); a batch inside a batch is a
        savepoint of the outer one."""
        with translated():
            outer = self._open_batch()
            if outer is not None:
                async with outer.savepoint():
                    yield
                return
            connection, executor, driver = await self._checkout()
            batch = _AsyncBatch(executor)
            token = _batches.set({**_batches.get(), self: batch})
            try:
                await driver.acquire(executor.driver_connection)
                await executor.control(driver.sync.begin_write or "BEGIN")
                yield
                await executor.control("COMMIT")
                executor.info[ENDED_CLEAN] = True
            except BaseException:
                batch.events.drop()
                await self._end(connection, executor, driver)
                raise
            finally:
                batch.is_open = False
                _batches.reset(token)
                await self._release(connection, executor, driver)
        batch.events.release()
