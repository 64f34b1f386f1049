"""What the benchmark does to a store: the write lifecycle and the read data sets.

`run_dag` is the DagRunner-shaped sequence of public write calls
(`run_dag_async` the same, awaited, for asyncio stores). The data
sets are rows described once, engine-neutrally (aware UTC datetimes, bools),
then written by a loader through each store's own schema: `load_ours`
through SQLAlchemy Core into this package's tables (so the column types
store timestamps as each engine's DATETIME), `load_original_schema` with
sqlite3 into the original's tables (REAL epoch seconds, INTEGER flags).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from sqlalchemy import Engine, insert

NODES_PER_RUN = 5
CHILD_NODES = 3
CHILDREN_PER_COMPOSITE = 2
FAIL_EVERY = 10  # run k fails a node when k % FAIL_EVERY == FAIL_EVERY - 1 (10%)
COMPOSITE_EVERY = 5  # run k expands sub-DAG child runs when k % COMPOSITE_EVERY == 0
FAILING_NODE = 2
COMPOSITE_NODE = 1


class WriteStore(Protocol):
    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None: ...
    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None: ...
    def complete_node_with_edges(
        self, run_id: str, node_label: str, output_json: str, edges: list[tuple[str, str]]
    ) -> None: ...
    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None: ...
    def finish_run(
        self, run_id: str, status: str, sink_outputs_json: str | None = None
    ) -> None: ...


AsyncWriteStore: TypeAlias = object
"""A store whose `WriteStore` methods are coroutines (`AsyncDagProvenance`,
or an adapter): `run_dag_async` calls them by name, as `dag_calls` lists them."""


# The write lifecycle


Call = tuple[str, tuple[Any, ...], dict[str, Any]]
"""A public write method's name and the arguments to call it with."""


def dag_calls(run_id: str, k: int) -> Iterator[Call]:
    """The public calls DagRunner makes running DAG number `k`, in order.
    10% of runs fail a node, 20% expand a composite node into sub-DAG child
    runs."""
    return _dag_calls(
        run_id,
        "bench.pipeline",
        None,
        NODES_PER_RUN,
        fail=k % FAIL_EVERY == FAIL_EVERY - 1,
        children=CHILDREN_PER_COMPOSITE if k % COMPOSITE_EVERY == 0 else 0,
    )


def _dag_calls(
    run_id: str, nsref: str, parent: str | None, n_nodes: int, *, fail: bool, children: int
) -> Iterator[Call]:
    yield "create_run", (run_id, nsref, {"x": 1, "k": run_id}), {"parent_run_id": parent}
    for i in range(n_nodes):
        label = f"n{i}"
        yield (
            "record_node_start",
            (run_id, label, f'{{"in": {i}}}'),
            {
                "is_source": i == 0,
                "is_sink": i == n_nodes - 1,
            },
        )
        if fail and i == FAILING_NODE:
            yield "fail_node_and_finish_run", (run_id, label, "ValueError: boom"), {}
            return
        for j in range(children if i == COMPOSITE_NODE else 0):
            yield from _dag_calls(
                f"{run_id}.{j}",
                f"{nsref}/{label}[{j}]",
                run_id,
                CHILD_NODES,
                fail=False,
                children=0,
            )
        edges = [(label, f"n{i + 1}"), (label, f"n{i + 2}")]
        yield "complete_node_with_edges", (run_id, label, f'{{"out": {i}}}', edges), {}
    yield "finish_run", (run_id, "completed", '{"result": 1}'), {}


def run_dag(store: WriteStore, run_id: str, k: int) -> int:
    """Run DAG number `k` against `store` as DagRunner would (`dag_calls`);
    return the number of public calls made."""
    calls = 0
    for name, args, kwargs in dag_calls(run_id, k):
        getattr(store, name)(*args, **kwargs)
        calls += 1
    return calls


async def run_dag_async(store: AsyncWriteStore, run_id: str, k: int) -> int:
    """`run_dag` awaiting each call, for asyncio stores."""
    calls = 0
    for name, args, kwargs in dag_calls(run_id, k):
        await getattr(store, name)(*args, **kwargs)
        calls += 1
    return calls


# Read data sets: rows described once, written through each store's schema


@dataclass
class Bundle:
    """One run's rows."""

    run: dict[str, Any]
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)


T0 = datetime(2025, 1, 1, tzinfo=UTC)
INSPECT_RUN = "inspect20"
SUBTREE_ROOT = "subtree"
# Point lookups, in every store of 1,000 runs or more (`store_runs`): run 101
# completed its 5 nodes (10 edges) without sub-DAG runs; run 109 failed its
# third node, which get_pending_nodes then finds.
LOOKUP_RUN = "r0000101"
LOOKUP_NODE = "n3"
FAILED_RUN = "r0000109"


