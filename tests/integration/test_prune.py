"""prune(), on every engine: whole finished run trees go, nothing active is touched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from dag_provenance import DagProvenance, InvalidInputError
from dag_provenance.maintenance import PruneResult, prune

from .conftest import CLOCK_START, Clock, dump_tables

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]


def _tree(
    store: DagProvenance,
    new_id: NewId,
    *,
    status: str = "completed",
    sub_status: str = "completed",
    subs: int = 2,
) -> str:
    """A run with two nodes (one edge) and `subs` sub-DAG runs of one node each."""
    root = new_id("run")
    store.create_run(root, "demo/dag", {"a": {}})
    store.record_node_start(root, "a", "{}", is_source=True)
    store.complete_node_with_edges(root, "a", "1", [("a", "b")])
    store.record_node_start(root, "b", "{}", is_sink=True)
    for i in range(subs):
        sub = new_id("sub")
        store.create_run(sub, f"demo/dag/b[{i}]", {}, parent_run_id=root)
        store.record_node_start(sub, "x", "{}")
        store.complete_node_with_edges(sub, "x", "2", [])
        _set_status(store, sub, sub_status)
    store.complete_node_with_edges(root, "b", "3", [])
    _set_status(store, root, status)
    return root


def _set_status(store: DagProvenance, run_id: str, status: str) -> None:
    if status in ("running", "paused"):
        store.update_run_status(run_id, status)
    else:
        store.finish_run(run_id, status)


def _run_ids(store: DagProvenance) -> set[str]:
    return {row[0] for row in dump_tables(store)["dag_runs"]}


def test_prune_deletes_old_finished_trees_with_their_nodes_edges_and_sub_runs(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    old = _tree(provenance, new_id)
    clock.advance(timedelta(days=40))
    cutoff = clock.now
    new = _tree(provenance, new_id)

    result = prune(provenance, cutoff)

    assert result == PruneResult(runs=3, node_executions=4, edge_traversals=1)
    assert provenance.get_run(old) is None
    assert provenance.get_child_runs(old) == []
    assert provenance.get_node_executions(old) == []
    assert provenance.get_edge_traversals(old) == []
    assert len(_run_ids(provenance)) == 3
    assert provenance.inspect_run(new) is not None


@pytest.mark.parametrize(
    ("status", "sub_status"),
    [
        ("running", "completed"),
        ("paused", "completed"),
        ("completed", "running"),
        ("failed", "paused"),
    ],
)
def test_prune_never_touches_a_tree_holding_an_active_run(
    provenance: DagProvenance, new_id: NewId, clock: Clock, status: str, sub_status: str
) -> None:
    kept = _tree(provenance, new_id, status=status, sub_status=sub_status)
    gone = _tree(provenance, new_id)
    clock.advance(timedelta(days=1))
    before = dump_tables(provenance)

    result = prune(provenance, clock.now)

    assert result.runs == 3
    assert provenance.get_run(gone) is None
    assert provenance.get_run(kept) is not None
    assert len(provenance.get_child_runs(kept)) == 2
    assert [r for r in before["dag_runs"] if r[0] == kept or r[2] == kept] == [
        r for r in dump_tables(provenance)["dag_runs"]
    ]


def test_prune_dry_run_counts_the_same_and_deletes_nothing(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    _tree(provenance, new_id)
    _tree(provenance, new_id, status="failed", subs=0)
    clock.advance(timedelta(days=1))
    before = dump_tables(provenance)

    planned = prune(provenance, clock.now, dry_run=True)

    assert dump_tables(provenance) == before
    assert planned == PruneResult(runs=4, node_executions=6, edge_traversals=2, dry_run=True)
    done = prune(provenance, clock.now)
    assert done.model_dump(exclude={"dry_run"}) == planned.model_dump(exclude={"dry_run"})


def test_prune_with_statuses_only_deletes_trees_whose_top_run_has_one(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    completed = _tree(provenance, new_id)
    failed = _tree(provenance, new_id, status="failed", sub_status="completed")
    clock.advance(timedelta(days=1))

    result = prune(provenance, clock.now, statuses=["failed"])

    assert result.runs == 3
    assert provenance.get_run(failed) is None
    assert provenance.get_run(completed) is not None


def test_prune_leaves_runs_started_at_or_after_the_moment(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run = _tree(provenance, new_id, subs=0)
    started = provenance.inspect_run(run)
    assert started is not None

    assert prune(provenance, started.started_at).runs == 0
    assert prune(provenance, started.started_at + timedelta(microseconds=1)).runs == 1


def test_prune_in_batches_of_one_deletes_what_one_batch_does(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    for _ in range(5):
        _tree(provenance, new_id, subs=1)
    _tree(provenance, new_id, status="running")
    clock.advance(timedelta(days=1))
    seen: list[int] = []

    result = prune(provenance, clock.now, batch_size=1, progress=lambda t: seen.append(t.runs))

    assert result == PruneResult(runs=10, node_executions=15, edge_traversals=5)
    assert seen == [2, 4, 6, 8, 10]
    assert len(_run_ids(provenance)) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statuses": ["running"]}, "never pruned"),
        ({"statuses": ["completed", "paused"]}, "never pruned"),
        ({"statuses": ["done"]}, "not one of"),
        ({"statuses": []}, "at least one"),
        ({"batch_size": 0}, "batch_size"),
        ({"older_than": datetime(2031, 1, 1)}, "timezone-aware"),
    ],
)
def test_prune_refuses_bad_arguments_before_deleting_anything(
    provenance: DagProvenance, new_id: NewId, clock: Clock, kwargs: dict[str, object], match: str
) -> None:
    _tree(provenance, new_id)
    before = dump_tables(provenance)
    args: dict[str, object] = {"older_than": CLOCK_START + timedelta(days=9), **kwargs}

    with pytest.raises(InvalidInputError, match=match):
        prune(provenance, **args)  # type: ignore[arg-type]

    assert dump_tables(provenance) == before
