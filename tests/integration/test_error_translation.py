"""Every public function and command raises the library's errors, never a raw
SQLAlchemy, driver or Alembic exception, whatever fails underneath: an
unreachable server, an unknown driver, a revision Alembic does not know."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc
from typer.testing import CliRunner

from dag_provenance import (
    DagProvenance,
    DatabaseUnavailableError,
    DriverNotInstalledError,
    InvalidInputError,
    ProvenanceError,
    copy_store,
    migrate,
    migration_status,
)
from dag_provenance.cli import app
from dag_provenance.engine import make_engine
from dag_provenance.testing import scratch_database

pytestmark = pytest.mark.both_stores

SERVER_URL_ENV = {
    "postgresql": "DAG_PROVENANCE_TEST_POSTGRES_URL",
    "mysql": "DAG_PROVENANCE_TEST_MYSQL_URL",
}
UNREACHABLE = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    "mysql": "mysql+pymysql://root@127.0.0.1:1/none",
}


@pytest.fixture
def unreachable(engine_name: str, tmp_path: Path) -> Iterator[Engine]:
    """An Engine on a database that cannot be opened: a server port nobody
    listens on, or for SQLite a file path that is a folder."""
    if engine_name == "sqlite":
        folder = tmp_path / "a-folder.db"
        folder.mkdir()
        engine = make_engine(f"sqlite:///{folder}")
    else:
        engine = make_engine(UNREACHABLE[engine_name])
    try:
        yield engine
    finally:
        engine.dispose()


MIGRATION_CALLS: dict[str, Callable[[Engine], object]] = {
    "migration_status": migration_status,
    "current_revision": migrate.current_revision,
    "upgrade": migrate.upgrade,
    "downgrade": lambda engine: migrate.downgrade(engine, "base"),
    "stamp": lambda engine: migrate.stamp(engine, "head"),
    "ensure_schema": migrate.ensure_schema,
    "DagProvenance": DagProvenance,
}


@pytest.mark.parametrize("call", MIGRATION_CALLS)
def test_migration_functions_on_an_unreachable_database_raise_database_unavailable(
    unreachable: Engine, call: str
) -> None:
    with pytest.raises(DatabaseUnavailableError) as raised:
        MIGRATION_CALLS[call](unreachable)

    assert isinstance(raised.value.__cause__, exc.DBAPIError)
    assert raised.value.__cause__.orig is not None


def test_prune_and_copy_store_on_a_database_dropped_under_them_raise_the_library_s_error(
    engine_name: str, tmp_path: Path
) -> None:
    if engine_name == "sqlite":
        pytest.skip("a SQLite file cannot be dropped under an open connection")
    source = DagProvenance(tmp_path / "source.db")
    source.create_run("copied-run", "tests:copy", {})
    with scratch_database(os.environ[SERVER_URL_ENV[engine_name]]) as url:
        engine = make_engine(url)
        target = DagProvenance(engine)
    try:
        calls: dict[str, Callable[[], object]] = {
            "copy_store": lambda: copy_store(source, target),
            "prune": lambda: target.prune(datetime.now(UTC)),
            "get_run": lambda: target.get_run("copied-run"),
        }
        for name, call in calls.items():
            with pytest.raises(ProvenanceError) as raised:
                call()
            assert isinstance(raised.value.__cause__, exc.DBAPIError), name
    finally:
        engine.dispose()


def test_an_unknown_dialect_or_driver_in_a_url_is_invalid_input() -> None:
    for url in ("nosuchdb://user@host/db", "postgresql+nosuchdriver://user@host/db"):
        with pytest.raises(InvalidInputError, match="invalid database target") as raised:
            DagProvenance(url)
        assert isinstance(raised.value.__cause__, exc.SQLAlchemyError)


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails
    with pytest.raises(DriverNotInstalledError, match=r"dag-provenance\[postgresql\]") as raised:
        DagProvenance("postgresql+psycopg://someone@127.0.0.1:2/not-installed")
    assert isinstance(raised.value.__cause__, ImportError)


def test_a_revision_alembic_does_not_know_is_the_library_s_error(
    empty_db_url: str,
) -> None:
    engine = make_engine(empty_db_url)
    try:
        DagProvenance(engine)
        calls: list[Callable[[], None]] = [
            lambda: migrate.downgrade(engine, "nonsense"),
            lambda: migrate.upgrade(engine, "nonsense"),
            lambda: migrate.stamp(engine, "nonsense"),
        ]
        for call in calls:
            with pytest.raises(InvalidInputError, match="nonsense"):
                call()
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [["db", "status"], ["db", "current"], ["db", "upgrade"], ["runs", "list"]],
    ids=" ".join,
)
def test_commands_on_an_unreachable_database_print_the_library_s_one_line_error(
    unreachable: Engine, args: list[str]
) -> None:
    url = unreachable.url.render_as_string(hide_password=False)
    result = runner.invoke(app, [*args, "--url", url])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: database unavailable: ")
    assert len(result.stderr.strip().splitlines()) == 1
    debug = runner.invoke(app, ["--debug", *args, "--url", url])
    assert isinstance(debug.exception, ProvenanceError)


def test_db_downgrade_to_an_unknown_revision_prints_one_line(empty_db_url: str) -> None:
    DagProvenance(empty_db_url).close()
    result = runner.invoke(app, ["db", "downgrade", "nonsense", "--url", empty_db_url])

    assert result.exit_code == 1
    assert "nonsense" in result.stderr
    assert "CommandError" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
