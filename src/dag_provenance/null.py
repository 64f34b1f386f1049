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

from dag_provenance.events import ListenedStore, Listeners
from dag_provenance.execution import Params
from dag_provenance.methods import StoreMethods
from dag_provenance.operations import StoreContext, Unit
from dag_provenance.runner import AsyncStore, SyncStore, unit_work


class _Done:
    """The outcome of a discarded write: as if it touched its row."""

    rowcount = 1


class _NullExecutor:
    """Answers every statement with nothing; writes go nowhere (so no
    payload needs checking against a connection's limit)."""

    deferred = False

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


# The dialect only picks statement variants, which a null store never sends.
_CONTEXT = StoreContext("sqlite", None)


class NullProvenance(StoreMethods, ListenedStore, SyncStore):
    """No-op provenance: discards writes, returns None/empty on reads (and,
    committing nothing, never calls its listeners)."""

    _context = _CONTEXT

    def __init__(self) -> None:
        self._listeners = Listeners()

    def _run_unit(self, unit: Unit) -> Any:
        return unit_work(unit)(_NullExecutor())

    @contextmanager
    def batch(self) -> Iterator[NullProvenance]:
        yield self

    def close(self) -> None:
        pass


class AsyncNullProvenance(StoreMethods, ListenedStore, AsyncStore):
    """No-op provenance for asyncio code: `AsyncDagProvenance`'s coroutines,
    discarding writes and answering reads with None or empty (and never
    calling its listeners)."""

    _context = _CONTEXT

    def __init__(self) -> None:
        self._listeners = Listeners()

    async def _run_unit(self, unit: Unit) -> Any:
        return unit_work(unit)(_NullExecutor())  # nothing to wait for

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[AsyncNullProvenance]:
        yield self

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncNullProvenance:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        pass


__all__ = ["AsyncNullProvenance", "NullProvenance"]
