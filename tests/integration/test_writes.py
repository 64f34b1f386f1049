"""Every write of DagProvenance, on every engine: what a caller reads back."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine

from dag_provenance import (
    DagProvenance,
    DuplicateEdgeError,
    DuplicateRunError,
    InvalidStatusError,
    NodeNotFoundError,
    NodeStatus,
    RunStatus,
    initiated_by,
)

from .conftest import CLOCK_START, Clock

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]


def _started_run(store: DagProvenance, run_id: str, nsref: str = "pkg.mod:dag") -> str:
    store.create_run(run_id, nsref, {"load": {"path": "in.csv"}})
    return run_id


def _node(store: DagProvenance, run_id: str, label: str) -> dict[str, object]:
    (node,) = [n for n in store.get_node_executions(run_id) if n["node_label"] == label]
    return node


# create_run


def test_create_run_records_a_running_run_with_its_source_inputs(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg.mod:etl", {"load": {"path": "in.csv", "rows": 3}})

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["run_id"] == run_id
    assert run["dag_nsref"] == "pkg.mod:etl"
    assert run["status"] == "running"
    assert run["parent_run_id"] is None
    assert run["finished_at"] is None
    assert run["sink_outputs_json"] is None
    assert json.loads(run["source_inputs_json"]) == {"load": {"path": "in.csv", "rows": 3}}


def test_create_run_links_a_child_run_to_its_parent(
    provenance: DagProvenance, new_id: NewId
) -> None:
    parent = _started_run(provenance, new_id("parent"), "pkg:dag")
    child = new_id("child")
    provenance.create_run(child, "pkg:dag/chunks[0]", {}, parent_run_id=parent)

    child_run = provenance.get_run(child)
    assert child_run is not None
    assert child_run["parent_run_id"] == parent


def test_create_run_serializes_source_inputs_it_cannot_encode_as_strings(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    when = datetime(2030, 1, 2, tzinfo=UTC)
    provenance.create_run(run_id, "pkg:dag", {"load": {"when": when}})

    run = provenance.get_run(run_id)
    assert run is not None
    assert json.loads(run["source_inputs_json"]) == {"load": {"when": str(when)}}


# run status


def test_update_run_status_changes_the_status_but_leaves_the_run_unfinished(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.update_run_status(run_id, "paused")

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["status"] == "paused"
    assert run["finished_at"] is None


def test_update_run_status_to_the_status_a_run_already_has_is_accepted(
    provenance: DagProvenance, new_id: NewId
) -> None:
    # MySQL reports 0 changed rows for such an update; that is not a missing run.
    run_id = _started_run(provenance, new_id("run"))
    provenance.update_run_status(run_id, "running")
    provenance.update_run_status(run_id, "running")

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["status"] == "running"


@pytest.mark.parametrize(
    "status",
    [RunStatus.PAUSED, "paused", NodeStatus.COMPLETED, "cancelled", RunStatus.FAILED],
    ids=["RunStatus", "str", "NodeStatus-with-a-run-value", "cancelled", "failed"],
)
def test_run_statuses_are_accepted_as_enums_or_strings(
    provenance: DagProvenance, new_id: NewId, status: str
) -> None:
    updated = _started_run(provenance, new_id("updated"))
    finished = _started_run(provenance, new_id("finished"))
    provenance.update_run_status(updated, status)
    provenance.finish_run(finished, status)

    for run_id in (updated, finished):
        run = provenance.get_run(run_id)
        assert run is not None
        assert run["status"] == str(status)
        assert type(run["status"]) is str


def test_finish_run_sets_the_final_status_finish_time_and_sink_outputs(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    clock.now = CLOCK_START + timedelta(minutes=5)
    provenance.finish_run(run_id, RunStatus.COMPLETED, sink_outputs_json='{"save": 3}')

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["status"] == "completed"
    assert run["finished_at"] == (CLOCK_START + timedelta(minutes=5)).timestamp()
    assert run["sink_outputs_json"] == '{"save": 3}'


def test_finish_run_without_sink_outputs_records_none(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.finish_run(run_id, "cancelled")

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["status"] == "cancelled"
    assert run["sink_outputs_json"] is None
    assert run["finished_at"] is not None


# nodes


def test_record_node_start_records_a_running_node_with_its_input_and_flags(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "load", '{"path": "in.csv"}', is_source=True)

    node = _node(provenance, run_id, "load")
    assert node["status"] == "running"
    assert node["input_json"] == '{"path": "in.csv"}'
    assert node["output_json"] is None
    assert node["is_source"] is True
    assert node["is_sink"] is False
    assert node["finished_at"] is None
    assert node["error"] is None


def test_restarting_a_completed_node_replaces_its_whole_row(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "load", '{"try": 1}', is_source=True, is_sink=True)
    provenance.complete_node_with_edges(run_id, "load", '"first output"', [])
    clock.advance(timedelta(hours=1))
    restarted_at = clock.now
    provenance.record_node_start(run_id, "load", '{"try": 2}')

    node = _node(provenance, run_id, "load")
    assert node == {
        "run_id": run_id,
        "node_label": "load",
        "status": "running",
        "is_source": False,
        "is_sink": False,
        "input_json": '{"try": 2}',
        "output_json": None,
        "started_at": restarted_at.timestamp(),
        "finished_at": None,
        "error": None,
    }
    assert provenance.get_node_output(run_id, "load") is None


def test_restarting_a_failed_node_clears_its_error(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "load", "{}")
    provenance.fail_node_and_finish_run(run_id, "load", "Traceback: boom")
    provenance.update_run_status(run_id, "running")
    provenance.record_node_start(run_id, "load", "{}")

    node = _node(provenance, run_id, "load")
    assert node["status"] == "running"
    assert node["error"] is None
    assert node["finished_at"] is None
    assert len(provenance.get_node_executions(run_id)) == 1


def test_record_node_skipped_records_a_finished_node_with_the_copied_output(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_skipped(run_id, "load", '{"rows": 3}')

    node = _node(provenance, run_id, "load")
    assert node["status"] == "skipped"
    assert node["output_json"] == '{"rows": 3}'
    assert node["input_json"] is None
    assert node["is_source"] is False
    assert node["is_sink"] is False
    assert node["started_at"] is not None
    assert node["finished_at"] == node["started_at"]
    assert provenance.get_node_output(run_id, "load") == '{"rows": 3}'


def test_record_node_skipped_replaces_an_earlier_start_of_the_node(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "load", '{"x": 1}', is_source=True)
    provenance.record_node_skipped(run_id, "load", '"copied"')

    node = _node(provenance, run_id, "load")
    assert (node["status"], node["input_json"], node["is_source"]) == ("skipped", None, False)
    assert node["output_json"] == '"copied"'


def test_complete_node_with_edges_records_the_output_and_every_edge(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "split", "{}", is_source=True)
    clock.now = CLOCK_START + timedelta(minutes=1)
    provenance.complete_node_with_edges(
        run_id, "split", "[1, 2]", [("split", "left"), ("split", "right")]
    )

    node = _node(provenance, run_id, "split")
    assert node["status"] == "completed"
    assert node["output_json"] == "[1, 2]"
    assert node["finished_at"] == (CLOCK_START + timedelta(minutes=1)).timestamp()
    assert node["error"] is None
    assert [
        (e["upstream_label"], e["downstream_label"], e["traversed_at"])
        for e in provenance.get_edge_traversals(run_id)
    ] == [
        ("split", "left", node["finished_at"]),
        ("split", "right", node["finished_at"]),
    ]


def test_complete_node_with_no_edges_records_only_the_output(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "save", "{}", is_sink=True)
    provenance.complete_node_with_edges(run_id, "save", '"done"', [])

    assert provenance.get_node_output(run_id, "save") == '"done"'
    assert provenance.get_edge_traversals(run_id) == []


def test_complete_node_with_edges_accepts_edges_as_lists_of_two(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [["a", "b"]])  # type: ignore[list-item]

    assert [e["downstream_label"] for e in provenance.get_edge_traversals(run_id)] == ["b"]


def test_fail_node_and_finish_run_marks_the_node_and_its_run_failed(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "load", "{}")
    clock.now = CLOCK_START + timedelta(minutes=2)
    provenance.fail_node_and_finish_run(run_id, "load", "Traceback (most recent call last): ...")

    node = _node(provenance, run_id, "load")
    run = provenance.get_run(run_id)
    assert run is not None
    assert node["status"] == "failed"
    assert node["error"] == "Traceback (most recent call last): ..."
    assert run["status"] == "failed"
    assert (
        run["finished_at"]
        == node["finished_at"]
        == (CLOCK_START + timedelta(minutes=2)).timestamp()
    )
    assert provenance.get_pending_nodes(run_id) == ["load"]


# batch()


def test_batch_commits_every_call_in_it_together(provenance: DagProvenance, new_id: NewId) -> None:
    run_id = new_id("run")
    with provenance.batch() as store:
        assert store is provenance
        store.create_run(run_id, "pkg:dag", {})
        store.record_node_start(run_id, "a", "{}")
        store.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
        store.finish_run(run_id, "completed")

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["status"] == "completed"
    assert provenance.get_node_output(run_id, "a") == "1"
    assert len(provenance.get_edge_traversals(run_id)) == 1


def test_batch_keeps_none_of_its_calls_when_the_block_raises(
    provenance: DagProvenance, new_id: NewId
) -> None:
    kept = _started_run(provenance, new_id("kept"))
    dropped = new_id("dropped")

    with pytest.raises(RuntimeError, match="caller gave up"), provenance.batch():
        provenance.create_run(dropped, "pkg:dag", {})
        provenance.record_node_start(kept, "a", "{}")
        provenance.update_run_status(kept, "paused")
        raise RuntimeError("caller gave up")

    assert provenance.get_run(dropped) is None
    assert provenance.get_node_executions(kept) == []
    run = provenance.get_run(kept)
    assert run is not None
    assert run["status"] == "running"


def test_a_refused_call_inside_a_batch_leaves_the_rest_of_the_batch_intact(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    with provenance.batch():
        provenance.create_run(run_id, "pkg:dag", {"x": 1})
        provenance.record_node_start(run_id, "a", "{}")
        provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
        with pytest.raises(DuplicateRunError):
            provenance.create_run(run_id, "pkg:other", {})
        with pytest.raises(NodeNotFoundError):
            provenance.complete_node_with_edges(run_id, "never-started", "2", [])
        with pytest.raises(DuplicateEdgeError):
            provenance.complete_node_with_edges(run_id, "a", "3", [("a", "c"), ("a", "b")])
        with pytest.raises(InvalidStatusError):
            provenance.update_run_status(run_id, "exploded")
        provenance.record_node_start(run_id, "b", "{}")

    run = provenance.get_run(run_id)
    assert run is not None
    assert (run["dag_nsref"], run["status"]) == ("pkg:dag", "running")
    assert provenance.get_node_output(run_id, "a") == "1"
    assert [e["downstream_label"] for e in provenance.get_edge_traversals(run_id)] == ["b"]
    assert [n["node_label"] for n in provenance.get_node_executions(run_id)] == ["a", "b"]


def test_reads_inside_a_batch_see_the_batch_s_own_writes(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    with provenance.batch():
        provenance.create_run(run_id, "pkg:dag", {})
        provenance.record_node_start(run_id, "a", "{}")
        inspected = provenance.inspect_run(run_id)
        assert inspected is not None
        assert list(inspected.nodes) == ["a"]


def test_other_threads_see_a_batch_s_writes_only_once_it_commits(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    seen_during: list[object] = []
    with provenance.batch():
        provenance.create_run(run_id, "pkg:dag", {})
        reader = threading.Thread(target=lambda: seen_during.append(provenance.get_run(run_id)))
        reader.start()
        reader.join()

    assert seen_during == [None]
    assert provenance.get_run(run_id) is not None


# initiator


def test_create_run_records_who_initiated_it(provenance: DagProvenance, new_id: NewId) -> None:
    run_id = new_id("run")
    user = new_id("usr")
    with initiated_by(user):
        provenance.create_run(run_id, "pkg:dag", {})

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["initiated_by"] == user
    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    assert inspected.initiated_by == user


def test_an_explicit_initiator_wins_over_the_context(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    with initiated_by("usr_context"):
        provenance.create_run(run_id, "pkg:dag", {}, initiator="cli:alice")

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["initiated_by"] == "cli:alice"


def test_runs_outside_initiated_by_record_no_initiator(
    provenance: DagProvenance, new_id: NewId
) -> None:
    inside, after, cleared = new_id("inside"), new_id("after"), new_id("cleared")
    with initiated_by("usr_outer"):
        provenance.create_run(inside, "pkg:dag", {})
        with initiated_by(None):
            provenance.create_run(cleared, "pkg:dag", {})
    provenance.create_run(after, "pkg:dag", {})

    initiators = {
        r: (provenance.get_run(r) or {})["initiated_by"] for r in (inside, after, cleared)
    }
    assert initiators == {inside: "usr_outer", after: None, cleared: None}


def test_a_store_given_its_own_initiator_variable_reads_that_one(
    provenance: DagProvenance, new_id: NewId
) -> None:
    host_var: ContextVar[str | None] = ContextVar(new_id("host_initiator"), default=None)
    store = DagProvenance(provenance.engine, initiator_var=host_var)
    from_host, from_library = new_id("host"), new_id("library")

    token = host_var.set("usr_host")
    try:
        with initiated_by("usr_library"):
            store.create_run(from_host, "pkg:dag", {})
    finally:
        host_var.reset(token)
    with initiated_by("usr_library"):
        store.create_run(from_library, "pkg:dag", {})

    assert (store.get_run(from_host) or {})["initiated_by"] == "usr_host"
    assert (store.get_run(from_library) or {})["initiated_by"] is None


# timestamps


def test_timestamps_keep_their_microseconds_on_every_engine(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    clock.step = timedelta(microseconds=1)
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
    provenance.finish_run(run_id, "completed")

    expected = [CLOCK_START + timedelta(microseconds=i) for i in range(4)]
    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    node = inspected.nodes["a"]
    assert [
        inspected.started_at,
        node.started_at,
        node.finished_at,
        inspected.finished_at,
    ] == expected
    assert node.edges[0].traversed_at == expected[2]
    run = provenance.get_run(run_id)
    assert run is not None
    assert datetime.fromtimestamp(run["started_at"], UTC) == expected[0]
    assert datetime.fromtimestamp(run["finished_at"], UTC) == expected[3]


SESSION_IN_ANOTHER_ZONE: dict[str, dict[str, Any]] = {
    "postgresql": {"options": "-c timezone=America/New_York"},
    "mysql": {"init_command": "SET time_zone = '+05:30'"},
}


def test_a_caller_s_engine_whose_session_is_in_another_time_zone_reads_the_same_instants(
    engine_name: str, empty_db_url: str, new_id: NewId, clock: Clock
) -> None:
    if engine_name == "sqlite":
        pytest.skip("SQLite sessions have no time zone")
    engine = create_engine(empty_db_url, connect_args=SESSION_IN_ANOTHER_ZONE[engine_name])
    try:
        store = DagProvenance(engine)
        run_id = _started_run(store, new_id("run"))
        provenance_utc = DagProvenance(empty_db_url)
        try:
            for reader in (store, provenance_utc):
                inspected = reader.inspect_run(run_id)
                assert inspected is not None
                assert inspected.started_at == CLOCK_START
                assert inspected.started_at.utcoffset() == timedelta(0)
                assert (reader.get_run(run_id) or {})["started_at"] == CLOCK_START.timestamp()
                after = CLOCK_START - timedelta(microseconds=1)
                assert [r.run_id for r in reader.get_recent_runs(started_after=after)] == [run_id]
        finally:
            provenance_utc.close()
    finally:
        engine.dispose()


def test_inspection_models_carry_timezone_aware_utc_datetimes(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
    provenance.finish_run(run_id, "completed")

    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    node = inspected.nodes["a"]
    stamps = [
        inspected.started_at,
        inspected.finished_at,
        node.started_at,
        node.finished_at,
        node.edges[0].traversed_at,
    ]
    for stamp in stamps:
        assert stamp is not None
        assert stamp.utcoffset() == timedelta(0)
    # The real clock was used: the run started within the last day, not hours off.
    assert abs(datetime.now(UTC) - inspected.started_at) < timedelta(days=1)


def test_get_run_and_get_node_executions_give_epoch_float_timestamps(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "a", "{}")

    run = provenance.get_run(run_id)
    assert run is not None
    assert isinstance(run["started_at"], float)
    assert run["started_at"] == CLOCK_START.timestamp()
    (node,) = provenance.get_node_executions(run_id)
    assert isinstance(node["started_at"], float)
    assert node["started_at"] == (CLOCK_START + timedelta(seconds=1)).timestamp()


# payloads


SIXTEEN_MIB = 16 * 1024 * 1024


def _sixteen_mib_of_json() -> str:
    # Mixed one-, two-, three- and four-byte characters: exactly 16 MiB of UTF-8.
    unit = 'a\u00e9\u20ac\U0001f600"\\'
    quoted = json.dumps(unit, ensure_ascii=False)[1:-1]
    chunk = quoted * 1024
    body_bytes = SIXTEEN_MIB - 2
    repeat, rest = divmod(body_bytes, len(chunk.encode()))
    text = '"' + chunk * repeat + "x" * rest + '"'
    assert len(text.encode()) == SIXTEEN_MIB
    return text


def test_a_16_mib_output_round_trips_byte_for_byte(
    provenance: DagProvenance, new_id: NewId
) -> None:
    # On MariaDB this needs max_allowed_packet above 16 MiB (.ci/run raises it).
    big = _sixteen_mib_of_json()
    run_id = _started_run(provenance, new_id("run"))
    provenance.record_node_start(run_id, "big", "{}")
    provenance.complete_node_with_edges(run_id, "big", big, [])

    stored = provenance.get_node_output(run_id, "big")
    assert stored is not None
    assert stored.encode() == big.encode()


def test_unicode_payloads_round_trip_exactly(provenance: DagProvenance, new_id: NewId) -> None:
    run_id = new_id("run")
    inputs = {"load": {"text": "caf\u00e9 \U0001f600 \u4e2d\u6587", "nul": "a\x00b"}}
    provenance.create_run(run_id, "pkg:dag", inputs)
    provenance.record_node_start(run_id, "a", '{"t": "\U0001f680 \u00df"}')
    provenance.complete_node_with_edges(
        run_id, "a", '"\u0627\u0644\u0639\u0631\u0628\u064a\u0629"', []
    )

    run = provenance.get_run(run_id)
    assert run is not None
    assert json.loads(run["source_inputs_json"]) == inputs
    (node,) = provenance.get_node_executions(run_id)
    assert node["input_json"] == '{"t": "\U0001f680 \u00df"}'
    assert node["output_json"] == '"\u0627\u0644\u0639\u0631\u0628\u064a\u0629"'


def test_a_refused_write_leaves_nothing_in_the_logs(
    provenance: DagProvenance, new_id: NewId, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused call is an answer, not an incident: no driver warning about it
    (psycopg logs one when a refused statement aborts a pipeline left carelessly)."""
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b"), ("a", "c")])
    with caplog.at_level(logging.WARNING):
        with pytest.raises(DuplicateEdgeError):
            provenance.complete_node_with_edges(run_id, "a", "2", [("a", "b")])
        with pytest.raises(DuplicateRunError):
            provenance.create_run(run_id, "pkg:dag", {})
        with pytest.raises(NodeNotFoundError):
            provenance.fail_node_and_finish_run(run_id, "never-started", "boom")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert provenance.get_node_output(run_id, "a") == "1"
