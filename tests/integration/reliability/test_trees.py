"""Deep, wide and cyclic run trees, on every engine: the descendant query
stops on a parent_run_id cycle, loads 10,000 levels and 100,000 runs with
each run built once, in the same few statements whatever the tree's shape."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, event, insert, update

from dag_provenance import DagProvenance, DagRun
from dag_provenance.orm import Base

from ..conftest import OpenStore
from ..stores import statement_engine, statement_thread

pytestmark = pytest.mark.both_stores

dag_runs: Table = Base.metadata.tables["dag_runs"]

DEEP = 10_000
SUBTREE = 100_000
CHILDREN = 100  # the 100,000-run subtree: 100 children with 999 grandchildren each
GRANDCHILDREN = SUBTREE // CHILDREN - 1
MAX_STATEMENTS = 5
CHUNK = 5_000
T0 = datetime(2031, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(empty_db_url: str, open_store: OpenStore) -> Iterator[DagProvenance]:
    """A store on its own database (dropped afterwards, however many rows)."""
    with open_store(empty_db_url) as s:
        yield s


def insert_runs(store: DagProvenance, edges: list[tuple[str, str | None]], nsref: str) -> None:
    """Bulk-insert runs `(run_id, parent_run_id)` in the order given (parents
    first), one microsecond apart, in one transaction."""
    rows = [
        {
            "run_id": run_id,
            "dag_nsref": nsref,
            "parent_run_id": parent,
            "status": "completed",
            "started_at": T0 + timedelta(microseconds=i),
            "finished_at": T0 + timedelta(microseconds=i),
        }
        for i, (run_id, parent) in enumerate(edges)
    ]
    with store.engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(dag_runs), rows[start : start + CHUNK])


def chain(prefix: str, depth: int) -> list[tuple[str, str | None]]:
    """A root and `depth` levels below it, one run per level."""
    ids = [f"{prefix}{level:05d}" for level in range(depth + 1)]
    return [(ids[0], None), *zip(ids[1:], ids[:-1], strict=True)]


def fan(prefix: str, children: int, grandchildren: int) -> list[tuple[str, str | None]]:
    root = f"{prefix}root"
    rows: list[tuple[str, str | None]] = [(root, None)]
    for c in range(children):
        child = f"{prefix}c{c:03d}"
        rows.append((child, root))
        rows.extend((f"{child}g{g:04d}", child) for g in range(grandchildren))
    return rows


def all_runs(runs: list[DagRun]) -> list[str]:
    """Every run id shown: the runs given and those hung under their nodes."""
    seen: list[str] = []
    stack = list(runs)
    while stack:
        run = stack.pop()
        seen.append(run.run_id)
        for node in run.nodes.values():
            stack.extend((node.sub_dags or {}).values())
    return seen


# --- cycles ---------------------------------------------------------------------------


def test_a_parent_run_id_cycle_written_by_hand_is_walked_once_not_forever(
    store: DagProvenance,
) -> None:
    # a -> b -> c as sub-DAGs (each hangs under its parent's node n), then a's parent set to c
    store.create_run("a", "cyc", {})
    store.record_node_start("a", "n", "{}")
    store.create_run("b", "cyc/n[0]", {}, parent_run_id="a")
    store.record_node_start("b", "n", "{}")
    store.create_run("c", "cyc/n[0]/n[0]", {}, parent_run_id="b")
    store.create_run("self", "loop", {})
    with store.engine.begin() as conn:
        conn.execute(update(dag_runs).where(dag_runs.c.run_id == "a").values(parent_run_id="c"))
        conn.execute(
            update(dag_runs).where(dag_runs.c.run_id == "self").values(parent_run_id="self")
        )

    children = store.get_child_runs("a")
    assert sorted(r.run_id for r in children) == ["a", "b", "c"]
    assert sorted(r.run_id for r in store.get_child_runs("b")) == ["a", "b", "c"]
    assert [r.run_id for r in store.get_child_runs("self")] == ["self"]

    inspected = store.inspect_run("a")
    assert inspected is not None
    assert sorted(all_runs([inspected])) == ["a", "b", "c"]
    looped = store.inspect_run("self")
    assert looped is not None and looped.parent_run_id == "self"

    recent = store.get_recent_runs(limit=10)
    assert sorted(r.run_id for r in recent) == ["a", "b", "c", "self"]


# --- depth and breadth ------------------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_levels_of_nesting_load_with_each_run_once(store: DagProvenance) -> None:
    rows = chain("deep", DEEP)
    insert_runs(store, rows, "deep:dag")
    root, deepest = rows[0][0], rows[-1][0]

    descendants = store.get_child_runs(root)

    assert len(descendants) == DEEP
    assert len({r.run_id for r in descendants}) == DEEP
    assert [r.run_id for r in descendants] == [run_id for run_id, _ in rows[1:]]
    assert descendants[-1].run_id == deepest
    assert descendants[-1].parent_run_id == rows[-2][0]
    inspected = store.inspect_run(root)
    assert inspected is not None and inspected.run_id == root
    assert store.get_child_runs(deepest) == []


@pytest.mark.slow
def test_a_hundred_thousand_run_subtree_loads_with_each_run_built_once(
    store: DagProvenance,
) -> None:
    rows = fan("wide", CHILDREN, GRANDCHILDREN)
    assert len(rows) == SUBTREE + 1
    insert_runs(store, rows, "wide:dag")

    descendants = store.get_child_runs("wideroot")

    assert len(descendants) == SUBTREE
    assert len({r.run_id for r in descendants}) == SUBTREE
    assert len({id(r) for r in descendants}) == SUBTREE
    by_parent: dict[str | None, int] = {}
    for run in descendants:
        by_parent[run.parent_run_id] = by_parent.get(run.parent_run_id, 0) + 1
    assert by_parent["wideroot"] == CHILDREN
    assert set(by_parent.values()) == {CHILDREN, GRANDCHILDREN}


# --- statements per read --------------------------------------------------------------


@contextmanager
def counted_statements(store: DagProvenance) -> Iterator[list[str]]:
    """Every statement the store sends for this thread's calls in the block."""
    me = statement_thread(store)
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == me:
            sent.append(statement)

    engine = statement_engine(store)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