class Clock:
    """Strictly increasing timestamps, one millisecond per run."""

    def __init__(self) -> None:
        self._ms = itertools.count()

    def next_run(self) -> datetime:
        return T0 + timedelta(milliseconds=next(self._ms))


def make_run(
    run_id: str,
    nsref: str,
    started: datetime,
    *,
    n_nodes: int,
    edges_per_node: int = 2,
    parent: str | None = None,
    status: str = "completed",
) -> Bundle:
    """A run with the rows `run_dag` would leave: a failed run stops at its
    failed node, a running run at its running node."""
    stop = n_nodes - 1
    if status == "failed":
        stop = min(FAILING_NODE, stop)
    elif status == "running":
        stop = n_nodes // 2
    finished = None if status == "running" else started + timedelta(microseconds=10 * n_nodes + 5)
    bundle = Bundle(
        {
            "run_id": run_id,
            "dag_nsref": nsref,
            "parent_run_id": parent,
            "status": status,
            "started_at": started,
            "finished_at": finished,
            "source_inputs_json": '{"x": 1}',
            "sink_outputs_json": '{"result": 1}' if status == "completed" else None,
            "initiated_by": "bench",
        }
    )
    for i in range(stop + 1):
        label = f"n{i}"
        t = started + timedelta(microseconds=10 * i + 1)
        node_status = "completed"
        if i == stop and status in ("failed", "running"):
            node_status = status
        done = node_status != "running"
        bundle.nodes.append(
            {
                "run_id": run_id,
                "node_label": label,
                "status": node_status,
                "is_source": i == 0,
                "is_sink": i == n_nodes - 1,
                "input_json": f'{{"in": {i}}}',
                "output_json": f'{{"out": {i}}}' if node_status == "completed" else None,
                "started_at": t,
                "finished_at": t + timedelta(microseconds=5) if done else None,
                "error": "ValueError: boom" if node_status == "failed" else None,
            }
        )
        if node_status == "completed":
            bundle.edges.extend(
                {
                    "run_id": run_id,
                    "upstream_label": label,
                    "downstream_label": f"n{i + 1 + e}",
                    "traversed_at": t + timedelta(microseconds=5),
                }
                for e in range(edges_per_node)
            )
    return bundle


def _with_children(
    clock: Clock,
    run_id: str,
    status: str,
    n_nodes: int,
    n_children: int,
    child_nodes: int,
    edges_per_node: int = 2,
) -> Iterator[Bundle]:
    nsref = "bench.pipeline"
    yield make_run(
        run_id,
        nsref,
        clock.next_run(),
        n_nodes=n_nodes,
        edges_per_node=edges_per_node,
        status=status,
    )
    for j in range(n_children):
        yield make_run(
            f"{run_id}.{j}",
            f"{nsref}/n{COMPOSITE_NODE}[{j}]",
            clock.next_run(),
            n_nodes=child_nodes,
            edges_per_node=edges_per_node,
            parent=run_id,
        )


def store_runs(
    n_runs: int,
    *,
    nodes_per_run: int = NODES_PER_RUN,
    child_nodes: int = CHILD_NODES,
    edges_per_node: int = 2,
    running: int = 50,
) -> Iterator[Bundle]:
    """About `n_runs` runs shaped like `run_dag`'s (10% failed, 20% with two
    sub-DAG child runs, the newest `running` top-level runs still running),
    plus, in the middle: `inspect20` (20 nodes, two sub-DAG runs) and
    `subtree` (10 child runs with 2 grandchildren each, all sub-DAG runs)."""
    clock = Clock()
    total = 0
    k = 0
    running_made = 0
    placed_specials = False
    while total < n_runs:
        if not placed_specials and total >= n_runs // 2:
            placed_specials = True
            for b in _with_children(clock, INSPECT_RUN, "completed", 20, 2, CHILD_NODES):
                total += 1
                yield b
            yield from _subtree(clock, SUBTREE_ROOT, nodes_per_run)
            total += 31
            continue
        remaining = n_runs - total
        status = "completed"
        if k % FAIL_EVERY == FAIL_EVERY - 1:
            status = "failed"
        elif remaining <= 2 * running and running_made < running:
            status = "running"
            running_made += 1
        children = CHILDREN_PER_COMPOSITE if k % COMPOSITE_EVERY == 0 else 0
        for b in _with_children(
            clock, f"r{k:07d}", status, nodes_per_run, children, child_nodes, edges_per_node
        ):
            total += 1
            yield b
        k += 1


