"""A DAG-run workload whose records can be checked after the fact, and the
checks: what the reliability tests write, and what they prove was kept.

Every run has the same five nodes. Each completed node's output JSON records
how many edges it was completed with (`{"edges": n}`), so a check that only
has the database (after a crash, say) knows how many edge rows must exist.
Every `FAIL_EVERY`-th run fails at node `n3` through
`fail_node_and_finish_run`; the others complete all five nodes and finish.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text

from dag_provenance import AsyncDagProvenance, DagProvenance, DagRun
from dag_provenance.orm import dag_runs, edge_traversals, node_executions

# node -> the nodes it has edges to (a small diamond then a tail)
EDGES: dict[str, list[str]] = {
    "n0": ["n1", "n2"],
    "n1": ["n3"],
    "n2": ["n3"],
    "n3": ["n4"],
    "n4": [],
}
NODES = list(EDGES)
FAILING_NODE = "n3"
FAIL_EVERY = 5

WRITES_PER_COMPLETED_RUN = 1 + 2 * len(NODES) + 1
WRITES_PER_FAILED_RUN = 1 + 2 * NODES.index(FAILING_NODE) + 2


def fails(index: int) -> bool:
    return index % FAIL_EVERY == FAIL_EVERY - 1


@dataclass(frozen=True)
class Rows:
    runs: int
    nodes: int
    edges: int

    def __add__(self, other: Rows) -> Rows:
        return Rows(self.runs + other.runs, self.nodes + other.nodes, self.edges + other.edges)


NO_ROWS = Rows(0, 0, 0)


def rows_of_run(index: int) -> Rows:
    """The rows one whole run of the workload leaves."""
    if fails(index):
        done = NODES[: NODES.index(FAILING_NODE)]
        return Rows(1, len(done) + 1, sum(len(EDGES[n]) for n in done))
    return Rows(1, len(NODES), sum(len(e) for e in EDGES.values()))


def rows_of_runs(indexes: Iterable[int]) -> Rows:
    total = NO_ROWS
    for i in indexes:
        total = total + rows_of_run(i)
    return total


Call = tuple[str, tuple[Any, ...], dict[str, Any]]
"""A store method's name and the arguments to call it with."""


def run_calls(
    run_id: str,
    index: int,
    *,
    parent_run_id: str | None = None,
    dag_nsref: str = "reliability:dag",
) -> Iterator[Call]:
    """The store calls that write run number `index` of the workload, in order."""
    yield (
        "create_run",
        (run_id, dag_nsref, {"n0": {"index": index}}),
        {"parent_run_id": parent_run_id},
    )
    for label in NODES:
        yield (
            "record_node_start",
            (run_id, label, json.dumps({"from": run_id})),
            {"is_source": label == "n0"},
        )
        if fails(index) and label == FAILING_NODE:
            yield "fail_node_and_finish_run", (run_id, label, f"{label} failed on purpose"), {}
            return
        edges = [(label, down) for down in EDGES[label]]
        yield (
            "complete_node_with_edges",
            (run_id, label, json.dumps({"edges": len(edges)}), edges),
            {},
        )
    yield "finish_run", (run_id, "completed", json.dumps({"n4": index})), {}


def write_run(
    store: DagProvenance,
    run_id: str,
    index: int,
    *,
    parent_run_id: str | None = None,
    dag_nsref: str = "reliability:dag",
    after_call: Callable[[], None] | None = None,
) -> None:
    """Write run number `index` of the workload, calling `after_call` after each write."""
    for name, args, kwargs in run_calls(
        run_id, index, parent_run_id=parent_run_id, dag_nsref=dag_nsref
    ):
        getattr(store, name)(*args, **kwargs)
        if after_call is not None:
            after_call()


async def write_run_async(
    store: AsyncDagProvenance,
    run_id: str,
    index: int,
    *,
    parent_run_id: str | None = None,
    dag_nsref: str = "reliability:dag",
) -> None:
    """`write_run` on the async store, awaiting each call."""
    for name, args, kwargs in run_calls(
        run_id, index, parent_run_id=parent_run_id, dag_nsref=dag_nsref
    ):
        await getattr(store, name)(*args, **kwargs)


# --- checks on what a reader was shown ------------------------------------------


