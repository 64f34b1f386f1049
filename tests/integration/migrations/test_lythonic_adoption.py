"""A SQLite file lythonic's own DagProvenance wrote is adopted on start:
its schema is recognised, stamped, and upgraded with every row kept. A file
holding only some of lythonic's tables (early lythonic wrote only dag_runs)
is adopted too: the tables it lacks are created first, as lythonic would.

lythonic only ever wrote SQLite, so these tests run once, on SQLite, not per engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lythonic.compose import dag_provenance as lythonic
from lythonic.compose.dag_provenance import DagProvenance as LythonicProvenance
from sqlalchemy import Engine
from typer.testing import CliRunner

from dag_provenance import DagProvenance, migrate
from dag_provenance.cli import app
from dag_provenance.engine import make_engine
from dag_provenance.errors import SchemaError, SchemaOutOfDateError, UnrecognizedSchemaError
from dag_provenance.orm import Base

KEYS = {
    "dag_runs": ("run_id",),
    "node_executions": ("run_id", "node_label"),
    "edge_traversals": ("run_id", "upstream_label", "downstream_label"),
}
TIMESTAMPS = {"started_at", "finished_at", "traversed_at"}
FLAGS = {"is_source", "is_sink"}
RUN_IDS = ("run-parent", "run-child")

Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]
Timestamps = dict[tuple[str, ...], datetime | None]


def write_with_lythonic(path: Path) -> None:
    """A real run tree: a parent run, a sub-DAG child run, completed, failed and
    skipped nodes, edges, payloads and an initiator."""
    store = LythonicProvenance(path)
    store.create_run("run-parent", "pkg.dags:pipeline", {"x": 1}, initiator="usr_1234")
    store.record_node_start("run-parent", "load", '{"x": 1}', is_source=True)
    store.complete_node_with_edges(
        "run-parent", "load", '{"rows": 3}', [("load", "split"), ("load", "report")]
    )
    store.record_node_start("run-parent", "split", '{"rows": 3}')
    store.create_run(
        "run-child", "pkg.dags:pipeline/split[0]", {"chunk": 0}, parent_run_id="run-parent"
    )
    store.record_node_start("run-child", "work", '{"chunk": 0}', is_source=True, is_sink=True)
    store.fail_node_and_finish_run("run-child", "work", "ValueError: bad chunk")
    store.record_node_skipped("run-parent", "report", '"copied"')
    store.finish_run("run-parent", "failed", '{"report": null}')
    # A node row with NULL flags, as hand-written rows can have: the upgrade makes them false.
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO node_executions (run_id, node_label, status, is_source, is_sink) "
            "VALUES (?, ?, ?, NULL, NULL)",
            ("run-parent", "manual", "pending"),
        )


def lythonic_timestamps(path: Path) -> Timestamps:
    """Every timestamp as lythonic's own inspect_run shows it."""
    store = LythonicProvenance(path)
    seen: Timestamps = {}
    for run_id in RUN_IDS:
        run = store.inspect_run(run_id)
        assert run is not None
        seen[(run_id, "started_at")] = run.started_at
        seen[(run_id, "finished_at")] = run.finished_at
        for label, node in run.nodes.items():
            seen[(run_id, label, "started_at")] = node.started_at
            seen[(run_id, label, "finished_at")] = node.finished_at
            for edge in node.edges:
                seen[(run_id, label, edge.downstream_label)] = edge.traversed_at
    return seen


def timestamps_after(rows: Rows) -> Timestamps:
    seen: Timestamps = {}
    for (run_id,), run in rows["dag_runs"].items():
        seen[(run_id, "started_at")] = run["started_at"]
        seen[(run_id, "finished_at")] = run["finished_at"]
    for (run_id, label), node in rows["node_executions"].items():
        seen[(run_id, label, "started_at")] = node["started_at"]
        seen[(run_id, label, "finished_at")] = node["finished_at"]
    for (run_id, up, down), edge in rows["edge_traversals"].items():
        seen[(run_id, up, down)] = edge["traversed_at"]
    return seen


