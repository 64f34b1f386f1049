"""The inspection API (Pydantic models) on every engine: inspect_run,
sub-DAG nesting, get_child_runs, get_recent_runs' trees and load_io."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from dag_provenance import DagProvenance, DagRun, EdgeTraversal, IoPayload, NodeExecution

from .conftest import CLOCK_START, Clock

pytestmark = pytest.mark.both_stores
NewId = Callable[[str], str]


def _all_runs(run: DagRun) -> Iterator[DagRun]:
    yield run
    for node in run.nodes.values():
        for child in (node.sub_dags or {}).values():
            yield from _all_runs(child)


@dataclass
class Tree:
    """A parent run whose composite nodes expanded into sub-DAG runs:

    parent (nsref N)
      load -> chunks (map: chunks[0], chunks[1]) -> enrich (call: enrich[]) -> save
      chunks[0] has a composite node `inner` (call) with its own sub-DAG `inner[]`
    """

    parent: str
    chunk0: str
    chunk1: str
    enrich: str
    grandchild: str
    nsref: str


def _linear(store: DagProvenance, run_id: str, labels: list[str]) -> None:
    for i, label in enumerate(labels):
        store.record_node_start(
            run_id, label, f'{{"in": "{label}"}}', is_source=i == 0, is_sink=i == len(labels) - 1
        )
        edges = [(label, labels[i + 1])] if i + 1 < len(labels) else []
        store.complete_node_with_edges(run_id, label, f'{{"out": "{label}"}}', edges)


def _tree(store: DagProvenance, new_id: NewId) -> Tree:
    t = Tree(
        parent=new_id("parent"),
        chunk0=new_id("chunk0"),
        chunk1=new_id("chunk1"),
        enrich=new_id("enrich"),
        grandchild=new_id("grandchild"),
        nsref=new_id("pkg.mod") + ":pipeline",
    )
    store.create_run(t.parent, t.nsref, {"load": {"path": "in.csv"}})
    store.record_node_start(t.parent, "load", '{"path": "in.csv"}', is_source=True)
    store.complete_node_with_edges(t.parent, "load", "[1, 2]", [("load", "chunks")])
    store.record_node_start(t.parent, "chunks", "[1, 2]")
    for child, key in ((t.chunk0, "chunks[0]"), (t.chunk1, "chunks[1]")):
        store.create_run(child, f"{t.nsref}/{key}", {"double": {"n": 1}}, parent_run_id=t.parent)
        _linear(store, child, ["double", "inner"] if child == t.chunk0 else ["double"])
        store.finish_run(child, "completed", '{"double": 2}')
    store.create_run(
        t.grandchild, f"{t.nsref}/chunks[0]/inner[]", {"leaf": {}}, parent_run_id=t.chunk0
    )
    _linear(store, t.grandchild, ["leaf"])
    store.finish_run(t.grandchild, "completed")
    store.complete_node_with_edges(t.parent, "chunks", "[2, 4]", [("chunks", "enrich")])
    store.record_node_start(t.parent, "enrich", "[2, 4]")
    store.create_run(t.enrich, f"{t.nsref}/enrich[]", {}, parent_run_id=t.parent)
    _linear(store, t.enrich, ["annotate", "tag"])
    store.finish_run(t.enrich, "completed")
    store.complete_node_with_edges(t.parent, "enrich", "{}", [("enrich", "save")])
    store.record_node_start(t.parent, "save", "{}", is_sink=True)
    store.complete_node_with_edges(t.parent, "save", '"saved"', [])
    store.finish_run(t.parent, "completed", '{"save": "saved"}')
    return t


# inspect_run


def test_inspect_run_of_an_unknown_run_is_none(provenance: DagProvenance, new_id: NewId) -> None:
    assert provenance.inspect_run(new_id("missing")) is None


def test_inspect_run_returns_the_run_with_its_nodes_keyed_by_label(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {"a": {}}, initiator="usr_9")
    _linear(provenance, run_id, ["a", "b"])
    provenance.finish_run(run_id, "completed", '{"b": 1}')

    run = provenance.inspect_run(run_id)

    second = timedelta(seconds=1)
    assert run == DagRun(
        run_id=run_id,
        dag_nsref="pkg:dag",
        parent_run_id=None,
        status="completed",
        started_at=CLOCK_START,
        finished_at=CLOCK_START + 5 * second,
        initiated_by="usr_9",
        nodes={
            "a": NodeExecution(
                node_label="a",
                status="completed",
                is_source=True,
                is_sink=False,
                started_at=CLOCK_START + second,
                finished_at=CLOCK_START + 2 * second,
                edges=[EdgeTraversal(downstream_label="b", traversed_at=CLOCK_START + 2 * second)],
            ),
            "b": NodeExecution(
                node_label="b",
                status="completed",
                is_source=False,
                is_sink=True,
                started_at=CLOCK_START + 3 * second,
                finished_at=CLOCK_START + 4 * second,
            ),
        },
    )


def test_inspected_nodes_are_listed_in_the_same_order_as_get_node_executions(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    # A UI iterating `run.nodes` must show the same order on every engine and
    # every call; PostgreSQL returns unordered rows in whatever order its join
    # produces, so the order has to be asked for.
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    labels = ["zeta", "alpha", "mid", "beta", "omega", "gamma", "delta", "kappa"]
    for label in labels:
        provenance.record_node_start(run_id, label, "{}")
    provenance.complete_node_with_edges(run_id, "zeta", "1", [])

    run = provenance.inspect_run(run_id)
    (listed,) = provenance.get_recent_runs(limit=1)

    in_start_order = [n["node_label"] for n in provenance.get_node_executions(run_id)]
    assert in_start_order == labels
    assert run is not None
    assert list(run.nodes) == in_start_order
    assert list(listed.nodes) == in_start_order


def test_edges_hang_on_their_upstream_node_in_traversal_order(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    provenance.record_node_start(run_id, "fan", "{}")
    provenance.complete_node_with_edges(run_id, "fan", "1", [("fan", "z"), ("fan", "y")])
    provenance.record_node_start(run_id, "fan", "{}")
    provenance.complete_node_with_edges(run_id, "fan", "1", [("fan", "a")])

    run = provenance.inspect_run(run_id)
    assert run is not None
    assert [e.downstream_label for e in run.nodes["fan"].edges] == ["y", "z", "a"]


def test_an_edge_from_a_node_that_never_started_is_not_attached_anywhere(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [("elsewhere", "b")])

    run = provenance.inspect_run(run_id)
    assert run is not None
    assert run.nodes["a"].edges == []
    assert len(provenance.get_edge_traversals(run_id)) == 1


def test_sub_dag_runs_hang_on_the_composite_node_that_expanded_them(
    provenance: DagProvenance, new_id: NewId
) -> None:
    t = _tree(provenance, new_id)

    run = provenance.inspect_run(t.parent)

    assert run is not None
    assert run.nodes["load"].sub_dags is None
    assert run.nodes["save"].sub_dags is None
    chunks = run.nodes["chunks"].sub_dags
    enrich = run.nodes["enrich"].sub_dags
    assert chunks is not None
    assert enrich is not None
    assert {k: v.run_id for k, v in chunks.items()} == {
        "chunks[0]": t.chunk0,
        "chunks[1]": t.chunk1,
    }
    assert {k: v.run_id for k, v in enrich.items()} == {"enrich[]": t.enrich}
    assert all(sub.parent_run_id == t.parent for sub in [*chunks.values(), *enrich.values()])
    assert set(enrich["enrich[]"].nodes) == {"annotate", "tag"}
    assert enrich["enrich[]"].nodes["annotate"].sub_dags is None


def test_grandchild_runs_nest_under_their_own_parent_s_composite_node(
    provenance: DagProvenance, new_id: NewId
) -> None:
    t = _tree(provenance, new_id)

    run = provenance.inspect_run(t.parent)

    assert run is not None
    chunk0 = (run.nodes["chunks"].sub_dags or {})["chunks[0]"]
    inner = chunk0.nodes["inner"].sub_dags
    assert inner is not None
    assert list(inner) == ["inner[]"]
    assert inner["inner[]"].run_id == t.grandchild
    assert inner["inner[]"].dag_nsref == f"{t.nsref}/chunks[0]/inner[]"
    assert chunk0.nodes["double"].sub_dags is None
    assert sorted(r.run_id for r in _all_runs(run)) == sorted(
        [t.parent, t.chunk0, t.chunk1, t.enrich, t.grandchild]
    )


def test_inspecting_a_sub_dag_run_shows_its_own_subtree(
    provenance: DagProvenance, new_id: NewId
) -> None:
    t = _tree(provenance, new_id)

    chunk0 = provenance.inspect_run(t.chunk0)

    assert chunk0 is not None
    assert chunk0.parent_run_id == t.parent
    assert list(chunk0.nodes["inner"].sub_dags or {}) == ["inner[]"]


def test_a_child_run_whose_nsref_names_no_node_of_its_parent_is_not_nested(
    provenance: DagProvenance, new_id: NewId
) -> None:
    parent, stray, foreign = new_id("parent"), new_id("stray"), new_id("foreign")
    provenance.create_run(parent, "pkg:dag", {})
    provenance.record_node_start(parent, "chunks", "[]")
    provenance.create_run(stray, "pkg:dag/unknown[0]", {}, parent_run_id=parent)
    provenance.create_run(foreign, "other:dag/chunks[0]", {}, parent_run_id=parent)

    run = provenance.inspect_run(parent)

    assert run is not None
    assert run.nodes["chunks"].sub_dags is None
    assert sorted(c.run_id for c in provenance.get_child_runs(parent)) == sorted([stray, foreign])


def test_inspection_leaves_every_payload_unloaded(provenance: DagProvenance, new_id: NewId) -> None:
    t = _tree(provenance, new_id)

    run = provenance.inspect_run(t.parent)

    assert run is not None
    for each in _all_runs(run):
        assert each.io is None
        assert all(node.io is None for node in each.nodes.values())


# get_child_runs


def test_get_child_runs_lists_every_descendant_in_start_order(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    t = _tree(provenance, new_id)

    children = provenance.get_child_runs(t.parent)

    assert [c.run_id for c in children] == [t.chunk0, t.chunk1, t.grandchild, t.enrich]
    assert [c.run_id for c in provenance.get_child_runs(t.chunk0)] == [t.grandchild]
    assert provenance.get_child_runs(t.grandchild) == []
    assert provenance.get_child_runs(new_id("missing")) == []


def test_get_child_runs_builds_each_run_once_and_nests_the_same_object(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    t = _tree(provenance, new_id)

    by_id = {c.run_id: c for c in provenance.get_child_runs(t.parent)}

    nested = (by_id[t.chunk0].nodes["inner"].sub_dags or {})["inner[]"]
    assert nested is by_id[t.grandchild]
    assert by_id[t.grandchild].nodes["leaf"].status == "completed"
    # Children's own parent is not in the result, so nothing nests them.
    assert by_id[t.enrich].nodes["annotate"].sub_dags is None


# get_recent_runs returns whole trees


def test_recent_runs_come_with_their_nodes_edges_and_sub_dags(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    t = _tree(provenance, new_id)

    recent = {r.run_id: r for r in provenance.get_recent_runs(limit=10)}

    # Sub-DAG runs are runs too, listed in their own right as well as nested.
    assert set(recent) == {t.parent, t.chunk0, t.chunk1, t.enrich, t.grandchild}
    parent = recent[t.parent]
    assert [e.downstream_label for e in parent.nodes["load"].edges] == ["chunks"]
    assert set(parent.nodes["chunks"].sub_dags or {}) == {"chunks[0]", "chunks[1]"}
    assert set(recent[t.chunk0].nodes["inner"].sub_dags or {}) == {"inner[]"}


def test_a_limited_listing_still_loads_each_listed_run_s_whole_subtree(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    t = _tree(provenance, new_id)

    (parent,) = provenance.get_recent_runs(limit=1, dag_nsref=t.nsref)

    assert parent.run_id == t.parent
    assert sorted(r.run_id for r in _all_runs(parent)) == sorted(
        [t.parent, t.chunk0, t.chunk1, t.enrich, t.grandchild]
    )


# load_io


def test_load_io_fills_the_run_s_and_every_node_s_payloads(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {"a": {"n": 1}})
    _linear(provenance, run_id, ["a", "b"])
    provenance.record_node_start(run_id, "c", '{"in": "c"}')
    provenance.finish_run(run_id, "completed", '{"b": 2}')
    run = provenance.inspect_run(run_id)
    assert run is not None

    provenance.load_io(run)

    assert run.io == IoPayload(input_json='{"a": {"n": 1}}', output_json='{"b": 2}')
    assert {label: node.io for label, node in run.nodes.items()} == {
        "a": IoPayload(input_json='{"in": "a"}', output_json='{"out": "a"}'),
        "b": IoPayload(input_json='{"in": "b"}', output_json='{"out": "b"}'),
        "c": IoPayload(input_json='{"in": "c"}', output_json=None),
    }


def test_load_io_fills_only_the_nodes_asked_for(provenance: DagProvenance, new_id: NewId) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    _linear(provenance, run_id, ["a", "b", "c"])
    run = provenance.inspect_run(run_id)
    assert run is not None

    provenance.load_io(run, ["b", "not-a-node"])

    assert run.io is not None
    assert run.io.input_json == "{}"
    assert {label: node.io is not None for label, node in run.nodes.items()} == {
        "a": False,
        "b": True,
        "c": False,
    }
    assert run.nodes["b"].io == IoPayload(input_json='{"in": "b"}', output_json='{"out": "b"}')


def test_load_io_with_no_labels_fills_only_the_run(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {"a": {}})
    _linear(provenance, run_id, ["a"])
    run = provenance.inspect_run(run_id)
    assert run is not None

    provenance.load_io(run, [])

    assert run.io == IoPayload(input_json='{"a": {}}', output_json=None)
    assert run.nodes["a"].io is None


def test_load_io_accepts_more_labels_than_fit_in_one_statement(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    _linear(provenance, run_id, ["a", "b"])
    run = provenance.inspect_run(run_id)
    assert run is not None

    provenance.load_io(run, ("b", *(f"missing-{i}" for i in range(2000))))

    assert run.nodes["a"].io is None
    assert run.nodes["b"].io == IoPayload(input_json='{"in": "b"}', output_json='{"out": "b"}')


def test_load_io_does_not_recurse_into_sub_dags(provenance: DagProvenance, new_id: NewId) -> None:
    t = _tree(provenance, new_id)
    run = provenance.inspect_run(t.parent)
    assert run is not None

    provenance.load_io(run)

    assert run.io is not None
    assert run.io.output_json == '{"save": "saved"}'
    assert all(node.io is not None for node in run.nodes.values())
    subtree = [r for r in _all_runs(run) if r is not run]
    assert len(subtree) == 4
    for sub in subtree:
        assert sub.io is None
        assert all(node.io is None for node in sub.nodes.values())


def test_load_io_on_a_run_that_is_gone_changes_nothing(
    provenance: DagProvenance, new_id: NewId
) -> None:
    ghost = DagRun(
        run_id=new_id("ghost"), dag_nsref="pkg:dag", status="running", started_at=CLOCK_START
    )

    provenance.load_io(ghost)

    assert ghost.io is None


# The models' helpers on stored data


def test_latest_update_and_nodes_changed_since_on_a_stored_run(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})  # +0s
    _linear(provenance, run_id, ["a", "b"])  # a: +1s..+2s (edge +2s), b: +3s..+4s
    provenance.record_node_start(run_id, "c", "{}")  # +5s, still running

    run = provenance.inspect_run(run_id)

    assert run is not None
    assert run.latest_update() == CLOCK_START + timedelta(seconds=5)
    changed = run.nodes_changed_since(CLOCK_START + timedelta(seconds=3))
    assert sorted(n.node_label for n in changed) == ["b", "c"]
