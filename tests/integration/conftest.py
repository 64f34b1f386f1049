"""Helpers for the integration suite: unique ids, a controllable clock and a
dump of every provenance table (to prove a refused call changed nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from dag_provenance import DagProvenance
from dag_provenance.orm import dag_runs, edge_traversals, node_executions

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
