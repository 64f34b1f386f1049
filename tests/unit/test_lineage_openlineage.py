"""`to_openlineage`: a run tree as OpenLineage run events (no database: trees
are built from the models). What each status becomes, the facets, the ids,
the times, and that every event is what the OpenLineage 2-0-2 spec asks of a
RunEvent and its facets."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from openlineage.client.serde import Serde

from dag_provenance import DagRun, EdgeTraversal, ExtraNotInstalledError, NodeExecution
from dag_provenance.lineage import DEFAULT_NAMESPACE, to_openlineage
from dag_provenance.lineage.extra import require
from dag_provenance.lineage.openlineage import node_run_id, openlineage_run_id

T0 = datetime(2030, 5, 17, 9, 30, 0, 123457, tzinfo=UTC)
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
HOSTILE = [
    "'",
    '"; DROP TABLE dag_runs; --',
    "line one\nline two\r\n",
    "tab\there",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "\U0001f600 \U0001f469\u200d\U0001f4bb",
    "100% / 50% : # ? &",
    "x" * 200,
]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def node(
    status: str,
    start: float | None,
    end: float | None = None,
    *,
    to: tuple[str, ...] = (),
    error: str | None = None,
    source: bool = False,
    sink: bool = False,
) -> NodeExecution:
    return NodeExecution(
        node_label="",
        status=status,
        is_source=source,
        is_sink=sink,
        started_at=None if start is None else at(start),
        finished_at=None if end is None else at(end),
        error=error,
        edges=[EdgeTraversal(downstream_label=d, traversed_at=at(end or 0)) for d in to],
    )


def run(
    run_id: str,
    nsref: str,
    status: str,
    start: float,
    end: float | None = None,
    nodes: dict[str, NodeExecution] | None = None,
    parent: str | None = None,
    initiator: str | None = None,
) -> DagRun:
    nodes = nodes or {}
    for label, n in nodes.items():
        n.node_label = label
    return DagRun(
        run_id=run_id,
        dag_nsref=nsref,
        parent_run_id=parent,
        status=status,
        started_at=at(start),
        finished_at=None if end is None else at(end),
        initiated_by=initiator,
        nodes=nodes,
    )


def hang(parent: DagRun, label: str, key: str, child: DagRun) -> None:
    parent.nodes[label].sub_dags = {**(parent.nodes[label].sub_dags or {}), key: child}


def as_json(dag_run: DagRun, **kwargs: Any) -> list[dict[str, Any]]:
    return [json.loads(Serde.to_json(e)) for e in to_openlineage(dag_run, **kwargs)]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["eventType"], e["job"]["name"], e["eventTime"]) for e in events]


def failed_tree() -> DagRun:
    """A fan-out whose map node's second chunk failed, failing the run."""
    root = run(
        "etl-2030-05-17",
        "etl:daily",
        "failed",
        0,
        9,
        {
            "load": node("completed", 1, 2, to=("chunks", "audit"), source=True),
            "audit": node("completed", 3, 4),
            "chunks": node("failed", 3, 8, error="Sub-DAG [chunks[1]] failed"),
            "report": node("pending", None),
        },
        initiator="scheduler",
    )
    for i, status in enumerate(("completed", "failed")):
        child = run(
            f"etl-chunk-{i}",
            f"etl:daily/chunks[{i}]",
            status,
            4 + i,
            6 + i,
            {"shout": node(status, 4.5 + i, 5.5 + i, error="boom" if status == "failed" else None)},
            parent="etl-2030-05-17",
        )
        hang(root, "chunks", f"chunks[{i}]", child)
    return root