def snapshot_violations(run: DagRun) -> list[str]:
    """What a consistent snapshot of the workload can never show, in `run` and
    every sub-DAG run hung under it: a completed node without all its edges,
    edges of a node that is not completed, a failed node in a run not failed."""
    problems: list[str] = []
    for label, node in run.nodes.items():
        where = f"run {run.run_id!r} node {label!r} ({node.status})"
        if node.status == "completed" and len(node.edges) != len(EDGES.get(label, [])):
            problems.append(f"{where} has {len(node.edges)} edges")
        if node.status != "completed" and node.edges:
            problems.append(f"{where} has edges before completing")
        if node.status == "failed" and run.status != "failed":
            problems.append(f"{where} is in a run marked {run.status!r}")
        for child in (node.sub_dags or {}).values():
            problems.extend(snapshot_violations(child))
    return problems


# --- checks on what the database holds ------------------------------------------


def row_counts(engine: Engine, run_ids: Iterable[str] | None = None) -> Rows:
    """Rows of the three tables (of `run_ids` only, if given)."""
    wanted = None if run_ids is None else list(run_ids)
    counts = []
    with engine.connect() as conn:
        for table in (dag_runs, node_executions, edge_traversals):
            stmt = select(func.count()).select_from(table)
            if wanted is not None:
                stmt = stmt.where(table.c.run_id.in_(wanted))
            counts.append(conn.execute(stmt).scalar_one())
    return Rows(*counts)


def stored_violations(engine: Engine) -> list[str]:
    """Atomicity broken in the stored rows: a completed node whose edge rows
    differ from the count in its output, edges of a node not completed, a
    failed node whose run is not failed."""
    problems: list[str] = []
    with engine.connect() as conn:
        run_status = {r: s for r, s in conn.execute(select(dag_runs.c.run_id, dag_runs.c.status))}
        edges_by_node = select(
            edge_traversals.c.run_id, edge_traversals.c.upstream_label, func.count()
        ).group_by(edge_traversals.c.run_id, edge_traversals.c.upstream_label)
        edge_count = {(r, u): n for r, u, n in conn.execute(edges_by_node)}
        nodes = conn.execute(
            select(
                node_executions.c.run_id,
                node_executions.c.node_label,
                node_executions.c.status,
                node_executions.c.output_json,
            )
        ).all()
    for run_id, label, status, output in nodes:
        where = f"run {run_id!r} node {label!r} ({status})"
        edges = edge_count.pop((run_id, label), 0)
        if status == "completed":
            expected = json.loads(output)["edges"]
            if edges != expected:
                problems.append(f"{where} has {edges} edge rows, its output says {expected}")
        elif edges:
            problems.append(f"{where} has {edges} edge rows before completing")
        if status == "failed" and run_status[run_id] != "failed":
            problems.append(f"{where} is in a run marked {run_status[run_id]!r}")
    problems.extend(f"edges of node {key!r} that has no row" for key in edge_count)
    return problems


def run_of(table: Any) -> Any:
    return select(dag_runs.c.run_id).where(dag_runs.c.run_id == table.c.run_id)


def integrity_check(engine: Engine) -> list[str]:
    """The engine's own integrity check: SQLite's PRAGMA integrity_check and
    foreign_key_check; on servers, that every child row's run exists."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            result = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            orphans = [repr(tuple(r)) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
            return ([] if result == ["ok"] else result) + orphans
        orphans = []
        for table in (node_executions, edge_traversals):
            missing = conn.execute(
                select(func.count())
                .select_from(table)
                .where(
                    ~select(dag_runs.c.run_id).where(dag_runs.c.run_id == table.c.run_id).exists()
                )
            ).scalar_one()
            if missing:
                orphans.append(f"{missing} {table.name} rows of no run")
        if engine.dialect.name in ("mysql", "mariadb"):
            for table in (dag_runs, node_executions, edge_traversals):
                row = conn.execute(text(f"CHECK TABLE {table.name}")).all()[-1]
                if str(row[-1]).lower() != "ok":
                    orphans.append(f"CHECK TABLE {table.name}: {tuple(row)}")
        return orphans


def exception_chain(e: BaseException) -> list[BaseException]:
    chain = [e]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    return chain


def describe(e: BaseException) -> dict[str, Any]:
    return {"type": type(e).__name__, "message": str(e)}
