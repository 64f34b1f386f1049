"""Both stores behind one face, so the behavioural suite runs against each.

`AwaitedStore` drives `AsyncDagProvenance` from the suite's sync test code:
each method call runs as a task on a background event loop and is waited
for, as if the calling thread were one asyncio task awaiting it in turn.
Context variables travel both ways, as they do for an awaited coroutine: the
caller's (`initiated_by`, ...) are seen by the call, and what the call sets
(an open `batch()`) is seen by the caller's next calls. Each calling thread
is its own "task", with a context of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine

from dag_provenance import AsyncDagProvenance, DagProvenance
from dag_provenance.engine import make_engine

T = TypeVar("T")
STORE_KINDS = ("sync", "async")
_MISSING = object()


def _carry(source: contextvars.Context, into: contextvars.Context) -> None:
    """Make every variable of `into` read as it does in `source` (a variable
    `source` lacks reads as its default there)."""
    for var in {*source, *into}:
        value = source.get(var, _MISSING)
        if value is _MISSING:
            try:
                value = source.run(var.get)
            except LookupError:
                continue
        if into.get(var, _MISSING) is not value:
            into.run(var.set, value)


class AwaitedStore:
    """`AsyncDagProvenance` with sync methods (see the module)."""

    def __init__(self, store: AsyncDagProvenance, loop: asyncio.AbstractEventLoop, engine: Engine):
        self.async_store = store
        self.engine = engine
        """A sync engine on the same database, for the suite's own checks."""
        self._loop = loop
        self._homes: dict[int, contextvars.Context] = {}

        async def ident() -> int:
            return threading.get_ident()

        self.loop_thread = self.awaited(ident)
        """The thread the async store's statements are sent from."""

    def awaited(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run `make()` to its end on the loop, in the calling thread's task context."""
        home = self._homes.setdefault(threading.get_ident(), contextvars.Context())
        _carry(contextvars.copy_context(), into=home)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        async def call() -> T:
            return await make()

        def start() -> None:
            task = self._loop.create_task(call(), context=home)
            task.add_done_callback(
                lambda t: (
                    done.set_exception(t.exception())
                    if t.exception() is not None
                    else done.set_result(t.result())
                )
            )

        self._loop.call_soon_threadsafe(start)
        try:
            return done.result()
        finally:
            for var, value in home.items():
                if var.get(_MISSING) is not value:
                    var.set(value)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.async_store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        def method(*args: Any, **kwargs: Any) -> Any:
            return self.awaited(lambda: attribute(*args, **kwargs))

        return method

    @contextmanager
    def batch(self) -> Iterator[AwaitedStore]:
        block = self.async_store.batch()
        self.awaited(block.__aenter__)
        try:
            yield self
        except BaseException as e:
            if not self.awaited(functools.partial(block.__aexit__, type(e), e, e.__traceback__)):
                raise
        else:
            self.awaited(lambda: block.__aexit__(None, None, None))

    def fill_pool(self, connections: int) -> None:
        """Leave `connections` idle connections in the async store's pool."""

        async def fill() -> None:
            held = [await self.async_store.engine.connect() for _ in range(connections)]
            for connection in held:
                await connection.exec_driver_sql("SELECT 1")
                await connection.close()

        self.awaited(fill)

    def close(self) -> None:
        try:
            self.awaited(self.async_store.close)
        finally:
            self.engine.dispose()

    def __enter__(self) -> AwaitedStore:
        self.awaited(self.async_store.__aenter__)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def statement_engine(store: DagProvenance) -> Engine:
    """The engine whose cursor events see `store`'s own statements."""
    if isinstance(store, AwaitedStore):
        return store.async_store.engine.sync_engine
    return store.engine


def statement_thread(store: DagProvenance) -> int:
    """The thread `store` sends the statements of a call made on this thread from."""
    return store.loop_thread if isinstance(store, AwaitedStore) else threading.get_ident()


def sync_writer(store: DagProvenance) -> DagProvenance:
    """A store that writes to `store`'s database from any thread, even while
    one of `store`'s calls waits: `store` itself, or a sync store beside an
    `AwaitedStore` (whose calls all run on one event loop)."""
    if isinstance(store, AwaitedStore):
        return DagProvenance(store.engine)
    return store


def fill_pool(store: DagProvenance, connections: int) -> None:
    """Leave `connections` idle connections in `store`'s own pool."""
    if isinstance(store, AwaitedStore):
        store.fill_pool(connections)
        return
    with ExitStack() as stack:
        for _ in range(connections):
            stack.enter_context(store.engine.connect()).exec_driver_sql("SELECT 1")


def open_store(
    kind: str, target: str | Path, loop: asyncio.AbstractEventLoop, **options: Any
) -> DagProvenance:
    """A store of `kind` ("sync" or "async") on `target` (a SQLite path or a
    URL), typed as the sync store whose face both show."""
    if kind == "sync":
        return DagProvenance(target, **options)
    engine = make_engine(target)
    try:
        store = AwaitedStore(AsyncDagProvenance(target, **options), loop, engine)
    except BaseException:
        engine.dispose()
        raise
    try:  # as the sync store's constructor does
        store.awaited(store.async_store._ensure_schema)
    except BaseException:
        store.close()
        raise
    return cast(DagProvenance, store)


@contextmanager
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running on a thread of its own until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-event-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