def test_a_failed_fan_out_with_a_map_node_becomes_the_events_of_its_run() -> None:
    events = as_json(failed_tree(), namespace="etl")
    assert summary(events) == [
        ("START", "etl:daily", at(0).isoformat()),
        ("START", "etl:daily.load", at(1).isoformat()),
        ("COMPLETE", "etl:daily.load", at(2).isoformat()),
        ("START", "etl:daily.audit", at(3).isoformat()),
        ("START", "etl:daily.chunks", at(3).isoformat()),
        # At one instant, a run starts before a node ends.
        ("START", "etl:daily/chunks[0]", at(4).isoformat()),
        ("COMPLETE", "etl:daily.audit", at(4).isoformat()),
        ("START", "etl:daily/chunks[0].shout", at(4.5).isoformat()),
        ("START", "etl:daily/chunks[1]", at(5).isoformat()),
        ("COMPLETE", "etl:daily/chunks[0].shout", at(5.5).isoformat()),
        ("START", "etl:daily/chunks[1].shout", at(5.5).isoformat()),
        ("COMPLETE", "etl:daily/chunks[0]", at(6).isoformat()),
        ("FAIL", "etl:daily/chunks[1].shout", at(6.5).isoformat()),
        ("FAIL", "etl:daily/chunks[1]", at(7).isoformat()),
        ("FAIL", "etl:daily.chunks", at(8).isoformat()),
        ("FAIL", "etl:daily", at(9).isoformat()),
    ]
    assert {e["job"]["namespace"] for e in events} == {"etl"}
    by = {(e["eventType"], e["job"]["name"]): e for e in events}

    root_fail = by["FAIL", "etl:daily"]["run"]["facets"]
    assert root_fail["errorMessage"]["message"] == "Sub-DAG [chunks[1]] failed"
    assert root_fail["errorMessage"]["programmingLanguage"] == "python"
    assert root_fail["dagprovenance_run"] == {
        "_producer": root_fail["dagprovenance_run"]["_producer"],
        "_schemaURL": root_fail["dagprovenance_run"]["_schemaURL"],
        "runId": "etl-2030-05-17",
        "dagNsref": "etl:daily",
        "status": "failed",
        "initiatedBy": "scheduler",
    }
    assert "parent" not in root_fail

    root_id = openlineage_run_id("etl-2030-05-17")
    chunk = by["START", "etl:daily/chunks[1]"]["run"]["facets"]
    assert chunk["parent"]["run"]["runId"] == root_id
    assert chunk["parent"]["job"]["namespace"] == "etl"
    assert chunk["parent"]["job"]["name"] == "etl:daily"
    assert chunk["parent"]["root"]["run"]["runId"] == root_id
    assert chunk["dagprovenance_run"]["parentRunId"] == "etl-2030-05-17"

    shout = by["FAIL", "etl:daily/chunks[1].shout"]["run"]
    assert shout["runId"] == node_run_id("etl-chunk-1", "shout")
    assert shout["facets"]["parent"]["run"]["runId"] == openlineage_run_id("etl-chunk-1")
    assert shout["facets"]["parent"]["job"]["name"] == "etl:daily/chunks[1]"
    assert shout["facets"]["parent"]["root"]["job"]["name"] == "etl:daily"
    assert shout["facets"]["errorMessage"]["message"] == "boom"

    load_start = by["START", "etl:daily.load"]["run"]["facets"]["dagprovenance_node"]
    assert (load_start["isSource"], load_start["isSink"], load_start["status"]) == (
        True,
        False,
        "running",
    )
    deps = by["COMPLETE", "etl:daily.load"]["run"]["facets"]["jobDependencies"]
    assert deps["downstream"] == [
        {
            "job": {"namespace": "etl", "name": f"etl:daily.{label}"},
            "run": {"runId": node_run_id("etl-2030-05-17", label)},
            "dependency_type": "DIRECT_INVOCATION",
            "sequence_trigger_rule": "FINISH_TO_START",
        }
        for label in ("audit", "chunks")
    ]
    assert "jobDependencies" not in by["COMPLETE", "etl:daily.audit"]["run"]["facets"]
    # The pending node has not happened: no event names it.
    assert not any(e["job"]["name"] == "etl:daily.report" for e in events)