def raw_rows(path: Path) -> Rows:
    """Every row as lythonic stored it, timestamps read the way lythonic reads them."""
    rows: Rows = {}
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        present = {row["name"] for row in conn.execute("SELECT name FROM sqlite_master")}
        for table, key in KEYS.items():
            rows[table] = {}
            if table not in present:
                continue
            for row in conn.execute("SELECT * FROM " + table):
                values = dict(row)
                for name in TIMESTAMPS & values.keys():
                    if values[name] is not None:
                        values[name] = datetime.fromtimestamp(values[name], tz=UTC)
                for name in FLAGS & values.keys():
                    values[name] = bool(values[name])
                rows[table][tuple(values[k] for k in key)] = values
    return rows


def adopted_rows(engine: Engine) -> Rows:
    rows: Rows = {}
    with engine.connect() as conn:
        for table, key in KEYS.items():
            found = conn.execute(sa.select(Base.metadata.tables[table])).mappings()
            rows[table] = {tuple(row[k] for k in key): dict(row) for row in found}
    return rows


@pytest.fixture
def lythonic_file(tmp_path: Path) -> Path:
    path = tmp_path / "lythonic.db"
    write_with_lythonic(path)
    return path


@pytest.fixture
def engine_on(lythonic_file: Path) -> Iterator[Engine]:
    engine = make_engine(lythonic_file)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(tmp_path / "fresh.db")
    migrate.ensure_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def drop_initiated_by(path: Path) -> None:
    """Turn a lythonic 0.0.28 file into what lythonic 0.0.24 wrote."""
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE dag_runs DROP COLUMN initiated_by")


@pytest.mark.parametrize(
    ("lythonic_version", "recognised_as"), [("0.0.28", "0002"), ("0.0.24", "0001")]
)
def test_a_lythonic_file_is_adopted_with_every_row_and_microsecond_kept(
    lythonic_file: Path,
    engine_on: Engine,
    fresh_engine: Engine,
    schema_of: Callable[[Engine], dict[str, Any]],
    lythonic_version: str,
    recognised_as: str,
) -> None:
    shown_by_lythonic = lythonic_timestamps(lythonic_file)
    if lythonic_version == "0.0.24":
        drop_initiated_by(lythonic_file)
    before = raw_rows(lythonic_file)
    assert migrate.migration_status(engine_on).current_revision == recognised_as

    migrate.ensure_schema(engine_on)

    after = adopted_rows(engine_on)
    assert migrate.current_revision(engine_on) == migrate.head_revision()
    assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
    if lythonic_version == "0.0.24":
        for run in after["dag_runs"].values():
            assert run.pop("initiated_by") is None
    assert after == before
    assert timestamps_after(after) == shown_by_lythonic
    assert after["node_executions"][("run-parent", "manual")]["is_source"] is False
    assert schema_of(engine_on) == schema_of(fresh_engine)


def test_a_lythonic_file_opened_with_migrate_false_is_refused_and_left_alone(
    lythonic_file: Path, engine_on: Engine
) -> None:
    before = raw_rows(lythonic_file)

    with pytest.raises(SchemaOutOfDateError, match=r"lythonic 0\.0\.28"):
        migrate.ensure_schema(engine_on, migrate=False)

    assert migrate.current_revision(engine_on) is None
    assert raw_rows(lythonic_file) == before


# --- files holding only some of lythonic's tables --------------------------------

TABLES = tuple(KEYS)
STRICT_SUBSETS = [tables for n in (1, 2) for tables in combinations(TABLES, n)]
WITH_RUNS = [tables for tables in STRICT_SUBSETS if "dag_runs" in tables]
WITHOUT_RUNS = [tables for tables in STRICT_SUBSETS if "dag_runs" not in tables]
# lythonic's own CREATE TABLE statements (0.0.28's; 0.0.24's lack initiated_by).
LYTHONIC_DDL = {
    "dag_runs": lythonic._DAG_RUNS_DDL,
    "node_executions": lythonic._NODE_EXECUTIONS_DDL,
    "edge_traversals": lythonic._EDGE_TRAVERSALS_DDL,
}
RECOGNISED_AS = {"0.0.24": "0001", "0.0.28": "0002"}


def subset_id(tables: Sequence[str]) -> str:
    return "+".join(tables)


