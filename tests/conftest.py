"""One suite, every engine: the `engine_name` fixture parametrizes it.

SQLite always runs. PostgreSQL and MariaDB/MySQL run when their server URLs
are in the environment (`DAG_PROVENANCE_TEST_POSTGRES_URL`,
`DAG_PROVENANCE_TEST_MYSQL_URL`); each gets a scratch database per test
session (dropped afterwards), and a test that needs an empty database gets
its own. A server that is named but down makes its tests error, not skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dag_provenance.engine import make_engine, sqlite_file_url
from dag_provenance.testing import scratch_database

SERVER_URL_ENV = {
    "postgresql": "DAG_PROVENANCE_TEST_POSTGRES_URL",
    "mysql": "DAG_PROVENANCE_TEST_MYSQL_URL",
}


def _engine_names() -> list[str]:
    return ["sqlite"] + [name for name, env in SERVER_URL_ENV.items() if os.environ.get(env)]


def server_url(engine_name: str) -> str:
    return os.environ[SERVER_URL_ENV[engine_name]]


@pytest.fixture(scope="session", params=_engine_names())
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def provenance_url(engine_name: str) -> Iterator[str]:
    """Overrides the plugin's fixture: the `provenance` store on each engine."""
    if engine_name == "sqlite":
        yield "sqlite"
        return
    with scratch_database(server_url(engine_name)) as url:
        yield url


@contextmanager
def new_database(engine_name: str, folder: Path) -> Iterator[str]:
    """The URL of a brand-new empty database on `engine_name` for the block: a
    file in `folder`, or a scratch database on the server (dropped after)."""
    if engine_name == "sqlite":
        yield sqlite_file_url(folder / "empty.db").render_as_string(False)
        return
    with scratch_database(server_url(engine_name)) as url:
        yield url


@pytest.fixture
def empty_db_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    """A URL of a brand-new empty database on the engine under test."""
    with new_database(engine_name, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_db_url(engine_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`empty_db_url` shared by a module's tests (each writes runs of its own)."""
    with new_database(engine_name, tmp_path_factory.mktemp("module")) as url:
        yield url


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    """A configured Engine on a brand-new empty database."""
    engine = make_engine(empty_db_url)
    try:
        yield engine
    finally:
        engine.dispose()