def _subtree(clock: Clock, root: str, n_nodes: int) -> Iterator[Bundle]:
    nsref = "bench.fanout"
    yield make_run(root, nsref, clock.next_run(), n_nodes=n_nodes)
    for i in range(10):
        child, child_ns = f"{root}.{i}", f"{nsref}/n{COMPOSITE_NODE}[{i}]"
        yield make_run(child, child_ns, clock.next_run(), n_nodes=CHILD_NODES, parent=root)
        for j in range(2):
            yield make_run(
                f"{child}.{j}",
                f"{child_ns}/n{COMPOSITE_NODE}[{j}]",
                clock.next_run(),
                n_nodes=CHILD_NODES,
                parent=child,
            )


def tree_runs(root: str, descendants: int, fanout: int = 10) -> Iterator[Bundle]:
    """A root run and exactly `descendants` runs below it, breadth first,
    `fanout` children per run; each run has 2 nodes and 2 edges."""
    clock = Clock()
    nsref = "bench.tree"
    yield make_run(root, nsref, clock.next_run(), n_nodes=2, edges_per_node=1)
    frontier = [(root, nsref)]
    made = 0
    while made < descendants:
        next_frontier = []
        for parent, parent_ns in frontier:
            for i in range(fanout):
                if made == descendants:
                    break
                run_id, ns = f"{parent}.{i}", f"{parent_ns}/n1[{i}]"
                yield make_run(
                    run_id, ns, clock.next_run(), n_nodes=2, edges_per_node=1, parent=parent
                )
                next_frontier.append((run_id, ns))
                made += 1
        frontier = next_frontier


# Loaders

CHUNK = 20_000


def _chunks(bundles: Iterable[Bundle]) -> Iterator[list[Bundle]]:
    it = iter(bundles)
    while chunk := list(itertools.islice(it, CHUNK // 10)):
        yield chunk


def load_ours(engine: Engine, bundles: Iterable[Bundle]) -> int:
    """Bulk insert through SQLAlchemy Core into this package's tables, so
    every value goes through the same column types the repository writes
    with. Returns the number of runs written."""
    from dag_provenance.orm import dag_runs, edge_traversals, node_executions

    n = 0
    for chunk in _chunks(bundles):
        with engine.begin() as conn:
            conn.execute(insert(dag_runs), [b.run for b in chunk])
            nodes = [n for b in chunk for n in b.nodes]
            if nodes:
                conn.execute(insert(node_executions), nodes)
            edges = [e for b in chunk for e in b.edges]
            if edges:
                conn.execute(insert(edge_traversals), edges)
        n += len(chunk)
    return n


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def load_original_schema(path: Path, bundles: Iterable[Bundle]) -> int:
    """Bulk insert with sqlite3 into the original lythonic schema (already
    created by the store's constructor): REAL epoch timestamps, INTEGER flags."""
    conn = sqlite3.connect(path, isolation_level=None)
    n = 0
    try:
        for chunk in _chunks(bundles):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO dag_runs (run_id, dag_nsref, parent_run_id, status, started_at, "
                "finished_at, source_inputs_json, sink_outputs_json, initiated_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r["run_id"],
                        r["dag_nsref"],
                        r["parent_run_id"],
                        r["status"],
                        _epoch(r["started_at"]),
                        _epoch(r["finished_at"]),
                        r["source_inputs_json"],
                        r["sink_outputs_json"],
                        r["initiated_by"],
                    )
                    for r in (b.run for b in chunk)
                ],
            )
            conn.executemany(
                "INSERT INTO node_executions (run_id, node_label, status, is_source, is_sink, "
                "input_json, output_json, started_at, finished_at, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        x["run_id"],
                        x["node_label"],
                        x["status"],
                        int(x["is_source"]),
                        int(x["is_sink"]),
                        x["input_json"],
                        x["output_json"],
                        _epoch(x["started_at"]),
                        _epoch(x["finished_at"]),
                        x["error"],
                    )
                    for b in chunk
                    for x in b.nodes
                ],
            )
            conn.executemany(
                "INSERT INTO edge_traversals (run_id, upstream_label, downstream_label, "
                "traversed_at) VALUES (?, ?, ?, ?)",
                [
                    (
                        e["run_id"],
                        e["upstream_label"],
                        e["downstream_label"],
                        _epoch(e["traversed_at"]),
                    )
                    for b in chunk
                    for e in b.edges
                ],
            )
            conn.execute("COMMIT")
            n += len(chunk)
    finally:
        conn.close()
    return n
