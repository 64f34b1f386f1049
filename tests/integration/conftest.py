"""Helpers for the integration suite: unique ids, a controllable clock and a
dump of every provenance table (to prove a refused call changed nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dag_provenance import DagProvenance
from dag_provenance.tables import dag_runs, edge_traversals, node_executions

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
    monkeypatch.setattr("dag_provenance.repository._now", fake)
    yield fake
