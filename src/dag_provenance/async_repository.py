"""AsyncDagProvenance: the store's public API as coroutines, for asyncio code.

The same operations as `DagProvenance` (`operations`, run by `runner`): the
same statements, checks, errors and models; each exchange with the database
is awaited on an asyncio driver (aiosqlite, psycopg's async mode, asyncmy)
through SQLAlchemy's asyncio extension (`async_unit_of_work`), so the event
loop goes on with other tasks meanwhile. The initiator is read from the
calling task's context, with no thread hop.

Needs the `async` extra: `pip install 'dag-provenance[async]'`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from dag_provenance import maintenance, operations
from dag_provenance.dberrors import translated
from dag_provenance.engine import make_async_engine
from dag_provenance.errors import InvalidInputError
from dag_provenance.migrate import ensure_schema
from dag_provenance.operations import Read, StoreContext, Unit
from dag_provenance.runner import async_operation, async_work, run_async

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dag_provenance.async_unit_of_work import AsyncEngineUnitOfWork


class AsyncDagProvenance:
    """Records the provenance of DAG runs, as coroutines (see the module).

    `db_path`: a SQLite file path, a URL (a sync driver's URL is served by
    its asyncio twin: `postgresql+psycopg://` by psycopg's async mode,
    `mysql+pymysql://` by asyncmy, a path or `sqlite://` by aiosqlite), or an
    `AsyncEngine` used as given. The schema is brought to the newest
    revision (as `DagProvenance` does, under the same locks) before the
    first call, or when entering `async with`; `migrate=False` only checks.
    `await store.close()` (or leaving `async with`) disposes an engine the
    store made.
    """

    engine: AsyncEngine
    unit_of_work: AsyncEngineUnitOfWork

    def __init__(
        self,
        db_path: str | os.PathLike[str] | AsyncEngine,
        *,
        migrate: bool = True,
        initiator_var: ContextVar[str | None] | None = None,
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
        self._context = StoreContext(engine.dialect.name, initiator_var)
        self._migrate = migrate
        self._schema_ready = False
        self._schema_lock: asyncio.Lock | None = None

    @property
    def db_path(self) -> Path | None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(str(url.database))
        return None

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
        await self._ensure_schema()
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

    # The runner's seam (see `runner`).

    async def _run_unit(self, unit: Unit) -> Any:
        if not self._schema_ready:
            await self._ensure_schema()
        if isinstance(unit, Read):
            return await self.unit_of_work.read(async_work(unit), snapshot=unit.snapshot)
        replay = unit.on_replay
        return await self.unit_of_work.write(
            async_work(unit),
            payloads=unit.payloads,
            single=unit.single,
            pipeline=unit.pipeline,
            on_replay=None if replay is None else (lambda: run_async(self, replay())),
        )

    # The public operations (written once in `operations`, for both stores)

    create_run = async_operation(operations.create_run)
    update_run_status = async_operation(operations.update_run_status)
    finish_run = async_operation(operations.finish_run)
    record_node_start = async_operation(operations.record_node_start)
    record_node_skipped = async_operation(operations.record_node_skipped)
    complete_node_with_edges = async_operation(operations.complete_node_with_edges)
    fail_node_and_finish_run = async_operation(operations.fail_node_and_finish_run)
    get_run = async_operation(operations.get_run)
    get_node_executions = async_operation(operations.get_node_executions)
    get_node_output = async_operation(operations.get_node_output)
    get_pending_nodes = async_operation(operations.get_pending_nodes)
    get_edge_traversals = async_operation(operations.get_edge_traversals)
    inspect_run = async_operation(operations.inspect_run)
    changes_since = async_operation(operations.changes_since)
    get_recent_runs = async_operation(operations.get_recent_runs)
    get_active_runs = async_operation(operations.get_active_runs)
    get_child_runs = async_operation(operations.get_child_runs)
    load_io = async_operation(operations.load_io)
    prune = async_operation(maintenance.prune_operation)


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
