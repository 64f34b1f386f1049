"""AsyncDagProvenance: the store's public API as coroutines, for asyncio code.

The same operations as `DagProvenance` (`operations`, run by `runner`): the
same statements, checks, errors and models; each exchange with the database
is awaited on an asyncio driver (aiosqlite, psycopg's async mode, aiomysql)
through SQLAlchemy's asyncio extension (`async_unit_of_work`), so the event
loop goes on with other tasks meanwhile. The initiator is read from the
calling task's context, with no thread hop.

Needs the `async` extra: `pip install 'dag-provenance[async]'`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from dag_provenance.dberrors import translated
from dag_provenance.engine import make_async_engine, sqlite_file_of
from dag_provenance.errors import InvalidInputError
from dag_provenance.events import ListenedStore, Listener, Listeners
from dag_provenance.methods import StoreMethods
from dag_provenance.migrate import ensure_schema
from dag_provenance.operations import StoreContext, Unit
from dag_provenance.runner import AsyncStore, submit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dag_provenance.async_unit_of_work import AsyncEngineUnitOfWork


class AsyncDagProvenance(StoreMethods, ListenedStore, AsyncStore):
    """Records the provenance of DAG runs, as coroutines (see the module).

    `db_path`: a SQLite file path, a URL (a sync driver's URL is served by
    its asyncio twin: `postgresql+psycopg://` by psycopg's async mode,
    `mysql+pymysql://` by aiomysql, a path or `sqlite://` by aiosqlite), or an
    `AsyncEngine` used as given. The schema is brought to the newest
    revision (as `DagProvenance` does, under the same locks) before the
    first call, or when entering `async with`; `migrate=False` only checks.
    `await store.close()` (or leaving `async with`) disposes an engine the
    store made. `listeners` hear the change events of every committed write,
    on the event loop right after the commit (see `events`; more with
    `add_listener`).
    """

    engine: AsyncEngine
    unit_of_work: AsyncEngineUnitOfWork

    def __init__(
        self,
        db_path: str | os.PathLike[str] | AsyncEngine,
        *,
        migrate: bool = True,
        initiator_var: ContextVar[str | None] | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        own = isinstance(db_path, (str, os.PathLike))
        with translated():
            from dag_provenance.async_unit_of_work import AsyncEngineUnitOfWork

            if isinstance(db_path, (str, os.PathLike)):
                engine = make_async_engine(db_path)
            else:
                engine = _async_engine(db_path)
        self.engine = engine
        self._own_engine = own
        self.unit_of_work = AsyncEngineUnitOfWork(engine)
        self._listeners = Listeners(listeners, owner=self)
        self._context = StoreContext(
            engine.dialect.name, initiator_var, self._listeners, self.unit_of_work
        )
        self._migrate = migrate
        self._schema_ready = False
        self._schema_lock: asyncio.Lock | None = None

    @property
    def db_path(self) -> Path | None:
        """The SQLite file the store is on (None on a server)."""
        return sqlite_file_of(self.engine.url)

    def __repr__(self) -> str:
        return f"AsyncDagProvenance({self.engine.url.render_as_string(hide_password=True)!r})"

    async def _ensure_schema(self) -> None:
        if self._schema_lock is None:
            self._schema_lock = asyncio.Lock()
        async with self._schema_lock:
            if self._schema_ready:
                return
            with translated():
                async with self.engine.connect() as connection:
                    await connection.run_sync(ensure_schema, migrate=self._migrate)
            self._schema_ready = True

    async def close(self) -> None:
        """Dispose of the engine the store made (an `AsyncEngine` passed in is
        left alone). Idempotent."""
        if self._own_engine:
            self._own_engine = False
            with translated():
                await self.engine.dispose()

    async def __aenter__(self) -> AsyncDagProvenance:
        try:
            await self._ensure_schema()
        except BaseException:
            # `async with` will not call __aexit__: release the connections the
            # check opened (the store stays usable, and close() still disposes).
            if self._own_engine:
                with translated():
                    await self.engine.dispose()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[AsyncDagProvenance]:
        """Group the calls made on this store in the block into one transaction:
        all of them commit when the block ends, or none do if it raises.

        The batch belongs to the calling task's context: tasks created inside
        the block copy it and join; other tasks run their calls in
        transactions of their own. A batch inside a batch is a savepoint of
        the outer one: if the inner block raises, only its calls are undone.
        """
        if not self._schema_ready:
            await self._ensure_schema()
        async with self.unit_of_work.batch():
            yield self

    # The runner's seam (see `runner`): each unit of an operation on the unit of work.

    async def _run_unit(self, unit: Unit) -> Any:
        if not self._schema_ready:
            await self._ensure_schema()
        return await submit(self, self.unit_of_work, unit, awaiting=True)


def _async_engine(target: object) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import AsyncEngine

    if not isinstance(target, AsyncEngine):
        hint = " (a sync Engine is DagProvenance's)" if isinstance(target, Engine) else ""
        raise InvalidInputError(
            "AsyncDagProvenance takes a SQLite path, a database URL or an AsyncEngine, "
            f"not {type(target).__name__}{hint}"
        )
    return target


__all__ = ["AsyncDagProvenance"]
