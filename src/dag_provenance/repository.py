"""DagProvenance: the store's public API, synchronous.

Each public method is an operation of `operations` (written once for this
store and the async one), run by `runner`: it validates its input, then runs
as one unit of work (`unit_of_work`): one transaction that commits once or
rolls back whole, on a pooled connection of the store's own, inside an open
`batch()`, or inside the caller's transaction when the store was given a
`Connection` or `Session`. The SQL is prebuilt in `statements`, rows become
models in `rows`, and database errors become the library's in `dberrors`.

Why a Connection and not an ORM Session per call: the store never loads ORM
objects (it returns dicts and Pydantic models), so the Session's identity
map and unit-of-work bookkeeping buy nothing, and on the write hot path they
cost a third of each call (measured: ~3,600 vs ~5,500 calls/s on a SQLite
file). The mapped classes in `orm` stay the schema's single definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from dag_provenance.dberrors import translated
from dag_provenance.engine import DbTarget, shared_engines, sqlite_file_of
from dag_provenance.events import ListenedStore, Listener, Listeners
from dag_provenance.methods import StoreMethods
from dag_provenance.migrate import ensure_schema
from dag_provenance.operations import StoreContext, Unit
from dag_provenance.protocol import RunCursor
from dag_provenance.runner import SyncStore, submit
from dag_provenance.unit_of_work import CallerUnitOfWork, EngineUnitOfWork, UnitOfWork


class DagProvenance(StoreMethods, ListenedStore, SyncStore):
    """Records the provenance of DAG runs and answers questions about them.

    `db_path` is one of:

    - a SQLite file path (`Path` or plain string) or a SQLAlchemy URL string
      (`postgresql+psycopg://...`, `mysql+pymysql://...`): the store opens
      (and shares within the process) a configured engine of its own;
    - an `Engine`, used as given;
    - a `Connection` or ORM `Session` the caller owns: every call runs inside
      the caller's current transaction, under a savepoint, and the caller's
      commit or rollback decides (see `unit_of_work.CallerUnitOfWork`).

    By default the schema is brought to the newest revision on construction
    (through the engine, on a connection of its own); with `migrate=False` a
    database behind the code raises `SchemaOutOfDateError`. `initiator_var` is
    the one context variable `create_run` reads when no initiator is passed
    (by default it reads this library's `run_initiator` and, when lythonic is
    imported, lythonic's). `listeners` hear the change events of every write
    once it has committed (see `events`; more with `add_listener`).
    """

    db_path: Path | None
    engine: Engine
    unit_of_work: UnitOfWork
    """How each call reaches the database; also used by `maintenance`."""

    def __init__(
        self,
        db_path: DbTarget | Connection | Session,
        *,
        migrate: bool = True,
        initiator_var: ContextVar[str | None] | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._engine_key: str | None = None
        self._listeners = Listeners(listeners, owner=self)
        if isinstance(db_path, Connection | Session):
            self.unit_of_work = CallerUnitOfWork(db_path)
        elif isinstance(db_path, Engine):
            self.unit_of_work = EngineUnitOfWork(db_path)
        else:
            with translated():
                engine, self._engine_key = shared_engines.acquire(db_path)
            threads = shared_engines.thread_connections(self._engine_key)
            self.unit_of_work = EngineUnitOfWork(engine, threads)
        self.engine = self.unit_of_work.engine
        self.db_path = sqlite_file_of(self.engine.url)
        self._context = StoreContext(
            self.engine.dialect.name, initiator_var, self._listeners, self.unit_of_work
        )
        try:
            key = self._engine_key
            if key is None or not shared_engines.schema_checked(key):
                with translated():
                    ensure_schema(self.engine, migrate=migrate)
                if key is not None:
                    shared_engines.mark_schema_checked(key)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"DagProvenance({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release this store's hold on its engine: when no open store of this
        process uses the database any more, its pooled connections are closed.
        An Engine, Connection or Session passed in by the caller is left
        alone. Idempotent."""
        key, self._engine_key = self._engine_key, None
        if key is not None:
            shared_engines.release(key)

    def __enter__(self) -> DagProvenance:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[DagProvenance]:
        """Group the calls made on this store in the block into one transaction:
        all of them commit when the block ends, or none do if it raises.

        The batch belongs to the execution context that opened it (a
        `ContextVar`): code in that context (and asyncio tasks created inside
        the block, which copy it) joins the batch; other tasks, and threads
        that do not carry the context, run their calls in transactions of
        their own, as if no batch were open. A call in a copy of the context on
        another thread (`asyncio.to_thread`) raises `BatchThreadError`. A call
        made after the block ended, from a task that copied the context while
        it was open, runs in a transaction of its own.

        A batch inside a batch is a savepoint of the outer one: if the inner
        block raises, only its calls are undone; otherwise they commit with
        the outer batch. On a caller's Connection or Session a batch is a
        savepoint in the caller's transaction, committed only with it.
        """
        with self.unit_of_work.batch():
            yield self

    # Operating the store (see dag_provenance.maintenance and .migrate)

    # The runner's seam (see `runner`): each unit of an operation on the unit of work.

    def _run_unit(self, unit: Unit) -> Any:
        return submit(self, self.unit_of_work, unit)


__all__ = ["DagProvenance", "RunCursor"]
