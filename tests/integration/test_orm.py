"""The public ORM module queried with the host application's own Session, on
every engine: relationships, loading without a query per row, `to_dag_run`,
and a host table with a foreign key to `dag_runs.run_id`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lythonic.compose.dag_runner import DagRunner
from sqlalchemy import Engine, event, exc, insert, select
from sqlalchemy.orm import Session

from dag_provenance import DagProvenance
from dag_provenance.orm import (
    Base,
    DagRunRow,
    EdgeTraversalRow,
    NodeExecutionRow,
    include_name,
    to_dag_run,
)

from .host_app import Job, create_host_tables
from .lythonic_dags import failing_dag, map_dag, nested_dag

NewId = Callable[[str], str]


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent through `engine` while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _run(store: DagProvenance, dag: Any, inputs: dict[str, Any], nsref: str) -> str:
    runner = DagRunner(dag, provenance=store)  # type: ignore[arg-type]
    return asyncio.run(runner.run(source_inputs=inputs, dag_nsref=nsref)).run_id


def test_base_metadata_is_the_provenance_schema() -> None:
    assert set(Base.metadata.tables) == {"dag_runs", "node_executions", "edge_traversals"}


def test_relationships_walk_a_run_its_nodes_edges_parent_and_children(
    provenance: DagProvenance, new_id: NewId
) -> None:
    nsref = new_id("tests") + ":orm"
    run_id = _run(provenance, nested_dag(), {"seed": {"token": "x y"}}, nsref)

    with Session(provenance.engine) as session:
        run = session.get(DagRunRow, run_id)
        assert run is not None
        assert [n.node_label for n in run.nodes] == ["seed", "outer"]
        assert all(n.run is run for n in run.nodes)
        assert [(e.upstream_label, e.downstream_label) for e in run.edges] == [("seed", "outer")]
        assert all(e.run is run for e in run.edges)
        assert run.parent is None
        (outer,) = run.children
        assert outer.parent is run
        assert outer.dag_nsref == f"{nsref}/outer[]"
        assert sorted(c.dag_nsref for c in outer.children) == [
            f"{nsref}/outer[]/words[0]",
            f"{nsref}/outer[]/words[1]",
        ]
        assert isinstance(run.started_at, datetime) and run.started_at.tzinfo is not None


def test_walking_many_runs_nodes_and_children_costs_a_query_per_level_not_per_row(
    provenance: DagProvenance, new_id: NewId
) -> None:
    nsref = new_id("tests") + ":wide"
    for _ in range(5):
        _run(provenance, map_dag(), {"split": {"text": "a b c d e f"}}, nsref)

    with counting_statements(provenance.engine) as sent, Session(provenance.engine) as session:
        runs = session.scalars(select(DagRunRow).where(DagRunRow.dag_nsref == nsref)).all()
        walked = 0
        for run in runs:
            for child in run.children:
                walked += len(child.nodes) + len(child.edges) + len(child.children)
            walked += len(run.nodes) + len(run.edges)

    assert len(runs) == 5
    assert walked == 5 * (6 * 1 + 3 + 2)  # 6 sub-runs of one node each; 3 nodes, 2 edges
    # The runs, then per level their nodes, edges and children (1 + 3 + 3),
    # whatever the number of runs and nodes; one query per row would be 35+.
    assert len(sent) <= 7, sent


def test_to_dag_run_gives_what_inspect_run_gives(provenance: DagProvenance, new_id: NewId) -> None:
    nsref = new_id("tests") + ":models"
    run_ids = [
        _run(provenance, nested_dag(), {"seed": {"token": "p q"}}, nsref),
        _run(provenance, failing_dag(), {"start": {"n": 1}}, nsref),
    ]
    with Session(provenance.engine) as session:
        for run_id in run_ids:
            row = session.get(DagRunRow, run_id)
            assert row is not None
            model = to_dag_run(row)
            expected = provenance.inspect_run(run_id)
            assert model == expected
            assert expected is not None
            assert model.model_dump(exclude_unset=True) == expected.model_dump(exclude_unset=True)


def test_the_readme_query_finds_last_week_s_failed_runs_of_a_dag_with_their_nodes(
    provenance: DagProvenance, new_id: NewId
) -> None:
    nsref = new_id("tests") + ":weekly"
    failed = _run(provenance, failing_dag(), {"start": {"n": 1}}, nsref)
    _run(provenance, map_dag(), {"split": {"text": "ok"}}, nsref)  # completed: not listed

    # As in the README:
    week_ago = datetime.now(UTC) - timedelta(days=7)
    with Session(provenance.engine) as session:
        runs = session.scalars(
            select(DagRunRow)
            .where(
                DagRunRow.dag_nsref == nsref,
                DagRunRow.status == "failed",
                DagRunRow.started_at >= week_ago,
            )
            .order_by(DagRunRow.started_at.desc())
        ).all()
        found = {run.run_id: {n.node_label: n.status for n in run.nodes} for run in runs}

    assert found == {failed: {"start": "completed", "explode": "failed"}}


def test_node_and_edge_rows_load_their_run(provenance: DagProvenance, new_id: NewId) -> None:
    run_id = _run(provenance, failing_dag(), {"start": {"n": 3}}, new_id("tests"))
    with Session(provenance.engine) as session:
        node = session.get(NodeExecutionRow, (run_id, "explode"))
        edge = session.scalars(
            select(EdgeTraversalRow).where(EdgeTraversalRow.run_id == run_id)
        ).one()
        assert node is not None
        assert node.run.run_id == run_id and node.error and "cannot handle 3" in node.error
        assert (edge.upstream_label, edge.downstream_label) == ("start", "explode")
        assert edge.run is node.run


def test_a_host_table_may_point_at_runs_with_a_foreign_key(
    provenance: DagProvenance, new_id: NewId
) -> None:
    create_host_tables(provenance.engine)
    run_id = new_id("run")
    provenance.create_run(run_id, "tests:host", {})
    job = new_id("job")

    with Session(provenance.engine) as session:
        session.add(Job(name=job, run_id=run_id))
        session.commit()
        loaded = session.scalars(select(Job).where(Job.name == job)).one()
        assert loaded.run is not None and loaded.run.run_id == run_id

    with provenance.engine.connect() as conn, pytest.raises(exc.IntegrityError):
        conn.execute(insert(Job).values(name=new_id("job"), run_id=new_id("no-such-run")))


def test_include_name_leaves_out_the_provenance_tables_only() -> None:
    for table in ("dag_runs", "node_executions", "edge_traversals", "dag_provenance_version"):
        assert include_name(table, "table", {}) is False
    assert include_name("host_jobs", "table", {}) is True
    assert include_name("alembic_version", "table", {}) is True
    assert include_name("dag_runs", "column", {"table_name": "host_jobs"}) is True
    assert include_name(None, "schema", {}) is True
