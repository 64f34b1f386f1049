"""A live view reads only what changed and ends up showing what inspect_run shows."""

from __future__ import annotations

import uuid

import pytest

from dag_provenance import DagProvenance

pytestmark = pytest.mark.both_stores


def _dump(run: object) -> object:
    return run.model_dump() if run is not None else None  # type: ignore[attr-defined]


def test_applying_changes_since_the_last_update_matches_a_fresh_inspection(
    provenance: DagProvenance,
) -> None:
    run_id = f"live-{uuid.uuid4().hex[:8]}"
    provenance.create_run(run_id, "live:dag", {})
    provenance.record_node_start(run_id, "a", "{}", is_source=True)
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "m"), ("a", "b")])
    provenance.record_node_start(run_id, "m", "{}")
    shown = provenance.inspect_run(run_id)
    assert shown is not None

    # While shown: a sub-DAG run appears under the running composite node m,
    # progresses, m completes, b fails and the run is marked failed.
    child = f"{run_id}-m0"
    provenance.create_run(child, "live:dag/m[0]", {}, parent_run_id=run_id)
    provenance.record_node_start(child, "inner", "{}")
    first = provenance.changes_since(run_id, shown.latest_update())
    assert set(first) == {run_id, child}
    assert set(first[run_id].nodes) == set()  # nothing of the run's own nodes changed
    shown.apply_changes(first)
    assert shown.nodes["m"].sub_dags is not None
    assert shown.nodes["m"].sub_dags["m[0]"].nodes["inner"].status == "running"

    since = shown.latest_update()
    provenance.complete_node_with_edges(child, "inner", "2", [])
    provenance.finish_run(child, "completed", "2")
    provenance.complete_node_with_edges(run_id, "m", "[2]", [("m", "b")])
    provenance.record_node_start(run_id, "b", "{}", is_sink=True)
    provenance.fail_node_and_finish_run(run_id, "b", "boom")
    second = provenance.changes_since(run_id, since)
    assert set(second[run_id].nodes) == {"m", "b"}  # a was not read again
    shown.apply_changes(second)

    assert _dump(shown) == _dump(provenance.inspect_run(run_id))


def test_changes_since_of_an_unknown_run_is_empty(provenance: DagProvenance) -> None:
    from datetime import UTC, datetime

    assert provenance.changes_since(f"missing-{uuid.uuid4().hex}", datetime.now(UTC)) == {}
