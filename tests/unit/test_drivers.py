"""Driver strategies, with stand-in connections (no database)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest

from dag_provenance.drivers import PsycopgDriver


class FakePipeline:
    """Records how it is ended; ending an aborted one fails, as psycopg's does."""

    def __init__(self) -> None:
        self.exits: list[type[BaseException] | None] = []
        self.aborted = False

    def __enter__(self) -> FakePipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exits.append(kind)
        if self.aborted:
            raise RuntimeError("pipeline aborted")


class FakeConnection:
    def __init__(self) -> None:
        self.made = FakePipeline()

    def pipeline(self) -> FakePipeline:
        return self.made


class Refused(Exception):
    pass


def test_a_pipeline_whose_statement_is_refused_ends_quietly_and_raises_the_refusal() -> None:
    conn: Any = FakeConnection()
    with pytest.raises(Refused), PsycopgDriver().pipeline(conn):
        conn.made.aborted = True
        raise Refused
    # Ended as if no error were in flight: psycopg logs "error ignored
    # terminating" when its block is left with one.
    assert conn.made.exits == [None]


def test_a_pipeline_that_fails_only_when_sent_raises_that_failure() -> None:
    conn: Any = FakeConnection()
    with pytest.raises(RuntimeError, match="aborted"), PsycopgDriver().pipeline(conn):
        conn.made.aborted = True
    assert conn.made.exits == [None]
