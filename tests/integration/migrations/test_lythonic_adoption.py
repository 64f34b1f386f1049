"""A SQLite file lythonic's own DagProvenance wrote is adopted on start:
its schema is recognised, stamped, and upgraded with every row kept.

lythonic only ever wrote SQLite, so these tests run once, not per engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lythonic.compose.dag_provenance import DagProvenance as LythonicProvenance
from sqlalchemy import Engine

from dag_provenance import migrate
from dag_provenance.engine import make_engine
from dag_provenance.errors import SchemaOutOfDateError
from dag_provenance.tables import Base

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
        for table, key in KEYS.items():
            rows[table] = {}
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
