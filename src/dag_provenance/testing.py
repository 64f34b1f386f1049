"""pytest plugin for users' own test suites (and this project's).

Installed as a pytest11 entry point, so with dag-provenance installed every
test can ask for:

- `provenance`: a fresh, migrated `DagProvenance`. On a throwaway SQLite file
  by default; on the engine named by `DAG_PROVENANCE_TEST_URL` when set (a
  scratch database is created there once per test session, emptied after each
  test and dropped at the end, so the database named in the URL is left as
  it was).
- `provenance_url`: the URL the `provenance` fixture opens (session scoped;
  override it to point the fixture elsewhere, e.g. to parametrize over engines).

`scratch_database(url)` is the context manager behind it, usable on its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, delete, text, update
from sqlalchemy.engine import make_url

from dag_provenance.dberrors import translated, translating
from dag_provenance.engine import make_engine, sqlite_file_url
from dag_provenance.orm import dag_runs, edge_traversals, node_executions
from dag_provenance.repository import DagProvenance

TEST_URL_ENV = "DAG_PROVENANCE_TEST_URL"


@contextmanager
def scratch_database(server_url: str, prefix: str = "dp_") -> Iterator[str]:
    """Create a uniquely named empty database on the server `server_url` points
    at, yield its URL, and drop it afterwards. SQLite URLs get a fresh temp file."""
    url = make_url(server_url)
    backend = url.get_backend_name()
    name = prefix + secrets.token_hex(6)
    if backend == "sqlite":
        import tempfile

        with tempfile.TemporaryDirectory(prefix=prefix) as folder:
            yield sqlite_file_url(Path(folder) / f"{name}.db").render_as_string(False)
        return
    with translated():
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote_identifier(name)
    try:
        with translated(), admin.connect() as conn:
            conn.execute(text("CREATE DATABASE " + quoted))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with translated(), admin.connect() as conn:
                if backend == "postgresql":
                    conn.execute(text("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)"))
                else:
                    conn.execute(text("DROP DATABASE IF EXISTS " + quoted))
    finally:
        admin.dispose()


@translating
def empty_store(engine: Engine) -> None:
    """Delete every run, node execution and edge traversal (children first)."""
    with engine.begin() as conn:
        conn.execute(delete(edge_traversals))
        conn.execute(delete(node_executions))
        conn.execute(update(dag_runs).values(parent_run_id=None))
        conn.execute(delete(dag_runs))


@pytest.fixture(scope="session")
def provenance_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where the `provenance` fixture keeps its store (see the module docstring)."""
    server = os.environ.get(TEST_URL_ENV)
    if not server:
        yield "sqlite"
        return
    with scratch_database(server) as url:
        yield url


@pytest.fixture
def provenance(provenance_url: str, tmp_path: Path) -> Iterator[DagProvenance]:
    """A fresh, migrated store; emptied (or its file removed) after the test."""
    yield from fresh_store(provenance_url, tmp_path, DagProvenance)


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


def fresh_store(provenance_url: str, tmp_path: Path, open_store: Callable[[Any], S]) -> Iterator[S]:
    """The `provenance` fixture's store, made by `open_store(target)` (the
    store class, or a factory of a store to test the same way): on a new
    SQLite file in `tmp_path`, or on `provenance_url`'s database, emptied
    afterwards."""
    if provenance_url == "sqlite":
        store = open_store(tmp_path / "provenance.db")
        try:
            yield store
        finally:
            store.close()
        return
    engine = make_engine(provenance_url)
    store = open_store(provenance_url)
    try:
        yield store
    finally:
        empty_store(engine)
        store.close()
        engine.dispose()