READS: dict[str, Callable[[DagProvenance, str], object]] = {
    "inspect_run": lambda s, root: s.inspect_run(root),
    "get_child_runs": lambda s, root: s.get_child_runs(root),
    "get_recent_runs": lambda s, root: s.get_recent_runs(limit=50, dag_nsref=f"shape:{root}"),
}


def test_each_read_sends_the_same_few_statements_whatever_the_trees_depth_or_breadth(
    store: DagProvenance,
) -> None:
    shapes = {
        "one run": [("one", None), ("one-child", "one")],
        "deep": chain("d", 300),
        "wide": fan("w", 300, 0),
        "both": fan("b", 30, 10),
    }
    for rows in shapes.values():
        insert_runs(store, rows, f"shape:{rows[0][0]}")
        # every run a node and an edge, so node and edge statements have rows
        with store.batch():
            for run_id, _ in rows[:50]:
                store.record_node_start(run_id, "n", "{}")
                store.complete_node_with_edges(run_id, "n", "1", [("n", "m")])
    counts: dict[str, dict[str, int]] = {}
    for read_name, read in READS.items():
        counts[read_name] = {}
        for shape, rows in shapes.items():
            with counted_statements(store) as sent:
                read(store, rows[0][0])
            counts[read_name][shape] = len(sent)

    for read_name, by_shape in counts.items():
        assert len(set(by_shape.values())) == 1, (read_name, by_shape)
        assert max(by_shape.values()) <= MAX_STATEMENTS, (read_name, by_shape)
    assert len(store.get_child_runs("d")) == 0
    assert len(store.get_child_runs(shapes["deep"][0][0])) == 300
