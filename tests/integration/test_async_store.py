"""AsyncDagProvenance used as asyncio code uses it, on every engine: many
tasks at once, an event loop that is never held up, the initiator of each
task, batches shared with the tasks they start, and what its constructor
takes. (The behavioural suite runs on it too: see `stores`.)"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, create_engine

from dag_provenance import (
    AsyncDagProvenance,
    DagProvenance,
    DuplicateRunError,
    InvalidInputError,
    SchemaOutOfDateError,
    initiated_by,
)
from dag_provenance.engine import make_async_engine, make_engine

from .reliability.workload import row_counts, rows_of_runs, stored_violations, write_run_async

T = TypeVar("T")

TASKS = 50
LAG_WRITERS = 20
RUNS_PER_LAG_WRITER = 5
MAX_LAG_S = 0.050
TICK_S = 0.002


@pytest.fixture
def checker(empty_db_url: str) -> Iterator[Engine]:
    """A sync engine on the test's database, to check what the async store kept."""
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


def test_fifty_tasks_writing_runs_at_once_lose_nothing(empty_db_url: str, checker: Engine) -> None:
    tag = uuid.uuid4().hex[:8]

    async def main() -> list[str]:
        async with AsyncDagProvenance(empty_db_url) as store:
            await asyncio.gather(*(write_run_async(store, f"{tag}-{i}", i) for i in range(TASKS)))
            return [r.run_id for r in await store.get_recent_runs(limit=2 * TASKS)]

    shown = run(main)

    assert sorted(shown) == sorted(f"{tag}-{i}" for i in range(TASKS))
    assert row_counts(checker) == rows_of_runs(range(TASKS))
    assert stored_violations(checker) == []


def test_no_call_holds_up_the_event_loop_while_twenty_tasks_write(
    empty_db_url: str, checker: Engine
) -> None:
    tag = uuid.uuid4().hex[:8]
    lags: list[float] = []

    async def tick(stop: asyncio.Event) -> None:
        """How late each short sleep wakes: the longest time anything held the loop."""
        while not stop.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - asked - TICK_S)

    async def writer(store: AsyncDagProvenance, w: int) -> None:
        for i in range(RUNS_PER_LAG_WRITER):
            await write_run_async(store, f"{tag}-{w}-{i}", i)
            await store.inspect_run(f"{tag}-{w}-{i}")

    async def main() -> None:
        async with AsyncDagProvenance(empty_db_url) as store:
            stop = asyncio.Event()
            ticker = asyncio.create_task(tick(stop))
            try:
                await asyncio.gather(*(writer(store, w) for w in range(LAG_WRITERS)))
            finally:
                stop.set()
                await ticker

    # The objects the test process made before (a whole suite's) are no
    # business of this test: a collection scanning them all is not a call
    # holding up the loop.
    gc.collect()
    gc.freeze()
    try:
        run(main)
    finally:
        gc.unfreeze()

    assert len(lags) > LAG_WRITERS, "the ticker hardly ran"
    worst = max(lags)
    assert worst < MAX_LAG_S, f"the event loop was held up for {worst * 1000:.0f} ms"
    assert row_counts(checker) == rows_of_runs(
        [i for _ in range(LAG_WRITERS) for i in range(RUNS_PER_LAG_WRITER)]
    )


def test_each_task_s_runs_carry_its_own_initiator(empty_db_url: str) -> None:
    tag = uuid.uuid4().hex[:8]

    async def main() -> dict[str, Any]:
        async with AsyncDagProvenance(empty_db_url) as store:

            async def as_user(i: int) -> None:
                with initiated_by(f"usr-{i}"):
                    await asyncio.sleep(0)  # the others' turn: their context is theirs
                    await store.create_run(f"{tag}-{i}", "tests:async", {})

            await asyncio.gather(*(as_user(i) for i in range(10)))
            await store.create_run(f"{tag}-nobody", "tests:async", {})
            await store.create_run(f"{tag}-given", "tests:async", {}, initiator="usr-given")
            runs = [await store.get_run(f"{tag}-{i}") for i in [*range(10), "nobody", "given"]]
            return {r["run_id"]: r["initiated_by"] for r in runs if r is not None}

    assert run(main) == {
        **{f"{tag}-{i}": f"usr-{i}" for i in range(10)},
        f"{tag}-nobody": None,
        f"{tag}-given": "usr-given",
    }