def write_partial(path: Path, tables: Sequence[str], lythonic_version: str) -> None:
    """lythonic's real run tree, keeping only `tables` (and, for 0.0.24, no initiated_by)."""
    write_with_lythonic(path)
    with sqlite3.connect(path) as conn:
        for table in TABLES:
            if table not in tables:
                conn.execute("DROP TABLE " + table)
    if lythonic_version == "0.0.24" and "dag_runs" in tables:
        drop_initiated_by(path)


def write_with_lythonic_ddl(path: Path, ddl: dict[str, str]) -> None:
    """Tables made by (variants of) lythonic's own DDL, holding no rows."""
    with sqlite3.connect(path) as conn:
        for statement in ddl.values():
            conn.execute(statement)


def file_contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """sqlite_master and every row of every table, in rowid order: what a
    refused adoption must leave exactly as it was."""
    with closing(sqlite3.connect(path)) as conn:
        master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        contents = {"sqlite_master": master.fetchall()}
        for kind, name, _, _ in contents["sqlite_master"]:
            if kind == "table":
                contents[name] = conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()
    return contents


def plain_reads(store: DagProvenance, run_ids: Sequence[str]) -> Rows:
    """The runs' rows as get_run, get_node_executions and get_edge_traversals
    return them, timestamps turned into datetimes (as raw_rows has them)."""
    rows: Rows = {table: {} for table in TABLES}
    for run_id in run_ids:
        run = store.get_run(run_id)
        found = (
            [] if run is None else [run],
            store.get_node_executions(run_id),
            store.get_edge_traversals(run_id),
        )
        for table, records in zip(TABLES, found, strict=True):
            for record in records:
                values = {
                    name: datetime.fromtimestamp(value, UTC)
                    if name in TIMESTAMPS and value is not None
                    else value
                    for name, value in record.items()
                }
                rows[table][tuple(values[k] for k in KEYS[table])] = values
    return rows


def revisions_after(revision: str) -> list[str]:
    revisions = [r for r, _, _ in migrate.history()]
    return revisions[revisions.index(revision) + 1 :]


def record_a_new_run(store: DagProvenance, run_id: str, parent_run_id: str | None) -> None:
    """The adopted store takes new runs, nodes and edges, and shows them."""
    store.create_run(
        run_id, "pkg.dags:after", {"y": 2}, parent_run_id=parent_run_id, initiator="usr_new"
    )
    store.record_node_start(run_id, "first", '{"y": 2}', is_source=True)
    store.complete_node_with_edges(run_id, "first", '{"z": 3}', [("first", "second")])

    run = store.inspect_run(run_id)
    assert run is not None
    assert (run.parent_run_id, run.initiated_by, run.status) == (
        parent_run_id,
        "usr_new",
        "running",
    )
    assert run.nodes["first"].status == "completed"
    assert [e.downstream_label for e in run.nodes["first"].edges] == ["second"]


@pytest.fixture
def engines() -> Iterator[Callable[[Path], Engine]]:
    """`engines(path)`: an Engine on a SQLite file, disposed after the test."""
    made: list[Engine] = []

    def make(path: Path) -> Engine:
        made.append(make_engine(path))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.mark.parametrize("lythonic_version", ["0.0.28", "0.0.24"])
@pytest.mark.parametrize("tables", WITH_RUNS, ids=subset_id)
def test_a_lythonic_file_with_only_some_tables_is_adopted_with_every_row_kept(
    tmp_path: Path,
    engines: Callable[[Path], Engine],
    schema_of: Callable[[Engine], dict[str, Any]],
    fresh_engine: Engine,
    new_id: Callable[[str], str],
    tables: tuple[str, ...],
    lythonic_version: str,
) -> None:
    path = tmp_path / "partial.db"
    write_partial(path, tables, lythonic_version)
    before = raw_rows(path)
    if lythonic_version == "0.0.24":
        for run in before["dag_runs"].values():
            run["initiated_by"] = None
    status = migrate.migration_status(engines(path))
    assert status.current_revision == RECOGNISED_AS[lythonic_version]
    assert [p.revision for p in status.pending] == revisions_after(status.current_revision)

    with DagProvenance(path) as store:
        assert plain_reads(store, RUN_IDS) == before
        parent = store.inspect_run("run-parent")
        assert parent is not None
        assert set(parent.nodes) == {
            label for run_id, label in before["node_executions"] if run_id == "run-parent"
        }
        record_a_new_run(store, new_id("run"), parent_run_id="run-parent")

    engine = engines(path)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert schema_of(engine) == schema_of(fresh_engine)