@pytest.mark.parametrize(
    ("status", "end", "last"),
    [
        ("completed", 5, ("COMPLETE", 5)),
        ("cancelled", 5, ("ABORT", 5)),
        ("cancelled", None, ("ABORT", 3)),  # ended without finish_run: its last recorded time
        ("paused", None, ("RUNNING", 3)),
        ("running", None, ("START", 0)),  # only its START
    ],
)
def test_a_runs_status_decides_its_last_event(
    status: str, end: float | None, last: tuple[str, float]
) -> None:
    events = as_json(run("r", "dag", status, 0, end, {"a": node("completed", 1, 3)}))
    dag_events = [(e["eventType"], e["eventTime"]) for e in events if e["job"]["name"] == "dag"]
    assert dag_events[0] == ("START", at(0).isoformat())
    assert dag_events[-1] == (last[0], at(last[1]).isoformat())
    assert len(dag_events) == (1 if status == "running" else 2)
    last_facet = [e for e in events if e["job"]["name"] == "dag"][-1]["run"]["facets"]
    assert last_facet["dagprovenance_run"]["status"] == status


def test_a_skipped_node_is_one_complete_event_marked_skipped() -> None:
    events = as_json(run("r", "dag", "completed", 0, 5, {"copied": node("skipped", 1, 1)}))
    copied = [e for e in events if e["job"]["name"] == "dag.copied"]
    assert [e["eventType"] for e in copied] == ["COMPLETE"]
    assert copied[0]["run"]["facets"]["dagprovenance_node"]["status"] == "skipped"


def test_a_running_node_has_only_its_start_and_a_run_with_no_nodes_only_its_own() -> None:
    events = as_json(run("r", "dag", "running", 0, None, {"busy": node("running", 1)}))
    assert summary(events) == [
        ("START", "dag", at(0).isoformat()),
        ("START", "dag.busy", at(1).isoformat()),
    ]
    assert summary(as_json(run("empty", "dag", "completed", 0, 1))) == [
        ("START", "dag", at(0).isoformat()),
        ("COMPLETE", "dag", at(1).isoformat()),
    ]


def test_run_ids_are_uuids_kept_when_they_are_and_derived_stably_when_not() -> None:
    native = str(uuid.uuid4())
    assert openlineage_run_id(native) == native
    upper = native.upper()  # a UUID, but not in its canonical form: derived
    assert openlineage_run_id(upper) != native
    assert uuid.UUID(openlineage_run_id(upper))
    for rid in ("etl-1", "etl-2", *HOSTILE):
        derived = openlineage_run_id(rid)
        assert uuid.UUID(derived).version == 5 and derived == openlineage_run_id(rid)
    assert openlineage_run_id("etl-1") != openlineage_run_id("etl-2")
    # (run, label) pairs cannot collide by moving characters between the two.
    assert node_run_id("a.b", "c") != node_run_id("a", "b.c")


def test_the_same_tree_exports_to_the_same_events_every_time() -> None:
    first = [Serde.to_json(e) for e in to_openlineage(failed_tree())]
    again = [Serde.to_json(e) for e in to_openlineage(failed_tree())]
    assert first == again


def test_a_sub_dag_run_exported_alone_names_its_ancestors_given() -> None:
    chunk = run("c", "etl/chunks[0]", "completed", 1, 2, parent="p")
    alone = as_json(chunk, ancestors=[("p", "etl"), ("root", "top")])
    parent = alone[0]["run"]["facets"]["parent"]
    assert parent["job"]["name"] == "etl" and parent["run"]["runId"] == openlineage_run_id("p")
    assert parent["root"]["job"]["name"] == "top"
    assert parent["root"]["run"]["runId"] == openlineage_run_id("root")
    assert "parent" not in as_json(chunk)[0]["run"]["facets"]  # without, none


def _check_against_the_spec(event: dict[str, Any]) -> None:
    """What OpenLineage 2-0-2 requires of a RunEvent and of every facet, and
    what our custom facets' shipped JSON schemas declare."""
    assert event["schemaURL"] == SPEC
    assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
    stamp = datetime.fromisoformat(event["eventTime"])
    assert stamp.tzinfo is not None and "T" in event["eventTime"]
    assert event["producer"].startswith("https://")
    assert uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"]
    facets = {**event["run"]["facets"], **event["job"]["facets"]}
    for name, facet in facets.items():
        assert facet["_producer"].startswith("https://"), name
        assert facet["_schemaURL"].startswith("https://") and "#/$defs/" in facet["_schemaURL"]
        if name.startswith("dagprovenance_"):
            _check_custom_facet(facet)
    if "parent" in facets:
        assert uuid.UUID(facets["parent"]["run"]["runId"])
        assert uuid.UUID(facets["parent"]["root"]["run"]["runId"])
    if "errorMessage" in facets:
        assert set(facets["errorMessage"]) >= {"message", "programmingLanguage"}
    assert set(facets["jobType"]) >= {"processingType", "integration"}


