"""On PostgreSQL, every inspection query finds its rows through an index.

With 100,000 runs (and 200,000 nodes) in the store, a sequential scan would make
each dashboard poll cost time proportional to the store's size; the plans
must use the indexes the migrations create.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, literal, select, text

from dag_provenance import DagProvenance
from dag_provenance.engine import make_engine
from dag_provenance.orm import dag_runs, edge_traversals, node_executions

RUNS = 100_000
TABLES = ("dag_runs", "node_executions", "edge_traversals")


@pytest.fixture
def big_store(engine_name: str, empty_db_url: str) -> Iterator[DagProvenance]:
    if engine_name != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL")
    engine = make_engine(empty_db_url)
    store = DagProvenance(engine)
    try:
        _fill(engine)
        yield store
    finally:
        store.close()
        engine.dispose()


def _fill(engine: Engine) -> None:
    """100,000 runs over a day: a tenth of them children of others, a few
    hundred running; one 20-node run with edges, two sub-DAG runs under it."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(RUNS):
        parent = f"run-{i - 1:06d}" if i % 10 == 9 else None
        status = "running" if i % 300 == 0 else ("failed" if i % 7 == 0 else "completed")
        rows.append(
            {
                "run_id": f"run-{i:06d}",
                "dag_nsref": f"ns:dag{i % 50}" + ("/n0[0]" if parent else ""),
                "parent_run_id": parent,
                "status": status,
                "started_at": start + timedelta(milliseconds=i * 800),
                "finished_at": None if status == "running" else start + timedelta(seconds=i),
                "source_inputs_json": "{}",
                "sink_outputs_json": None,
                "initiated_by": None,
            }
        )
    target = "run-050000"
    nodes = [
        {
            "run_id": target,
            "node_label": f"n{j}",
            "status": "completed",
            "is_source": j == 0,
            "is_sink": j == 19,
            "input_json": "{}",
            "output_json": "{}",
            "started_at": start,
            "finished_at": start,
            "error": None,
        }
        for j in range(20)
    ]
    edges = [
        {
            "run_id": target,
            "upstream_label": f"n{j}",
            "downstream_label": f"n{j + 1}",
            "traversed_at": start,
        }
        for j in range(19)
    ]
    with engine.begin() as conn:
        conn.execute(insert(dag_runs), rows)
        conn.execute(insert(node_executions), nodes)
        conn.execute(insert(edge_traversals), edges)
        # Two nodes and an edge for every other run, written server-side.
        others = select(dag_runs.c.run_id, dag_runs.c.started_at).where(dag_runs.c.run_id != target)
        for label in ("a", "b"):
            conn.execute(
                insert(node_executions).from_select(
                    ["run_id", "node_label", "status", "started_at"],
                    others.with_only_columns(
                        dag_runs.c.run_id,
                        literal(label),
                        literal("completed"),
                        dag_runs.c.started_at,
                    ),
                )
            )
        conn.execute(
            insert(edge_traversals).from_select(
                ["run_id", "upstream_label", "downstream_label", "traversed_at"],
                others.with_only_columns(
                    dag_runs.c.run_id, literal("a"), literal("b"), dag_runs.c.started_at
                ),
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def _plans(store: DagProvenance, read: Callable[[], object]) -> list[str]:
    """EXPLAIN of every SELECT that `read` sends."""
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        read()
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    assert sent, "the read sent no SELECT"
    with store.engine.connect() as conn:
        return [
            "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params))
            for statement, params in sent
        ]


READS: dict[str, Callable[[DagProvenance], object]] = {
    "inspect_run": lambda s: s.inspect_run("run-050000"),
    "get_recent_runs": lambda s: s.get_recent_runs(limit=100),
    "get_recent_runs by status": lambda s: s.get_recent_runs(limit=20, status="failed"),
    "get_recent_runs by dag": lambda s: s.get_recent_runs(limit=20, dag_nsref="ns:dag7"),
    "get_recent_runs page": lambda s: s.get_recent_runs(
        limit=20, after=(datetime(2026, 1, 1, 12, tzinfo=UTC), "run-054000")
    ),
    "get_active_runs": lambda s: s.get_active_runs(),
    "get_child_runs": lambda s: s.get_child_runs("run-050008"),
    "load_io": lambda s: s.load_io(s.inspect_run("run-050000")),  # type: ignore[arg-type]
}


@pytest.mark.slow
def test_no_inspection_query_scans_all_runs_on_postgresql(big_store: DagProvenance) -> None:
    scanned = {
        name: plan
        for name, read in READS.items()
        for plan in _plans(big_store, lambda read=read: read(big_store))  # type: ignore[misc]
        if any(f"Seq Scan on {table}" in plan for table in TABLES)
    }
    assert not scanned, "sequential scans:\n" + "\n\n".join(
        f"{name}:\n{plan}" for name, plan in scanned.items()
    )
    assert big_store.inspect_run("run-050000") is not None