# --- batches ---------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_a_batch_commits_its_calls_and_those_of_the_tasks_it_starts_together(
    empty_db_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]

    async def main() -> tuple[list[Any], list[Any]]:
        async with AsyncDagProvenance(empty_db_url) as store:
            async with store.batch() as same:
                assert same is store
                await store.create_run(f"{tag}-0", "tests:batch", {})
                await asyncio.gather(
                    *(store.create_run(f"{tag}-{i}", "tests:batch", {}) for i in range(1, 6))
                )
            kept = [await store.get_run(f"{tag}-{i}") for i in range(6)]

            with pytest.raises(Boom):
                async with store.batch():
                    await store.create_run(f"{tag}-lost-0", "tests:batch", {})
                    await asyncio.gather(
                        *(write_run_async(store, f"{tag}-lost-{i}", i) for i in range(1, 6))
                    )
                    raise Boom
            lost = [await store.get_run(f"{tag}-lost-{i}") for i in range(6)]
            return kept, lost

    kept, lost = run(main)

    assert all(r is not None and r["status"] == "running" for r in kept)
    assert lost == [None] * 6


def test_a_batch_inside_a_batch_undoes_only_its_own_calls_when_it_raises(
    empty_db_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]

    async def main() -> list[str | None]:
        async with AsyncDagProvenance(empty_db_url) as store:
            async with store.batch():
                await store.create_run(f"{tag}-outer", "tests:batch", {})
                with pytest.raises(Boom):
                    async with store.batch():
                        await store.create_run(f"{tag}-inner", "tests:batch", {})
                        raise Boom
                async with store.batch():
                    await store.create_run(f"{tag}-kept", "tests:batch", {})
            runs = [await store.get_run(f"{tag}-{n}") for n in ("outer", "inner", "kept")]
            return [None if r is None else r["run_id"] for r in runs]

    assert run(main) == [f"{tag}-outer", None, f"{tag}-kept"]


def test_a_refused_call_in_a_batch_leaves_the_batch_s_other_calls_to_commit(
    empty_db_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]

    async def main() -> list[Any]:
        async with AsyncDagProvenance(empty_db_url) as store:
            async with store.batch():
                await store.create_run(f"{tag}-a", "tests:batch", {})
                with pytest.raises(DuplicateRunError):
                    await store.create_run(f"{tag}-a", "tests:batch", {})
                await store.create_run(f"{tag}-b", "tests:batch", {})
            return [await store.get_run(f"{tag}-{n}") for n in ("a", "b")]

    assert [r is not None for r in run(main)] == [True, True]


# --- what the constructor takes --------------------------------------------------------


def test_a_sync_engine_is_refused_with_a_pointer_to_the_sync_store() -> None:
    engine = create_engine("sqlite://")
    try:
        with pytest.raises(InvalidInputError, match="a sync Engine is DagProvenance's"):
            AsyncDagProvenance(engine)  # type: ignore[arg-type]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("target", "names"),
    [
        ("postgresql+asyncpg://u@127.0.0.1/db", "postgresql\\+asyncpg"),
        ("mysql+asyncmy://u@127.0.0.1/db", "16 MiB"),
        ("oracle+oracledb://u@127.0.0.1/db", "no asyncio driver is known"),
        (42, "not int"),
    ],
)
def test_what_the_async_store_cannot_run_on_is_refused_by_name(target: object, names: str) -> None:
    with pytest.raises(InvalidInputError, match=names):
        AsyncDagProvenance(target)  # type: ignore[arg-type]


def test_a_sync_url_is_served_by_its_asyncio_driver(empty_db_url: str) -> None:
    async def main() -> tuple[str, bool]:
        async with AsyncDagProvenance(empty_db_url) as store:
            await store.get_recent_runs()
            return store.engine.dialect.driver, store.engine.dialect.is_async

    driver, is_async = run(main)
    assert is_async and driver in {"aiosqlite", "psycopg", "aiomysql"}