def _check_custom_facet(facet: dict[str, Any]) -> None:
    schema_name = facet["_schemaURL"].split("#")[0].split("/")[-1]
    schema = json.loads(
        resources.files("dag_provenance.lineage").joinpath("schemas", schema_name).read_text()
    )
    (definition,) = schema["$defs"].values()
    body = definition["allOf"][1]
    fields = {k: v for k, v in facet.items() if not k.startswith("_")}
    assert set(body["required"]) <= set(fields), schema_name
    types = {"string": str, "boolean": bool}
    for key, value in fields.items():
        declared = body["properties"][key]
        assert isinstance(value, types[declared["type"]]), (schema_name, key)
        assert value in declared.get("enum", [value]), (schema_name, key, value)


def test_every_event_is_what_the_openlineage_spec_requires() -> None:
    trees = [failed_tree(), run("r", "dag", "paused", 0, None, {"a": node("skipped", 1, 1)})]
    for tree in trees:
        for event in as_json(tree):
            _check_against_the_spec(event)


def test_hostile_ids_labels_and_errors_export_to_valid_events() -> None:
    for text in HOSTILE:
        tree = run(
            text,
            text,
            "failed",
            0,
            3,
            {text: node("failed", 1, 2, error=text)},
            initiator=text,
        )
        child = run(text + "/child", f"{text}/{text}[]", "completed", 1, 2, parent=text)
        hang(tree, text, f"{text}[]", child)
        events = as_json(tree)
        for event in events:
            _check_against_the_spec(event)
        failed = events[-1]["run"]["facets"]
        assert failed["dagprovenance_run"]["runId"] == text
        assert failed["dagprovenance_run"]["initiatedBy"] == text
        assert failed["errorMessage"]["message"] == text
        assert {e["job"]["name"] for e in events} == {text, f"{text}.{text}", f"{text}/{text}[]"}


def _fan_tree(runs: int) -> DagRun:
    root = run("root", "big", "completed", 0, runs + 2, {"fan": node("completed", 1, runs + 1)})
    root.nodes["fan"].sub_dags = {
        f"fan[{i}]": run(
            f"child-{i}",
            f"big/fan[{i}]",
            "completed",
            1 + i,
            2 + i,
            {"work": node("completed", 1 + i, 2 + i)},
            parent="root",
        )
        for i in range(runs - 1)
    }
    return root


def _sizes(runs: int) -> tuple[int, int]:
    """(memory the tree holds, peak memory above it while exporting it)."""
    tracemalloc.start()
    try:
        tree = _fan_tree(runs)
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        events = to_openlineage(tree)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(events) == 4 * runs - 2 + 2  # each run: 2 events, and each node 2
    return held, peak - held


@pytest.mark.slow
def test_a_10000_run_tree_exports_in_memory_proportional_to_the_tree() -> None:
    _, small_export = _sizes(1_000)
    big_tree, big_export = _sizes(10_000)
    # Linear: ten times the runs, about ten times the memory, never more than
    # a fixed multiple of what the tree itself holds.
    assert big_export / small_export < 12
    assert big_export < 15 * big_tree


def test_the_namespace_must_be_a_name() -> None:
    with pytest.raises(ValueError, match="namespace"):
        to_openlineage(failed_tree(), namespace="")
    assert DEFAULT_NAMESPACE == "dag-provenance"


def test_a_missing_lineage_package_names_the_extra_that_installs_it() -> None:
    with pytest.raises(ExtraNotInstalledError, match=r"dag-provenance\[lineage\]"):
        require("openlineage_not_installed_here", "openlineage-python")