@pytest.mark.parametrize("tables", WITHOUT_RUNS, ids=subset_id)
def test_a_lythonic_file_without_dag_runs_and_without_rows_is_adopted(
    tmp_path: Path,
    engines: Callable[[Path], Engine],
    schema_of: Callable[[Engine], dict[str, Any]],
    fresh_engine: Engine,
    new_id: Callable[[str], str],
    tables: tuple[str, ...],
) -> None:
    path = tmp_path / "partial.db"
    write_with_lythonic_ddl(path, {table: LYTHONIC_DDL[table] for table in tables})
    # Only dag_runs tells 0.0.24 from 0.0.28: the file is read as the older one.
    assert migrate.migration_status(engines(path)).current_revision == "0001"

    with DagProvenance(path) as store:
        record_a_new_run(store, new_id("run"), parent_run_id=None)

    engine = engines(path)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert schema_of(engine) == schema_of(fresh_engine)


@pytest.mark.parametrize(
    ("tables", "lythonic_version"),
    [(tables, "0.0.28") for tables in WITH_RUNS]
    + [(tables, "0.0.24") for tables in WITH_RUNS]
    + [(tables, "0.0.24") for tables in WITHOUT_RUNS],
    ids=lambda value: subset_id(value) if isinstance(value, tuple) else value,
)
def test_the_tables_adoption_creates_are_the_ones_the_recognised_revision_builds(
    tmp_path: Path,
    engines: Callable[[Path], Engine],
    schema_of: Callable[[Engine], dict[str, Any]],
    tables: tuple[str, ...],
    lythonic_version: str,
) -> None:
    path = tmp_path / "partial.db"
    write_with_lythonic_ddl(path, {table: LYTHONIC_DDL[table] for table in tables})
    if lythonic_version == "0.0.24" and "dag_runs" in tables:
        drop_initiated_by(path)
    revision = RECOGNISED_AS[lythonic_version]
    built = engines(tmp_path / "built.db")
    migrate.upgrade(built, revision)

    adopted = engines(path)
    migrate.upgrade(adopted, revision)

    assert migrate.current_revision(adopted) == revision
    created = set(TABLES) - set(tables)
    assert {t: schema_of(adopted)[t] for t in created} == {t: schema_of(built)[t] for t in created}


@pytest.mark.parametrize(
    ("tables", "named"),
    [
        (
            ("node_executions",),
            r"node_executions rows whose run_id is not in dag_runs: "
            r"\(run_id='run-child', node_label='work'\)",
        ),
        (
            ("edge_traversals",),
            r"edge_traversals rows whose run_id is not in dag_runs: "
            r"\(run_id='run-parent', upstream_label='load', downstream_label='report'\)",
        ),
        (("node_executions", "edge_traversals"), r"node_executions rows .*; .* edge_traversals"),
    ],
    ids=lambda value: subset_id(value) if isinstance(value, tuple) else "",
)
def test_rows_whose_run_is_not_in_the_file_are_named_and_nothing_is_changed(
    tmp_path: Path, engines: Callable[[Path], Engine], tables: tuple[str, ...], named: str
) -> None:
    path = tmp_path / "partial.db"
    write_partial(path, tables, "0.0.28")
    before = file_contents(path)

    with pytest.raises(SchemaError, match=named):
        DagProvenance(path)

    assert file_contents(path) == before
    assert migrate.current_revision(engines(path)) is None


def test_a_run_whose_parent_run_is_not_in_the_file_is_named_and_nothing_is_changed(
    tmp_path: Path, engines: Callable[[Path], Engine]
) -> None:
    path = tmp_path / "partial.db"
    write_partial(path, ["dag_runs"], "0.0.28")
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM dag_runs WHERE run_id = ?", ("run-parent",))
    before = file_contents(path)

    with pytest.raises(
        SchemaError,
        match=r"1 dag_runs row whose parent_run_id is not in dag_runs: \(run_id='run-child'\)",
    ):
        migrate.upgrade(engines(path))

    assert file_contents(path) == before


