"""DagRun's helpers and the models' shapes, with no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dag_provenance import DagRun, EdgeTraversal, IoPayload, NodeExecution

T0 = datetime(2030, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _run(**nodes: NodeExecution) -> DagRun:
    return DagRun(run_id="r", dag_nsref="pkg:dag", status="running", started_at=T0, nodes=nodes)


def test_latest_update_of_a_bare_run_is_its_start() -> None:
    assert _run().latest_update() == T0


def test_latest_update_counts_the_run_s_finish() -> None:
    run = _run()
    run.finished_at = _at(9)
    assert run.latest_update() == _at(9)


def test_latest_update_counts_node_starts_finishes_and_edge_traversals() -> None:
    running = NodeExecution(node_label="b", status="running", started_at=_at(5))
    done = NodeExecution(
        node_label="a",
        status="completed",
        started_at=_at(1),
        finished_at=_at(2),
        edges=[EdgeTraversal(downstream_label="b", traversed_at=_at(7))],
    )
    assert _run(a=done).latest_update() == _at(7)
    assert _run(b=running).latest_update() == _at(5)
    never_started = NodeExecution(node_label="c", status="pending")
    assert _run(c=never_started).latest_update() == T0


def test_nodes_changed_since_lists_nodes_started_or_finished_strictly_after() -> None:
    old = NodeExecution(node_label="old", status="completed", started_at=_at(1), finished_at=_at(2))
    finished_late = NodeExecution(
        node_label="late", status="completed", started_at=_at(1), finished_at=_at(6)
    )
    started_late = NodeExecution(node_label="new", status="running", started_at=_at(4))
    pending = NodeExecution(node_label="pending", status="pending")
    run = _run(old=old, late=finished_late, new=started_late, pending=pending)

    assert [n.node_label for n in run.nodes_changed_since(_at(3))] == ["late", "new"]
    assert run.nodes_changed_since(_at(2)) == [finished_late, started_late]
    assert run.nodes_changed_since(_at(6)) == []


def test_models_default_to_no_edges_no_sub_dags_and_no_payloads() -> None:
    first = NodeExecution(node_label="a", status="running")
    second = NodeExecution(node_label="b", status="running")
    first.edges.append(EdgeTraversal(downstream_label="x", traversed_at=T0))

    assert second.edges == []  # defaults are not shared between instances
    assert (first.sub_dags, first.io, first.is_source, first.is_sink) == (None, None, False, False)
    assert _run().io is None
    assert _run().nodes == {}


def test_a_run_tree_round_trips_through_json() -> None:
    child = _run(leaf=NodeExecution(node_label="leaf", status="completed"))
    child.run_id, child.parent_run_id = "c", "r"
    parent = _run(
        chunks=NodeExecution(
            node_label="chunks",
            status="completed",
            sub_dags={"chunks[0]": child},
            io=IoPayload(input_json="[1]", output_json="[2]"),
        )
    )

    again = DagRun.model_validate_json(parent.model_dump_json())

    assert again == parent
    assert again.started_at == T0
    assert again.nodes["chunks"].sub_dags is not None
    assert again.nodes["chunks"].sub_dags["chunks[0]"].parent_run_id == "r"