def test_an_async_engine_passed_in_is_used_and_left_open(
    empty_db_url: str, checker: Engine
) -> None:
    async def main() -> int:
        engine = make_async_engine(empty_db_url)
        try:
            async with AsyncDagProvenance(engine) as store:
                await store.create_run("given-engine", "tests:async", {})
            await store.close()  # again: idempotent
            async with engine.connect() as conn:  # still usable
                return int((await conn.exec_driver_sql("SELECT 1")).scalar_one())
        finally:
            await engine.dispose()

    assert run(main) == 1
    assert row_counts(checker).runs == 1


def test_migrate_false_on_an_empty_database_is_refused_at_the_first_call(
    empty_db_url: str,
) -> None:
    async def main() -> None:
        store = AsyncDagProvenance(empty_db_url, migrate=False)
        try:
            await store.get_run("any")
        finally:
            await store.close()

    with pytest.raises(SchemaOutOfDateError):
        run(main)


def test_async_with_that_fails_its_schema_check_leaves_no_connection_behind(
    empty_db_url: str,
) -> None:
    """`async with` does not call __aexit__ when __aenter__ raises: the store
    releases what its check opened itself, and stays usable."""
    store = AsyncDagProvenance(empty_db_url, migrate=False)

    async def enter() -> None:
        async with store:
            raise AssertionError("entered a database with no schema")

    async def main() -> int:
        with pytest.raises(SchemaOutOfDateError):
            await enter()
        open_connections = store.engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
        with pytest.raises(SchemaOutOfDateError):  # still answers, the same way
            await store.get_run("any")
        await store.close()
        return int(open_connections)

    assert run(main) == 0


def test_the_async_and_sync_stores_read_each_other_s_writes(empty_db_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    with DagProvenance(empty_db_url) as sync:
        sync.create_run(f"{tag}-sync", "tests:both", {"x": 1})

        async def main() -> tuple[Any, Any]:
            async with AsyncDagProvenance(empty_db_url) as store:
                await write_run_async(store, f"{tag}-async", 0)
                return await store.inspect_run(f"{tag}-sync"), await store.get_run(f"{tag}-async")

        from_sync, from_async = run(main)
        assert from_sync is not None and from_sync == sync.inspect_run(f"{tag}-sync")
        assert from_async == sync.get_run(f"{tag}-async")


SESSION_SETTINGS = {
    "sqlite": [
        "PRAGMA journal_mode",
        "PRAGMA synchronous",
        "PRAGMA foreign_keys",
        "PRAGMA busy_timeout",
    ],
    "postgresql": ["SHOW TimeZone", "SHOW client_encoding", "SHOW default_transaction_isolation"],
    "mysql": [
        "SELECT @@session.time_zone",
        "SELECT @@session.tx_isolation",
        "SELECT @@session.character_set_client",
    ],
}


def test_the_async_store_s_connections_are_configured_as_the_sync_store_s(
    engine_name: str, empty_db_url: str
) -> None:
    queries = SESSION_SETTINGS[engine_name]
    with DagProvenance(empty_db_url) as sync, sync.engine.connect() as conn:
        expected = [conn.exec_driver_sql(q).scalar() for q in queries]

    async def main() -> list[Any]:
        async with AsyncDagProvenance(empty_db_url) as store, store.engine.connect() as conn:
            return [(await conn.exec_driver_sql(q)).scalar() for q in queries]

    assert run(main) == expected
    if engine_name == "sqlite":
        assert expected[0] == "wal"
    if engine_name == "mysql":
        assert expected[:2] == ["+00:00", "REPEATABLE-READ"]


MISSING = {
    "sqlite": ("greenlet", "dag-provenance[async]"),
    "postgresql": ("greenlet", "dag-provenance[postgresql-async]"),
    "mysql": ("aiomysql", "dag-provenance[mysql-async]"),
}


def test_a_missing_asyncio_package_is_named_with_the_extra_that_installs_it(
    engine_name: str, empty_db_url: str
) -> None:
    # In a fresh interpreter where the package cannot be imported: the sync
    # store still works, and the async store says what to install.
    package, extra = MISSING[engine_name]
    script = f"""
import sys
sys.modules[{package!r}] = None  # importing it raises ImportError
import dag_provenance
from dag_provenance import AsyncDagProvenance, DagProvenance, DriverNotInstalledError
DagProvenance({empty_db_url!r}).close()
try:
    AsyncDagProvenance({empty_db_url!r})
except DriverNotInstalledError as e:
    print(e)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert package in done.stdout and extra in done.stdout, done.stdout + done.stderr
