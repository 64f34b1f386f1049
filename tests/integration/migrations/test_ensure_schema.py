"""ensure_schema, the migrate-on-start every store runs, on every engine."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event

from dag_provenance import migrate
from dag_provenance.engine import make_engine
from dag_provenance.errors import (
    SchemaOutOfDateError,
    SchemaTooNewError,
    UnrecognizedSchemaError,
)
from dag_provenance.orm import Base

# As Tables (tables.py's module-level names are typed as FromClause).
dag_runs, node_executions, edge_traversals = (
    Base.metadata.tables[name] for name in ("dag_runs", "node_executions", "edge_traversals")
)

PROCESSES = 4


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends inside the block (transaction control left out)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def set_version(engine: Engine, revision: str) -> None:
    version = sa.table(migrate.VERSION_TABLE, sa.column("version_num", sa.String(32)))
    with engine.begin() as conn:
        conn.execute(sa.update(version).values(version_num=revision))


def test_an_empty_database_gets_every_table_and_is_stamped_at_head(empty_engine: Engine) -> None:
    migrate.ensure_schema(empty_engine)

    assert table_names(empty_engine) == {*Base.metadata.tables, migrate.VERSION_TABLE}
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_the_history_is_kept_in_dag_provenance_version_not_alembic_version(
    empty_engine: Engine,
) -> None:
    migrate.ensure_schema(empty_engine)

    assert migrate.VERSION_TABLE == "dag_provenance_version"
    assert "alembic_version" not in table_names(empty_engine)


def test_a_store_shares_a_database_with_an_apps_own_alembic_history(empty_engine: Engine) -> None:
    app = sa.MetaData()
    app_version = sa.Table("alembic_version", app, sa.Column("version_num", sa.String(32)))
    sa.Table("app_users", app, sa.Column("id", sa.Integer, primary_key=True))
    app.create_all(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(sa.insert(app_version).values(version_num="app_rev_7"))

    migrate.ensure_schema(empty_engine)

    assert {"alembic_version", "app_users"} <= table_names(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(sa.select(app_version.c.version_num)).scalar() == "app_rev_7"
    assert migrate.migration_status(empty_engine).is_up_to_date


def test_a_database_at_head_costs_one_select_on_the_version_table(empty_engine: Engine) -> None:
    migrate.ensure_schema(empty_engine)

    with recorded_statements(empty_engine) as statements:
        migrate.ensure_schema(empty_engine)

    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT")
    assert migrate.VERSION_TABLE in statements[0]


def test_migrate_false_refuses_a_database_that_is_behind_and_leaves_it_as_it_was(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, "0003")

    with pytest.raises(SchemaOutOfDateError) as refused:
        migrate.ensure_schema(empty_engine, migrate=False)

    message = str(refused.value)
    assert "0003" in message
    assert migrate.head_revision() in message
    assert "alembic upgrade head" in message
    assert "dag-provenance db upgrade" in message
    assert migrate.current_revision(empty_engine) == "0003"


def test_migrate_false_refuses_an_empty_database_without_creating_tables(
    empty_engine: Engine,
) -> None:
    with pytest.raises(SchemaOutOfDateError, match="empty database"):
        migrate.ensure_schema(empty_engine, migrate=False)

    assert not table_names(empty_engine) & {*Base.metadata.tables, migrate.VERSION_TABLE}


def test_a_database_behind_is_upgraded_on_start(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "0002")

    migrate.ensure_schema(empty_engine)

    assert migrate.current_revision(empty_engine) == migrate.head_revision()


@pytest.mark.parametrize("allow_migrate", [True, False])
def test_a_database_from_a_newer_version_is_refused_either_way(
    empty_engine: Engine, allow_migrate: bool
) -> None:
    migrate.ensure_schema(empty_engine)
    set_version(empty_engine, "9999_from_the_future")

    with pytest.raises(SchemaTooNewError, match="9999_from_the_future"):
        migrate.ensure_schema(empty_engine, migrate=allow_migrate)

    assert migrate.current_revision(empty_engine) == "9999_from_the_future"
    assert migrate.migration_status(empty_engine).is_too_new


def test_provenance_tables_of_unknown_shape_are_refused(empty_engine: Engine) -> None:
    odd = sa.MetaData()
    for name in ("dag_runs", "node_executions", "edge_traversals"):
        sa.Table(name, odd, sa.Column("id", sa.Integer, primary_key=True))
    odd.create_all(empty_engine)

    with pytest.raises(UnrecognizedSchemaError):
        migrate.ensure_schema(empty_engine)
    assert migrate.VERSION_TABLE not in table_names(empty_engine)


def test_migration_status_lists_the_pending_revisions_oldest_first(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "0003")

    status = migrate.migration_status(empty_engine)

    assert status.current_revision == "0003"
    assert status.head_revision == migrate.head_revision()
    assert [p.revision for p in status.pending] == ["0004", "0005"]
    assert all(p.description for p in status.pending)
    assert not status.is_up_to_date


def test_history_runs_from_lythonics_schema_to_head() -> None:
    revisions = migrate.history()

    assert revisions[0][:2] == ("0001", None)
    assert revisions[-1][0] == migrate.head_revision()
    assert all(down == previous[0] for previous, (_, down, _) in pairwise(revisions))


# --- concurrent start ---------------------------------------------------------------


def start_store(url: str, barrier: Any) -> int:
    """In a child process: open the database like a starting store would, and
    report how many tables this process created."""
    engine = make_engine(url)
    created = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal created
        created += statement.lstrip().upper().startswith("CREATE TABLE")

    event.listen(engine, "before_cursor_execute", count)
    barrier.wait()
    try:
        migrate.ensure_schema(engine)
    finally:
        engine.dispose()
    return created


def test_stores_starting_together_on_an_empty_database_migrate_it_exactly_once(
    empty_db_url: str,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=spawn) as pool:
        barrier = manager.Barrier(PROCESSES)
        futures = [pool.submit(start_store, empty_db_url, barrier) for _ in range(PROCESSES)]
        created = [future.result(timeout=120) for future in futures]

    engine = make_engine(empty_db_url)
    try:
        version = sa.table(migrate.VERSION_TABLE, sa.column("version_num"))
        with engine.connect() as conn:
            versions = conn.execute(sa.select(version.c.version_num)).scalars().all()
    finally:
        engine.dispose()
    assert versions == [migrate.head_revision()]
    # The three provenance tables and the version table, each created by one process.
    assert sum(created) == len(Base.metadata.tables) + 1
    assert sorted(created) == [0] * (PROCESSES - 1) + [len(Base.metadata.tables) + 1]


# --- data survives a round trip -------------------------------------------------------


def rows(table: sa.Table, *given: dict[str, Any]) -> list[dict[str, Any]]:
    """`given` with every column present (None where not given), as executemany wants."""
    return [{c.name: values.get(c.name) for c in table.columns} for values in given]


def insert_run_tree(engine: Engine) -> None:
    """A parent run with a sub-DAG child, nodes and edges: rows with children."""
    at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    runs = rows(
        dag_runs,
        {"run_id": "parent", "dag_nsref": "ns:dag", "status": "completed",
         "started_at": at, "finished_at": at, "initiated_by": "usr_1"},
        {"run_id": "child", "dag_nsref": "ns:dag/n[0]", "parent_run_id": "parent",
         "status": "failed", "started_at": at, "source_inputs_json": '{"a": 1}'},
    )  # fmt: skip
    nodes = rows(
        node_executions,
        {"run_id": "parent", "node_label": "n", "status": "completed", "is_source": True,
         "is_sink": False, "started_at": at, "finished_at": at, "output_json": "[1]"},
        {"run_id": "child", "node_label": "m", "status": "failed", "is_source": False,
         "is_sink": True, "started_at": at, "error": "boom"},
    )  # fmt: skip
    edges = rows(
        edge_traversals,
        {"run_id": "parent", "upstream_label": "n", "downstream_label": "o", "traversed_at": at},
    )
    with engine.begin() as conn:
        conn.execute(sa.insert(dag_runs), runs)
        conn.execute(sa.insert(node_executions), nodes)
        conn.execute(sa.insert(edge_traversals), edges)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in (dag_runs, node_executions, edge_traversals)
        }


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
            for name in ("dag_runs", "node_executions", "edge_traversals")
        }


def test_downgrading_to_lythonics_schema_and_back_keeps_every_row(empty_engine: Engine) -> None:
    migrate.ensure_schema(empty_engine)
    insert_run_tree(empty_engine)
    before = dump(empty_engine)
    counts = row_counts(empty_engine)

    # 0002 is lythonic 0.0.28's schema: every column survives the round trip.
    migrate.downgrade(empty_engine, "0002")
    assert row_counts(empty_engine) == counts
    migrate.upgrade(empty_engine)
    assert dump(empty_engine) == before

    # 0001 has no initiated_by column; every row is still kept.
    migrate.downgrade(empty_engine, "0001")
    assert row_counts(empty_engine) == counts
    migrate.upgrade(empty_engine)
    assert row_counts(empty_engine) == counts


def test_sqlite_foreign_keys_are_enforced_again_after_a_migration(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "fk.db")
    try:
        migrate.ensure_schema(engine)
        migrate.downgrade(engine, "0002")
        migrate.upgrade(engine)

        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
