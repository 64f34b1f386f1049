"""The plain reads (dicts, as lythonic returns them), run listings with their
filters and paging, exact identifier matching and the ways to open a store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, insert, text
from sqlalchemy.pool import QueuePool

from dag_provenance import DagProvenance, DagRun, NodeStatus, RunStatus
from dag_provenance.engine import make_engine
from dag_provenance.orm import node_executions

from .conftest import CLOCK_START, Clock

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]

RUN_KEYS = {
    "run_id",
    "dag_nsref",
    "parent_run_id",
    "status",
    "started_at",
    "finished_at",
    "source_inputs_json",
    "sink_outputs_json",
    "initiated_by",
}
NODE_KEYS = {
    "run_id",
    "node_label",
    "status",
    "is_source",
    "is_sink",
    "input_json",
    "output_json",
    "started_at",
    "finished_at",
    "error",
}


def _ids(runs: list[DagRun]) -> list[str]:
    return [r.run_id for r in runs]


# get_run / get_node_executions / get_node_output / get_pending_nodes / edges


def test_get_run_returns_lythonic_s_dict_with_epoch_float_timestamps(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {"a": {"n": 1}}, initiator="usr_1")
    provenance.finish_run(run_id, "completed", '{"z": 2}')

    assert provenance.get_run(run_id) == {
        "run_id": run_id,
        "dag_nsref": "pkg:dag",
        "parent_run_id": None,
        "status": "completed",
        "started_at": CLOCK_START.timestamp(),
        "finished_at": (CLOCK_START + timedelta(seconds=1)).timestamp(),
        "source_inputs_json": '{"a": {"n": 1}}',
        "sink_outputs_json": '{"z": 2}',
        "initiated_by": "usr_1",
    }


def test_get_run_of_an_unknown_run_is_none(provenance: DagProvenance, new_id: NewId) -> None:
    provenance.create_run(new_id("other"), "pkg:dag", {})
    assert provenance.get_run(new_id("missing")) is None


def test_get_node_executions_lists_a_run_s_nodes_in_start_order(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id, other = new_id("run"), new_id("other")
    provenance.create_run(run_id, "pkg:dag", {})
    provenance.create_run(other, "pkg:dag", {})
    for label in ("zeta", "alpha", "mid"):
        provenance.record_node_start(run_id, label, f'"{label} in"')
    provenance.record_node_start(other, "elsewhere", "{}")
    provenance.complete_node_with_edges(run_id, "zeta", '"zeta out"', [])

    nodes = provenance.get_node_executions(run_id)

    assert [n["node_label"] for n in nodes] == ["zeta", "alpha", "mid"]
    assert all(set(n) == NODE_KEYS for n in nodes)
    assert all(n["run_id"] == run_id for n in nodes)
    assert [n["input_json"] for n in nodes] == ['"zeta in"', '"alpha in"', '"mid in"']
    assert nodes[0]["output_json"] == '"zeta out"'
    assert all(isinstance(n["started_at"], float) for n in nodes)
    assert provenance.get_node_executions(new_id("missing")) == []


def test_nodes_started_at_the_same_instant_are_listed_by_label(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    clock.step = timedelta(0)
    for label in ("c", "a", "b"):
        provenance.record_node_start(run_id, label, "{}")

    assert [n["node_label"] for n in provenance.get_node_executions(run_id)] == ["a", "b", "c"]
    assert provenance.get_pending_nodes(run_id) == ["a", "b", "c"]


def test_get_node_output_answers_only_for_completed_or_skipped_nodes(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    provenance.record_node_start(run_id, "done", "{}")
    provenance.complete_node_with_edges(run_id, "done", '"done out"', [])
    provenance.record_node_skipped(run_id, "copied", '"copied out"')
    provenance.record_node_start(run_id, "busy", "{}")
    provenance.record_node_start(run_id, "broken", "{}")
    provenance.fail_node_and_finish_run(run_id, "broken", "boom")

    outputs = {
        label: provenance.get_node_output(run_id, label)
        for label in ("done", "copied", "busy", "broken", "never")
    }
    assert outputs == {
        "done": '"done out"',
        "copied": '"copied out"',
        "busy": None,
        "broken": None,
        "never": None,
    }
    assert provenance.get_node_output(new_id("missing"), "done") is None


def test_get_pending_nodes_lists_running_and_failed_nodes_in_start_order(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    provenance.record_node_start(run_id, "z-failed", "{}")
    provenance.record_node_start(run_id, "done", "{}")
    provenance.record_node_skipped(run_id, "copied", "1")
    provenance.record_node_start(run_id, "a-running", "{}")
    provenance.complete_node_with_edges(run_id, "done", "1", [])
    provenance.fail_node_and_finish_run(run_id, "z-failed", "boom")

    assert provenance.get_pending_nodes(run_id) == ["z-failed", "a-running"]
    assert provenance.get_pending_nodes(new_id("missing")) == []


def test_get_edge_traversals_lists_edges_in_traversal_order(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    for label in ("z", "m", "a"):
        provenance.record_node_start(run_id, label, "{}")
    provenance.complete_node_with_edges(run_id, "z", "1", [("z", "y"), ("z", "b")])
    provenance.complete_node_with_edges(run_id, "m", "1", [("m", "c")])
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "d")])

    edges = provenance.get_edge_traversals(run_id)

    # Time first; edges written together (one instant) by their labels.
    assert [(e["upstream_label"], e["downstream_label"]) for e in edges] == [
        ("z", "b"),
        ("z", "y"),
        ("m", "c"),
        ("a", "d"),
    ]
    assert all(
        set(e) == {"run_id", "upstream_label", "downstream_label", "traversed_at"} for e in edges
    )
    assert [e["traversed_at"] for e in edges] == sorted(e["traversed_at"] for e in edges)
    assert all(e["run_id"] == run_id for e in edges)
    assert provenance.get_edge_traversals(new_id("missing")) == []


# get_recent_runs / get_active_runs


def test_get_recent_runs_lists_newest_first_up_to_the_limit(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    runs = [new_id(f"run{i}") for i in range(5)]
    for run_id in runs:
        provenance.create_run(run_id, "pkg:dag", {})

    assert _ids(provenance.get_recent_runs()) == runs[::-1]
    assert _ids(provenance.get_recent_runs(limit=2)) == [runs[4], runs[3]]
    assert provenance.get_recent_runs(limit=0) == []


def test_runs_started_at_the_same_instant_are_listed_by_run_id_descending(
    provenance: DagProvenance, clock: Clock, new_id: NewId
) -> None:
    clock.step = timedelta(0)
    stem = new_id("tie")
    for suffix in ("b", "c", "a"):
        provenance.create_run(f"{stem}-{suffix}", "pkg:dag", {})

    assert _ids(provenance.get_recent_runs()) == [f"{stem}-c", f"{stem}-b", f"{stem}-a"]


def test_get_recent_runs_filters_by_one_status_or_several(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    by_status: dict[str, str] = {}
    for status in ("running", "paused", "completed", "failed", "cancelled"):
        run_id = by_status[status] = new_id(status)
        provenance.create_run(run_id, "pkg:dag", {})
        if status != "running":
            provenance.update_run_status(run_id, status)

    assert _ids(provenance.get_recent_runs(status="failed")) == [by_status["failed"]]
    assert _ids(provenance.get_recent_runs(10, "failed")) == [by_status["failed"]]
    assert _ids(provenance.get_recent_runs(status=RunStatus.PAUSED)) == [by_status["paused"]]
    assert _ids(provenance.get_recent_runs(statuses=["running", NodeStatus.COMPLETED])) == [
        by_status["completed"],
        by_status["running"],
    ]
    assert _ids(provenance.get_recent_runs(statuses={RunStatus.CANCELLED})) == [
        by_status["cancelled"]
    ]
    assert provenance.get_recent_runs(statuses=[]) == []
    assert len(provenance.get_recent_runs(status="")) == 5
    assert provenance.get_recent_runs(status="failed")[0].status == "failed"


def test_get_recent_runs_filters_by_exact_dag_nsref(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref = new_id("pkg.mod") + ":etl"
    mine = [new_id("mine"), new_id("mine")]
    provenance.create_run(mine[0], nsref, {})
    provenance.create_run(new_id("child"), nsref + "/chunks[0]", {})
    provenance.create_run(new_id("upper"), nsref.upper(), {})
    provenance.create_run(mine[1], nsref, {})
    provenance.create_run(new_id("other"), "pkg:other", {})

    assert _ids(provenance.get_recent_runs(dag_nsref=nsref)) == mine[::-1]


def test_get_recent_runs_filters_by_a_start_window(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    runs = [new_id(f"run{i}") for i in range(5)]  # started at START + 0s, 1s, ... 4s
    for run_id in runs:
        provenance.create_run(run_id, "pkg:dag", {})

    after_1s = CLOCK_START + timedelta(seconds=1)
    before_3s = CLOCK_START + timedelta(seconds=3)
    assert _ids(provenance.get_recent_runs(started_after=after_1s)) == runs[:0:-1]
    assert _ids(provenance.get_recent_runs(started_before=before_3s)) == runs[2::-1]
    assert _ids(provenance.get_recent_runs(started_after=after_1s, started_before=before_3s)) == [
        runs[2],
        runs[1],
    ]
    # The same instants given in another time zone select the same runs.
    plus_five = timezone(timedelta(hours=5))
    assert _ids(
        provenance.get_recent_runs(
            started_after=after_1s.astimezone(plus_five),
            started_before=before_3s.astimezone(plus_five),
        )
    ) == [runs[2], runs[1]]
    # A microsecond later excludes the run that started at the bound.
    assert (
        _ids(provenance.get_recent_runs(started_after=after_1s + timedelta(microseconds=1)))
        == runs[:1:-1]
    )


def test_filters_combine(provenance: DagProvenance, new_id: NewId, clock: Clock) -> None:
    nsref = new_id("pkg") + ":dag"
    wanted = new_id("wanted")
    provenance.create_run(new_id("early"), nsref, {})
    provenance.create_run(wanted, nsref, {})
    provenance.create_run(new_id("other-dag"), "pkg:other", {})
    provenance.create_run(new_id("paused"), nsref, {})
    provenance.update_run_status(wanted, "failed")

    found = provenance.get_recent_runs(
        statuses=["failed", "completed"],
        dag_nsref=nsref,
        started_after=CLOCK_START + timedelta(seconds=1),
    )
    assert _ids(found) == [wanted]


def test_keyset_paging_walks_every_run_once_while_new_runs_arrive(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    stem = new_id("page")
    existing = [f"{stem}-{i:02d}" for i in range(8)]
    for i, run_id in enumerate(existing):
        # Runs 3, 4 and 5 start at the same instant: paging must split ties by run_id.
        clock.step = timedelta(0) if i in (3, 4) else timedelta(seconds=1)
        provenance.create_run(run_id, "pkg:dag", {})

    seen: list[str] = []
    page = provenance.get_recent_runs(limit=3)
    while page:
        seen.extend(_ids(page))
        provenance.create_run(new_id("newer"), "pkg:dag", {})  # arrives mid-walk
        last = page[-1]
        page = provenance.get_recent_runs(limit=3, after=(last.started_at, last.run_id))

    assert seen == existing[::-1]


def test_a_cursor_given_in_another_time_zone_pages_the_same(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    runs = [new_id(f"run{i}") for i in range(4)]
    for run_id in runs:
        provenance.create_run(run_id, "pkg:dag", {})
    (newest,) = provenance.get_recent_runs(limit=1)

    minus_seven = timezone(timedelta(hours=-7))
    cursor = (newest.started_at.astimezone(minus_seven), newest.run_id)
    assert _ids(provenance.get_recent_runs(after=cursor)) == runs[2::-1]


def test_keyset_paging_combines_with_filters(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    failed = []
    for i in range(6):
        run_id = new_id(f"run{i}")
        provenance.create_run(run_id, "pkg:dag", {})
        if i % 2:
            provenance.update_run_status(run_id, "failed")
            failed.append(run_id)

    first = provenance.get_recent_runs(limit=2, status="failed")
    rest = provenance.get_recent_runs(
        limit=2, status="failed", after=(first[-1].started_at, first[-1].run_id)
    )
    assert _ids(first) + _ids(rest) == failed[::-1]


def test_get_active_runs_lists_only_running_runs_newest_first(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    running = [new_id("running"), new_id("running")]
    provenance.create_run(running[0], "pkg:dag", {})
    paused = new_id("paused")
    provenance.create_run(paused, "pkg:dag", {})
    provenance.update_run_status(paused, "paused")
    done = new_id("done")
    provenance.create_run(done, "pkg:dag", {})
    provenance.finish_run(done, "completed")
    provenance.create_run(running[1], "pkg:dag", {})

    active = provenance.get_active_runs()
    assert _ids(active) == running[::-1]
    assert all(r.status == "running" for r in active)


def test_get_active_runs_lists_at_most_a_hundred(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    stem = new_id("run")
    with provenance.batch():
        for i in range(101):
            provenance.create_run(f"{stem}-{i:03d}", "pkg:dag", {})

    active = provenance.get_active_runs()
    assert len(active) == 100
    assert active[0].run_id == f"{stem}-100"
    assert active[-1].run_id == f"{stem}-001"


# Identifiers are compared exactly

LOOKALIKES = ["abc", "ABC", "abc ", " abc", "stra\u00dfe", "strasse", "caf\u00e9", "cafe\u0301"]


def test_run_ids_differing_only_in_case_spaces_or_normalization_are_different_runs(
    provenance: DagProvenance, new_id: NewId
) -> None:
    stem = new_id("x")
    for i, run_id in enumerate(LOOKALIKES):
        provenance.create_run(stem + run_id, f"pkg:dag{i}", {})

    for i, run_id in enumerate(LOOKALIKES):
        run = provenance.get_run(stem + run_id)
        assert run is not None
        assert (run["run_id"], run["dag_nsref"]) == (stem + run_id, f"pkg:dag{i}")
    assert len(provenance.get_recent_runs(limit=100)) == len(LOOKALIKES)


def test_the_three_ids_abc_ABC_and_abc_space_are_three_runs(provenance: DagProvenance) -> None:
    for run_id in ("abc", "ABC", "abc "):
        provenance.create_run(run_id, f"pkg:{run_id.strip()}{len(run_id)}", {})

    assert (provenance.get_run("abc") or {})["dag_nsref"] == "pkg:abc3"
    assert (provenance.get_run("ABC") or {})["dag_nsref"] == "pkg:ABC3"
    assert (provenance.get_run("abc ") or {})["dag_nsref"] == "pkg:abc4"
    assert provenance.get_run("Abc") is None


def test_node_labels_differing_only_in_case_or_spaces_are_different_nodes(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, "pkg:dag", {})
    for label in LOOKALIKES:
        provenance.record_node_start(run_id, label, "{}")
        provenance.complete_node_with_edges(run_id, label, f'"{label}"', [(label, label + "!")])

    assert sorted(n["node_label"] for n in provenance.get_node_executions(run_id)) == sorted(
        LOOKALIKES
    )
    for label in LOOKALIKES:
        assert provenance.get_node_output(run_id, label) == f'"{label}"'
    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    assert {
        label: [e.downstream_label for e in n.edges] for label, n in inspected.nodes.items()
    } == {label: [label + "!"] for label in LOOKALIKES}


# Opening a store


def test_a_sqlite_store_enforces_foreign_keys(tmp_path: Path, new_id: NewId) -> None:
    with DagProvenance(tmp_path / "fk.db") as store:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with pytest.raises(exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(
                insert(node_executions).values(
                    run_id=new_id("no-such-run"),
                    node_label="a",
                    status="running",
                    started_at=CLOCK_START,
                )
            )


@pytest.mark.parametrize("as_type", [Path, str], ids=["Path", "str"])
def test_a_sqlite_path_opens_a_file_creating_missing_folders(
    tmp_path: Path, new_id: NewId, as_type: type
) -> None:
    file = tmp_path / "not" / "yet" / "there" / "provenance.db"
    run_id = new_id("run")
    with DagProvenance(as_type(file)) as store:
        store.create_run(run_id, "pkg:dag", {})
        assert store.db_path == file

    assert file.is_file()
    with DagProvenance(as_type(file)) as reopened:
        assert reopened.get_run(run_id) is not None


def test_a_url_string_opens_the_store(empty_db_url: str, new_id: NewId) -> None:
    run_id = new_id("run")
    with DagProvenance(empty_db_url) as store:
        store.create_run(run_id, "pkg:dag", {})

    with DagProvenance(empty_db_url) as reopened:
        assert (reopened.get_run(run_id) or {})["run_id"] == run_id


def test_an_engine_is_used_as_given_and_left_open(empty_engine: Engine, new_id: NewId) -> None:
    run_id = new_id("run")
    pool = empty_engine.pool
    with DagProvenance(empty_engine) as store:
        assert store.engine is empty_engine
        store.create_run(run_id, "pkg:dag", {})
    # Closing the store did not dispose of the caller's pooled connections.
    assert empty_engine.pool is pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedin() >= 1
    assert DagProvenance(empty_engine).get_run(run_id) is not None


def test_a_read_leaves_no_snapshot_behind_on_its_pooled_connection(
    provenance: DagProvenance, new_id: NewId
) -> None:
    """Each read sees what was committed before it, though its pooled
    connection served an earlier read (whose snapshot must have ended)."""
    run_id = new_id("run")
    other = make_engine(provenance.engine.url.render_as_string(hide_password=False))
    try:
        writer = DagProvenance(other)

        def statuses() -> tuple[object, object]:
            record, run = provenance.get_run(run_id), provenance.inspect_run(run_id)
            return (record or {}).get("status"), (run.status if run else None)

        assert statuses() == (None, None)
        writer.create_run(run_id, "tests:fresh", {})
        assert statuses() == ("running", "running")
        writer.finish_run(run_id, "completed")
        assert statuses() == ("completed", "completed")
    finally:
        other.dispose()
