"""Helpers for the integration suite: unique ids, a controllable clock and a
dump of every provenance table (to prove a refused call changed nothing)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from dag_provenance import DagProvenance
from dag_provenance.orm import dag_runs, edge_traversals, node_executions
from dag_provenance.testing import fresh_store

from .stores import STORE_KINDS, event_loop_thread
from .stores import open_store as open_store_of

T = TypeVar("T")
TableDump = dict[str, list[tuple[Any, ...]]]


def dump_tables(store: DagProvenance) -> TableDump:
    """Every row of the three provenance tables, every column, in primary-key order."""
    dump: TableDump = {}
    with store.engine.connect() as conn:
        for table in (dag_runs, node_executions, edge_traversals):
            stmt = select(table).order_by(*table.primary_key.columns)
            dump[table.name] = [tuple(row) for row in conn.execute(stmt)]
    return dump


Refused = Callable[..., AbstractContextManager[pytest.ExceptionInfo[Any]]]


@pytest.fixture
def refused(provenance: DagProvenance) -> Refused:
    """`with refused(SomeError, match=...):` expects the block to raise and the
    database to be exactly as it was before the block, row for row."""

    @contextmanager
    def check(
        expected: type[BaseException] | tuple[type[BaseException], ...], match: str | None = None
    ) -> Iterator[pytest.ExceptionInfo[Any]]:
        before = dump_tables(provenance)
        with pytest.raises(expected, match=match) as info:
            yield info
        assert dump_tables(provenance) == before

    return check


def check_each(cases: Mapping[str, T], check: Callable[[T], object]) -> None:
    """Run `check` on every case (one store, many cases: fast), then fail
    naming every case whose check failed."""
    failures: list[str] = []
    for name, case in cases.items():
        try:
            check(case)
        except (Exception, pytest.fail.Exception) as e:
            first_line = str(e).splitlines()[0] if str(e) else ""
            failures.append(f"{name}: {type(e).__name__}: {first_line}")
    assert not failures, "failed cases:\n" + "\n".join(failures)


@pytest.fixture
def new_id() -> Callable[[str], str]:
    """Makes ids no other test uses: `new_id("run")` -> `"run-3f2a..."`."""

    def make(prefix: str = "id") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


class Clock:
    """Stands in for the repository's clock: every reading returns `now`,
    then moves it on by `step` (set `step` to zero to make readings tie)."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        reading = self.now
        self.now += self.step
        return reading

    def advance(self, delta: timedelta) -> None:
        self.now += delta


# An odd number of microseconds, so a store that drops or rounds them is caught.
CLOCK_START = datetime(2031, 5, 17, 9, 30, 0, 123457, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """Controls the timestamps the store writes, so ordering tests need no sleeping."""
    fake = Clock(CLOCK_START, timedelta(seconds=1))
    monkeypatch.setattr("dag_provenance.operations._now", fake)
    yield fake


# --- both stores ----------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_stores` run once per store (see `stores`), except
    those also marked `sync_store`."""
    definition = metafunc.definition
    if (
        "store_kind" in metafunc.fixturenames
        and definition.get_closest_marker("both_stores")
        and not definition.get_closest_marker("sync_store")
    ):
        metafunc.parametrize("store_kind", STORE_KINDS)


@pytest.fixture
def store_kind() -> str:
    """Which store a test gets: "sync" unless it is marked `both_stores`."""
    return "sync"


@pytest.fixture(scope="session")
def awaited_store_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the async store runs on under `AwaitedStore`."""
    with event_loop_thread() as loop:
        yield loop


OpenStore = Callable[..., DagProvenance]


@pytest.fixture
def open_store(store_kind: str, awaited_store_loop: asyncio.AbstractEventLoop) -> OpenStore:
    """`open_store(target, **options)`: the store under test on `target`."""
    return functools.partial(open_store_of, store_kind, loop=awaited_store_loop)


@pytest.fixture
def provenance(
    provenance_url: str, tmp_path: Path, open_store: OpenStore
) -> Iterator[DagProvenance]:
    """The plugin's fixture, for the store under test (`store_kind`)."""
    yield from fresh_store(provenance_url, tmp_path, open_store)
