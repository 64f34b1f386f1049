"""`NullProvenance` and `AsyncNullProvenance`: stores that record nothing,
for runners that want the provenance calls without a database (as
lythonic's own `NullProvenance`). Writes are discarded, reads answer None or
empty.

They run the very operations the real stores run (`operations`), on an
executor that answers every statement with nothing: so their methods take
the same arguments and check them the same way, and each satisfies its
store's protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect

from dag_provenance import maintenance, operations
from dag_provenance.execution import Params
from dag_provenance.operations import StoreContext, Unit
from dag_provenance.runner import async_operation, async_work, sync_operation, sync_work


class _Done:
    """The outcome of a discarded write: as if it touched its row."""

    rowcount = 1


class _NullExecutor:
    """Answers every statement with nothing; writes go nowhere."""

    dialect: Dialect = sqlite.dialect()
    deferred = False
    driver_connection = None

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def all(self, statement: Any, params: Params | None = None) -> list[tuple[Any, ...]]:
        return []

    def first(self, statement: Any, params: Params | None = None) -> None:
        return None

    def execute(self, statement: Any, params: Params | None = None) -> _Done:
        return _Done()

    def many(self, statement: Any, rows: Sequence[Params]) -> None:
        return None

    def all_of(self, queries: Sequence[tuple[Any, Params]]) -> list[list[tuple[Any, ...]]]:
        return [[] for _ in queries]


class _AsyncNullExecutor:
    """`_NullExecutor` for the async runner (each answer awaited)."""

    deferred = False
    _answers = _NullExecutor()

    async def all(self, statement: Any, params: Params | None = None) -> list[tuple[Any, ...]]:
        return self._answers.all(statement, params)

    async def first(self, statement: Any, params: Params | None = None) -> None:
        return self._answers.first(statement, params)

    async def execute(self, statement: Any, params: Params | None = None) -> _Done:
        return self._answers.execute(statement, params)

    async def many(self, statement: Any, rows: Sequence[Params]) -> None:
        return self._answers.many(statement, rows)

    async def all_of(self, queries: Sequence[tuple[Any, Params]]) -> list[list[tuple[Any, ...]]]:
        return self._answers.all_of(queries)


# The dialect only picks statement variants, which a null store never sends.
_CONTEXT = StoreContext("sqlite", None)


class NullProvenance:
    """No-op provenance: discards writes, returns None/empty on reads."""

    _context = _CONTEXT

    def _run_unit(self, unit: Unit) -> Any:
        return sync_work(unit)(_NullExecutor())

    @contextmanager
    def batch(self) -> Iterator[NullProvenance]:
        yield self

    def close(self) -> None:
        pass

    create_run = sync_operation(operations.create_run)
    update_run_status = sync_operation(operations.update_run_status)
    finish_run = sync_operation(operations.finish_run)
    record_node_start = sync_operation(operations.record_node_start)
    record_node_skipped = sync_operation(operations.record_node_skipped)
    complete_node_with_edges = sync_operation(operations.complete_node_with_edges)
    fail_node_and_finish_run = sync_operation(operations.fail_node_and_finish_run)
    get_run = sync_operation(operations.get_run)
    get_node_executions = sync_operation(operations.get_node_executions)
    get_node_output = sync_operation(operations.get_node_output)
    get_pending_nodes = sync_operation(operations.get_pending_nodes)
    get_edge_traversals = sync_operation(operations.get_edge_traversals)
    inspect_run = sync_operation(operations.inspect_run)
    changes_since = sync_operation(operations.changes_since)
    get_recent_runs = sync_operation(operations.get_recent_runs)
    get_active_runs = sync_operation(operations.get_active_runs)
    get_child_runs = sync_operation(operations.get_child_runs)
    load_io = sync_operation(operations.load_io)
    prune = sync_operation(maintenance.prune_operation)


class AsyncNullProvenance:
    """No-op provenance for asyncio code: `AsyncDagProvenance`'s coroutines,
    discarding writes and answering reads with None or empty."""

    _context = _CONTEXT

    async def _run_unit(self, unit: Unit) -> Any:
        return await async_work(unit)(_AsyncNullExecutor())

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[AsyncNullProvenance]:
        yield self

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncNullProvenance:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        pass

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


__all__ = ["AsyncNullProvenance", "NullProvenance"]
