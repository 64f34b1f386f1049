"""Refused calls, on every engine: the right error, a message naming the
culprit, and a database exactly as it was before the call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from dag_provenance import (
    ConflictError,
    DagProvenance,
    DuplicateEdgeError,
    DuplicateRunError,
    IdentifierTooLongError,
    InvalidInputError,
    InvalidStatusError,
    NodeNotFoundError,
    NotFoundError,
    ProvenanceError,
    RunNotFoundError,
)
from dag_provenance.orm import DAG_NSREF_MAX, INITIATOR_MAX, NODE_LABEL_MAX, RUN_ID_MAX

from .conftest import Refused, check_each

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]
Call = Callable[[DagProvenance, str], object]

ALL_RUN_STATUSES = ("running", "paused", "completed", "failed", "cancelled")


def _run_with_node(store: DagProvenance, run_id: str, label: str = "a") -> str:
    store.create_run(run_id, "pkg:dag", {"a": {"x": 1}})
    store.record_node_start(run_id, label, "{}", is_source=True)
    return run_id


# Unknown runs and nodes

WRITES_ON_A_RUN: dict[str, Call] = {
    "update_run_status": lambda s, r: s.update_run_status(r, "paused"),
    "finish_run": lambda s, r: s.finish_run(r, "completed", '{"b": 1}'),
    "record_node_start": lambda s, r: s.record_node_start(r, "a", "{}"),
    "record_node_skipped": lambda s, r: s.record_node_skipped(r, "a", "1"),
    "complete_node_with_edges": lambda s, r: s.complete_node_with_edges(r, "a", "1", [("a", "b")]),
    "fail_node_and_finish_run": lambda s, r: s.fail_node_and_finish_run(r, "a", "boom"),
}


@pytest.mark.parametrize("write", WRITES_ON_A_RUN.values(), ids=WRITES_ON_A_RUN.keys())
def test_a_write_on_an_unknown_run_raises_run_not_found_naming_it(
    provenance: DagProvenance, new_id: NewId, refused: Refused, write: Call
) -> None:
    _run_with_node(provenance, new_id("other"))
    missing = new_id("missing")

    with refused(RunNotFoundError) as info:
        write(provenance, missing)

    assert missing in str(info.value)
    assert info.value.run_id == missing
    assert isinstance(info.value, NotFoundError | LookupError | ProvenanceError)


def test_creating_a_run_twice_raises_duplicate_run_and_leaves_the_first_untouched(
    provenance: DagProvenance, new_id: NewId, refused: Refused
) -> None:
    run_id = _run_with_node(provenance, new_id("run"))
    first = provenance.get_run(run_id)

    with refused(DuplicateRunError) as info:
        provenance.create_run(run_id, "pkg:another", {"other": {}}, initiator="usr_2")

    assert run_id in str(info.value)
    assert isinstance(info.value, ConflictError)
    assert provenance.get_run(run_id) == first


def test_a_child_of_an_unknown_parent_is_refused_naming_the_parent(
    provenance: DagProvenance, new_id: NewId, refused: Refused
) -> None:
    parent, child = new_id("parent"), new_id("child")

    with refused(RunNotFoundError) as info:
        provenance.create_run(child, "pkg:dag/x[]", {}, parent_run_id=parent)

    assert parent in str(info.value)
    assert "parent" in str(info.value)
    assert info.value.run_id == parent
    assert provenance.get_run(child) is None


@pytest.mark.parametrize(
    "write",
    [
        lambda s, r: s.complete_node_with_edges(r, "never", "1", []),
        lambda s, r: s.fail_node_and_finish_run(r, "never", "boom"),
    ],
    ids=["complete_node_with_edges", "fail_node_and_finish_run"],
)
def test_finishing_a_node_that_never_started_raises_node_not_found(
    provenance: DagProvenance, new_id: NewId, refused: Refused, write: Call
) -> None:
    run_id = _run_with_node(provenance, new_id("run"))

    with refused(NodeNotFoundError) as info:
        write(provenance, run_id)

    assert "never" in str(info.value)
    assert run_id in str(info.value)
    assert (info.value.run_id, info.value.node_label) == (run_id, "never")


def test_fail_node_and_finish_run_on_an_unknown_node_leaves_the_run_status_unchanged(
    provenance: DagProvenance, new_id: NewId, refused: Refused
) -> None:
    run_id = _run_with_node(provenance, new_id("run"))
    provenance.update_run_status(run_id, "paused")

    with refused(NodeNotFoundError):
        provenance.fail_node_and_finish_run(run_id, "ghost", "boom")

    run = provenance.get_run(run_id)
    assert run is not None
    assert (run["status"], run["finished_at"]) == ("paused", None)


# Duplicate edges: atomic refusals


def test_a_duplicate_edge_within_one_call_leaves_the_node_uncompleted_and_no_edges(
    provenance: DagProvenance, new_id: NewId, refused: Refused
) -> None:
    run_id = _run_with_node(provenance, new_id("run"))

    with refused(DuplicateEdgeError) as info:
        provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b"), ("a", "c"), ("a", "b")])

    assert "'a' -> 'b'" in str(info.value)
    assert run_id in str(info.value)
    assert provenance.get_node_output(run_id, "a") is None
    assert provenance.get_pending_nodes(run_id) == ["a"]
    assert provenance.get_edge_traversals(run_id) == []


def test_an_edge_recorded_by_an_earlier_call_is_a_duplicate(
    provenance: DagProvenance, new_id: NewId, refused: Refused
) -> None:
    run_id = _run_with_node(provenance, new_id("run"))
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
    provenance.record_node_start(run_id, "a", "{}")

    with refused(DuplicateEdgeError, match="'a' -> 'b'"):
        provenance.complete_node_with_edges(run_id, "a", "2", [("a", "c"), ("a", "b")])

    assert provenance.get_node_output(run_id, "a") is None
    assert [e["downstream_label"] for e in provenance.get_edge_traversals(run_id)] == ["b"]


def test_the_same_edge_in_two_runs_is_not_a_duplicate(
    provenance: DagProvenance, new_id: NewId
) -> None:
    first = _run_with_node(provenance, new_id("first"))
    second = _run_with_node(provenance, new_id("second"))
    provenance.complete_node_with_edges(first, "a", "1", [("a", "b")])
    provenance.complete_node_with_edges(second, "a", "1", [("a", "b")])

    assert len(provenance.get_edge_traversals(first)) == 1
    assert len(provenance.get_edge_traversals(second)) == 1


# Identifier lengths

TOO_LONG: dict[str, tuple[int, Call]] = {
    "run_id": (RUN_ID_MAX, lambda s, v: s.create_run(v, "pkg:dag", {})),
    "dag_nsref": (DAG_NSREF_MAX, lambda s, v: s.create_run("r-nsref", v, {})),
    "parent_run_id": (
        RUN_ID_MAX,
        lambda s, v: s.create_run("r-parent", "pkg:dag", {}, parent_run_id=v),
    ),
    "initiator": (INITIATOR_MAX, lambda s, v: s.create_run("r-init", "pkg:dag", {}, initiator=v)),
    "node_label": (NODE_LABEL_MAX, lambda s, v: s.record_node_start("existing", v, "{}")),
    "skipped node_label": (NODE_LABEL_MAX, lambda s, v: s.record_node_skipped("existing", v, "1")),
    "edges[0] downstream label": (
        NODE_LABEL_MAX,
        lambda s, v: s.complete_node_with_edges("existing", "a", "1", [("a", v)]),
    ),
    "edges[0] upstream label": (
        NODE_LABEL_MAX,
        lambda s, v: s.complete_node_with_edges("existing", "a", "1", [(v, "b")]),
    ),
    "run_id of update_run_status": (RUN_ID_MAX, lambda s, v: s.update_run_status(v, "paused")),
    "run_id of finish_run": (RUN_ID_MAX, lambda s, v: s.finish_run(v, "failed")),
}


@pytest.mark.parametrize("char", ["x", "\U0001f600"], ids=["ascii", "emoji"])
def test_an_identifier_one_character_over_its_limit_is_refused(
    provenance: DagProvenance, refused: Refused, char: str
) -> None:
    _run_with_node(provenance, "existing")

    def check(case: tuple[int, Call]) -> None:
        limit, write = case
        with refused(IdentifierTooLongError) as info:
            write(provenance, char * (limit + 1))
        assert f"maximum is {limit}" in str(info.value)
        assert isinstance(info.value, InvalidInputError)
        assert isinstance(info.value, ValueError)

    check_each(TOO_LONG, check)


@pytest.mark.parametrize("char", ["x", "\U0001f600"], ids=["ascii", "emoji"])
def test_identifiers_exactly_at_their_limits_are_stored_intact(
    provenance: DagProvenance, char: str
) -> None:
    run_id = char * RUN_ID_MAX
    child_id = char * (RUN_ID_MAX - 1) + "c"
    nsref = char * DAG_NSREF_MAX
    initiator = char * INITIATOR_MAX
    label = char * NODE_LABEL_MAX
    downstream = char * (NODE_LABEL_MAX - 1) + "d"

    provenance.create_run(run_id, nsref, {}, initiator=initiator)
    provenance.create_run(child_id, nsref[:-1] + "/", {}, parent_run_id=run_id)
    provenance.record_node_start(run_id, label, "{}")
    provenance.complete_node_with_edges(run_id, label, "1", [(label, downstream)])

    run = provenance.get_run(run_id)
    assert run is not None
    assert (run["run_id"], run["dag_nsref"], run["initiated_by"]) == (run_id, nsref, initiator)
    assert (provenance.get_run(child_id) or {})["parent_run_id"] == run_id
    assert provenance.get_node_output(run_id, label) == "1"
    (edge,) = provenance.get_edge_traversals(run_id)
    assert (edge["run_id"], edge["upstream_label"], edge["downstream_label"]) == (
        run_id,
        label,
        downstream,
    )
    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    assert list(inspected.nodes) == [label]
    assert [c.run_id for c in provenance.get_child_runs(run_id)] == [child_id]


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.create_run("", "pkg:dag", {}),
        lambda s: s.create_run("r-empty", "", {}),
        lambda s: s.record_node_start("existing", "", "{}"),
        lambda s: s.complete_node_with_edges("existing", "a", "1", [("a", "")]),
    ],
    ids=["run_id", "dag_nsref", "node_label", "edge label"],
)
def test_empty_identifiers_are_refused(
    provenance: DagProvenance, refused: Refused, write: Callable[[DagProvenance], object]
) -> None:
    _run_with_node(provenance, "existing")

    with refused(InvalidInputError, match="must not be empty"):
        write(provenance)


# Statuses

BAD_STATUS_CALLS: dict[str, Call] = {
    "update_run_status": lambda s, st: s.update_run_status("existing", st),
    "finish_run": lambda s, st: s.finish_run("existing", st),
    "get_recent_runs status": lambda s, st: s.get_recent_runs(status=st),
    "get_recent_runs statuses": lambda s, st: s.get_recent_runs(statuses=["running", st]),
}


BAD_STATUSES: dict[str, object] = {
    "unknown": "exploded",
    "a node status": "skipped",
    "capitalised": "Running",
    "trailing space": "running ",
    "empty": "",
    "int": 3,
}


@pytest.mark.parametrize("call", BAD_STATUS_CALLS.values(), ids=BAD_STATUS_CALLS.keys())
def test_a_status_that_is_not_a_run_status_is_refused_listing_the_allowed_ones(
    provenance: DagProvenance, refused: Refused, call: Call
) -> None:
    _run_with_node(provenance, "existing")
    statuses = dict(BAD_STATUSES)
    if call is BAD_STATUS_CALLS["get_recent_runs status"]:
        del statuses["empty"]  # an empty status filter means no filter, as in lythonic

    def check(status: object) -> None:
        with refused(InvalidStatusError) as info:
            call(provenance, status)  # type: ignore[arg-type]
        for allowed in ALL_RUN_STATUSES:
            assert allowed in str(info.value)
        assert isinstance(info.value, ValueError)

    check_each(statuses, check)


@pytest.mark.parametrize(
    "call",
    [lambda s: s.update_run_status("existing", None), lambda s: s.finish_run("existing", None)],
    ids=["update_run_status", "finish_run"],
)
def test_a_missing_status_is_refused(
    provenance: DagProvenance, refused: Refused, call: Callable[[DagProvenance], object]
) -> None:
    _run_with_node(provenance, "existing")

    with refused(InvalidStatusError, match="not one of running, paused"):
        call(provenance)


# Wrong types and forbidden characters

BAD_INPUTS: dict[str, Callable[[DagProvenance], object]] = {
    "run_id int": lambda s: s.create_run(42, "pkg:dag", {}),  # type: ignore[arg-type]
    "run_id None": lambda s: s.create_run(None, "pkg:dag", {}),  # type: ignore[arg-type]
    "run_id bytes": lambda s: s.update_run_status(b"existing", "paused"),  # type: ignore[arg-type]
    "source_inputs list": lambda s: s.create_run("r-new", "pkg:dag", [1, 2]),  # type: ignore[arg-type]
    "parent_run_id int": lambda s: s.create_run("r-new", "pkg:dag", {}, parent_run_id=7),  # type: ignore[arg-type]
    "initiator int": lambda s: s.create_run("r-new", "pkg:dag", {}, initiator=7),  # type: ignore[arg-type]
    "input_json dict": lambda s: s.record_node_start("existing", "b", {"x": 1}),  # type: ignore[arg-type]
    "is_source str": lambda s: s.record_node_start("existing", "b", "{}", is_source="yes"),  # type: ignore[arg-type]
    "is_sink None": lambda s: s.record_node_start("existing", "b", "{}", is_sink=None),  # type: ignore[arg-type]
    "node_label None": lambda s: s.record_node_skipped("existing", None, "1"),  # type: ignore[arg-type]
    "output_json bytes": lambda s: s.record_node_skipped("existing", "b", b"1"),  # type: ignore[arg-type]
    "sink_outputs_json dict": lambda s: s.finish_run("existing", "completed", {"x": 1}),  # type: ignore[arg-type]
    "edges str": lambda s: s.complete_node_with_edges("existing", "a", "1", "ab"),  # type: ignore[arg-type]
    "edges None": lambda s: s.complete_node_with_edges("existing", "a", "1", None),  # type: ignore[arg-type]
    "edge of one": lambda s: s.complete_node_with_edges("existing", "a", "1", [("a",)]),  # type: ignore[list-item]
    "edge of three": lambda s: s.complete_node_with_edges("existing", "a", "1", [("a", "b", "c")]),  # type: ignore[list-item]
    "edge label int": lambda s: s.complete_node_with_edges("existing", "a", "1", [("a", 2)]),  # type: ignore[list-item]
    "error None": lambda s: s.fail_node_and_finish_run("existing", "a", None),  # type: ignore[arg-type]
    "limit negative": lambda s: s.get_recent_runs(limit=-1),
    "limit str": lambda s: s.get_recent_runs(limit="5"),  # type: ignore[arg-type]
    "limit bool": lambda s: s.get_recent_runs(limit=True),
    "status and statuses": lambda s: s.get_recent_runs(status="running", statuses=["failed"]),
    "statuses str": lambda s: s.get_recent_runs(statuses="running"),
    "dag_nsref filter int": lambda s: s.get_recent_runs(dag_nsref=3),  # type: ignore[arg-type]
    "started_after naive": lambda s: s.get_recent_runs(started_after=datetime(2030, 1, 1)),
    "started_before str": lambda s: s.get_recent_runs(started_before="2030-01-01"),  # type: ignore[arg-type]
    "after not a pair": lambda s: s.get_recent_runs(after=("x",)),  # type: ignore[arg-type]
    "after naive": lambda s: s.get_recent_runs(after=(datetime(2030, 1, 1), "r")),
    "get_run int": lambda s: s.get_run(5),  # type: ignore[arg-type]
    "inspect_run None": lambda s: s.inspect_run(None),  # type: ignore[arg-type]
    "get_child_runs int": lambda s: s.get_child_runs(5),  # type: ignore[arg-type]
    "get_node_output label int": lambda s: s.get_node_output("existing", 1),  # type: ignore[arg-type]
    "load_io dict": lambda s: s.load_io({"run_id": "existing"}),  # type: ignore[arg-type]
    "load_io labels str": lambda s: s.load_io(s.inspect_run("existing"), "a"),  # type: ignore[arg-type]
}


def test_arguments_of_the_wrong_type_are_refused_before_reaching_the_database(
    provenance: DagProvenance, refused: Refused
) -> None:
    _run_with_node(provenance, "existing")

    def check(call: Callable[[DagProvenance], object]) -> None:
        with refused(InvalidInputError) as info:
            call(provenance)
        assert isinstance(info.value, ValueError)

    check_each(BAD_INPUTS, check)


NUL_CALLS: dict[str, Callable[[DagProvenance, str], object]] = {
    "run_id": lambda s, v: s.create_run(v, "pkg:dag", {}),
    "dag_nsref": lambda s, v: s.create_run("r-new", v, {}),
    "initiator": lambda s, v: s.create_run("r-new", "pkg:dag", {}, initiator=v),
    "node_label": lambda s, v: s.record_node_start("existing", v, "{}"),
    "input_json": lambda s, v: s.record_node_start("existing", "b", v),
    "output_json": lambda s, v: s.complete_node_with_edges("existing", "a", v, []),
    "skipped output_json": lambda s, v: s.record_node_skipped("existing", "b", v),
    "edge label": lambda s, v: s.complete_node_with_edges("existing", "a", "1", [("a", v)]),
    "error": lambda s, v: s.fail_node_and_finish_run("existing", "a", v),
    "sink_outputs_json": lambda s, v: s.finish_run("existing", "completed", v),
    "get_run": lambda s, v: s.get_run(v),
    "get_node_output": lambda s, v: s.get_node_output("existing", v),
    "dag_nsref filter": lambda s, v: s.get_recent_runs(dag_nsref=v),
}


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"], ids=["NUL", "lone-surrogate"])
def test_text_no_engine_can_store_exactly_is_refused(
    provenance: DagProvenance, refused: Refused, bad: str
) -> None:
    _run_with_node(provenance, "existing")

    def check(call: Callable[[DagProvenance, str], object]) -> None:
        with refused(InvalidInputError) as info:
            call(provenance, bad)
        assert ("NUL" in str(info.value)) == ("\x00" in bad)

    check_each(NUL_CALLS, check)
