"""How database errors become the library's: an outage is
`DatabaseUnavailableError`, a refused statement is `DatabaseError`, and the
original is always the cause."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc

from dag_provenance import DatabaseError, DatabaseUnavailableError, PayloadTooLargeError
from dag_provenance.dberrors import translate


def sqlite_error(message: str) -> exc.OperationalError:
    return exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    "message",
    ["database is locked", "unable to open database file", "disk I/O error",
     "attempt to write a readonly database", "database or disk is full"],
)  # fmt: skip
def test_a_sqlite_file_that_cannot_be_used_now_is_unavailable(message: str) -> None:
    assert type(translate(sqlite_error(message))) is DatabaseUnavailableError


@pytest.mark.parametrize(
    "message", ["index ix_dag_runs_started_at already exists", "no such table: dag_runs"]
)
def test_a_sqlite_statement_the_schema_refuses_is_not_an_outage(message: str) -> None:
    assert type(translate(sqlite_error(message))) is DatabaseError


def test_a_server_operational_error_is_unavailable() -> None:
    class ServerError(Exception):
        pass

    error = exc.OperationalError("SELECT 1", {}, ServerError("connection refused"))
    assert type(translate(error)) is DatabaseUnavailableError


def test_sqlite_s_too_big_is_payload_too_large() -> None:
    error = exc.DataError("INSERT", {}, sqlite3.DataError("string or blob too big"))
    assert type(translate(error)) is PayloadTooLargeError