def lythonic_ddl_with(table: str, old: str, new: str) -> dict[str, str]:
    """lythonic's DDL for `table` alone, with `old` replaced by `new`."""
    changed = LYTHONIC_DDL[table].replace(old, new)
    assert changed != LYTHONIC_DDL[table]
    return {table: changed}


@pytest.mark.parametrize(
    ("ddl", "named"),
    [
        (
            lythonic_ddl_with("dag_runs", "started_at REAL NOT NULL", "started_at TEXT NOT NULL"),
            r"dag_runs: started_at is TEXT, lythonic's is REAL",
        ),
        (
            lythonic_ddl_with("dag_runs", "finished_at REAL,", "finished_at,"),
            r"dag_runs: finished_at is untyped, lythonic's is REAL",
        ),
        (
            lythonic_ddl_with("node_executions", "    error TEXT,\n", ""),
            r"node_executions: no column error",
        ),
        (
            lythonic_ddl_with(
                "edge_traversals",
                "NOT NULL,\n    PRIMARY",
                "NOT NULL,\n    note TEXT,\n    PRIMARY",
            ),
            r"edge_traversals: unexpected column note",
        ),
        (
            {
                "dag_runs": LYTHONIC_DDL["dag_runs"],
                **lythonic_ddl_with(
                    "node_executions",
                    "PRIMARY KEY (run_id, node_label)",
                    "UNIQUE (run_id, node_label)",
                ),
            },
            r"node_executions: primary key \(\), lythonic's is \(run_id, node_label\)",
        ),
        (
            lythonic_ddl_with(
                "edge_traversals",
                ",\n    FOREIGN KEY (run_id) REFERENCES dag_runs(run_id)",
                "",
            ),
            r"edge_traversals: foreign keys \(none\), "
            r"lythonic's are \(run_id\) -> dag_runs\(run_id\)",
        ),
    ],
    ids=[
        "wrong-type",
        "untyped",
        "missing-column",
        "extra-column",
        "no-primary-key",
        "no-foreign-key",
    ],
)
def test_a_partial_file_whose_tables_are_not_lythonics_is_refused_and_left_alone(
    tmp_path: Path, engines: Callable[[Path], Engine], ddl: dict[str, str], named: str
) -> None:
    path = tmp_path / "partial.db"
    write_with_lythonic_ddl(path, ddl)
    if "dag_runs" in ddl:
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO dag_runs (run_id, dag_nsref, status, started_at) VALUES (?, ?, ?, ?)",
                ("run-kept", "pkg.dags:kept", "running", 1_700_000_000.123457),
            )
    before = file_contents(path)

    with pytest.raises(UnrecognizedSchemaError, match=named):
        DagProvenance(path)
    with pytest.raises(UnrecognizedSchemaError, match=named):
        migrate.migration_status(engines(path))

    assert file_contents(path) == before


@pytest.mark.parametrize("tables", STRICT_SUBSETS, ids=subset_id)
def test_a_partial_file_opened_with_migrate_false_is_refused_and_left_alone(
    tmp_path: Path, engines: Callable[[Path], Engine], tables: tuple[str, ...]
) -> None:
    path = tmp_path / "partial.db"
    write_partial(path, tables, "0.0.28")
    before = file_contents(path)
    missing = ", ".join(t for t in TABLES if t not in tables)

    with pytest.raises(SchemaOutOfDateError, match=f"without {missing}"):
        DagProvenance(path, migrate=False)

    assert file_contents(path) == before
    status = migrate.migration_status(engines(path))
    assert status.current_revision == ("0002" if "dag_runs" in tables else "0001")
    assert not status.is_up_to_date


def test_db_upgrade_adopts_a_file_holding_only_dag_runs(
    tmp_path: Path, engines: Callable[[Path], Engine]
) -> None:
    path = tmp_path / "partial.db"
    write_partial(path, ["dag_runs"], "0.0.24")
    before = raw_rows(path)

    result = CliRunner().invoke(app, ["db", "upgrade", "--url", str(path)])

    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    engine = engines(path)
    assert migrate.current_revision(engine) == migrate.head_revision()
    after = adopted_rows(engine)
    assert after["node_executions"] == after["edge_traversals"] == {}
    for run in after["dag_runs"].values():
        assert run.pop("initiated_by") is None
    assert after["dag_runs"] == before["dag_runs"]
