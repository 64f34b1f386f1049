"""Live OpenLineage emission: a store's `OpenLineageListener` sends each
committed change through the client's real HTTP transport to a lineage
backend on loopback, and what the backend receives is what
`to_openlineage` exports of the same run trees, in an order consistent with
the runs. On every engine; lythonic's DagRunner drives the sync store, the
store API drives both."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from lythonic.compose.dag_runner import DagRunner, DagRunResult
from lythonic.compose.namespace import Dag
from openlineage.client import OpenLineageClient
from openlineage.client.transport import Transport

from dag_provenance import DagProvenance, DagRun
from dag_provenance.lineage import OpenLineageListener, to_openlineage

from .lineage_endpoint import LineageEndpoint, as_sent, lineage_backend
from .lythonic_dags import call_dag, failing_dag, fan_dag, map_dag

__all__ = ["lineage_backend"]  # the fixture, used by name

NewId = Callable[[str], str]
NAMESPACE = "tests"


@pytest.fixture
def lineage(
    provenance: DagProvenance, lineage_backend: LineageEndpoint
) -> Iterator[OpenLineageListener]:
    """The store's OpenLineage listener, its client configured from the
    environment (`OPENLINEAGE_URL` names the loopback backend)."""
    listener = OpenLineageListener(namespace=NAMESPACE)
    provenance.add_listener(listener)
    yield listener
    listener.close(timeout=10)


def _key(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def _tree(store: DagProvenance, run_id: str) -> DagRun:
    tree = store.inspect_run(run_id)
    assert tree is not None
    return tree


def _received_equals_export(
    endpoint: LineageEndpoint, store: DagProvenance, roots: list[str]
) -> list[dict[str, Any]]:
    exported = [
        event
        for root in roots
        for event in as_sent(to_openlineage(_tree(store, root), namespace=NAMESPACE))
    ]
    received = list(endpoint.events)
    assert Counter(map(_key, received)) == Counter(map(_key, exported))
    return received


def _assert_in_run_order(received: list[dict[str, Any]]) -> None:
    """The order a backend can rely on: each run (DAG run or node execution)
    starts before it ends, and its events come in time order; a DAG run
    starts before its nodes and sub-DAG runs; a node completes before the
    nodes its edges lead to start. (A sub-DAG run may end after its parent:
    lythonic fails a map node at its first failed element while the others
    still run.)"""
    position: dict[tuple[str, str], int] = {}
    last_time: dict[str, datetime] = {}
    for i, event in enumerate(received):
        run_id, when = event["run"]["runId"], datetime.fromisoformat(event["eventTime"])
        position.setdefault((run_id, event["eventType"]), i)
        assert last_time.get(run_id, when) <= when, "a run's events out of time order"
        last_time[run_id] = when

    def first(run_id: str, *types: str) -> int | None:
        found = [position[(run_id, t)] for t in types if (run_id, t) in position]
        return min(found) if found else None

    for i, event in enumerate(received):
        run_id, facets = event["run"]["runId"], event["run"]["facets"]
        start = first(run_id, "START")
        if event["eventType"] in ("COMPLETE", "FAIL", "ABORT") and start is not None:
            assert start < i, f"{event['job']['name']} ended before it started"
        parent = facets.get("parent")
        if parent is not None:
            parent_start = first(parent["run"]["runId"], "START")
            assert parent_start is not None and parent_start < i, "an event before its parent's"
        for dependency in facets.get("jobDependencies", {}).get("downstream", []):
            downstream_start = first(dependency["run"]["runId"], "START")
            if downstream_start is not None:
                assert i < downstream_start, "a node started before its upstream completed"


def _run(
    store: DagProvenance, dag: Dag, inputs: dict[str, dict[str, Any]], nsref: str
) -> DagRunResult:
    return asyncio.run(DagRunner(dag, provenance=store).run(source_inputs=inputs, dag_nsref=nsref))  # type: ignore[arg-type]


def test_a_dagrunner_run_reaches_the_backend_as_its_export(
    provenance: DagProvenance,
    lineage: OpenLineageListener,
    lineage_backend: LineageEndpoint,
    new_id: NewId,
) -> None:
    prefix = new_id("lineage")
    fan = _run(provenance, fan_dag(), {"start": {"n": 3}}, f"{prefix}:fan")
    failing = _run(provenance, failing_dag(), {"start": {"n": 3}}, f"{prefix}:failing")
    mapped = _run(provenance, map_dag(), {"split": {"text": "a boom c"}}, f"{prefix}:map")
    called = _run(provenance, call_dag(), {"seed": {"token": "t"}}, f"{prefix}:call")
    replayed = asyncio.run(
        DagRunner(fan_dag(), provenance=provenance).replay(fan.run_id, {"total"})  # type: ignore[arg-type]
    )
    assert [r.status for r in (fan, failing, mapped, called, replayed)] == [
        "completed",
        "failed",
        "failed",
        "completed",
        "completed",
    ]
    assert lineage.flush(timeout=30)
    assert (lineage.dropped, lineage.failed, lineage.unresolved) == (0, 0, 0)

    roots = [r.run_id for r in (fan, failing, mapped, called, replayed)]
    received = _received_equals_export(lineage_backend, provenance, roots)
    _assert_in_run_order(received)
    # What the runs were, as the backend sees them.
    types = Counter((e["job"]["name"].removeprefix(prefix), e["eventType"]) for e in received)
    assert types[":map/chunks[1].shout", "FAIL"] == 1
    assert types[":map", "FAIL"] == 1 and types[":failing.explode", "FAIL"] == 1
    assert types[":call/enrich[]", "COMPLETE"] == 1
    skipped = [
        e
        for e in received
        if e["run"]["facets"].get("dagprovenance_node", {}).get("status") == "skipped"
    ]
    assert {e["job"]["name"].removeprefix(prefix) for e in skipped} == {
        ":fan.start",
        ":fan.double",
        ":fan.square",
    }


@pytest.mark.both_stores
def test_both_stores_emit_what_they_export_even_for_hostile_ids(
    provenance: DagProvenance,
    lineage: OpenLineageListener,
    lineage_backend: LineageEndpoint,
    new_id: NewId,
) -> None:
    hostile = ['"quoted"', "new\nline", "<script>alert(1)</script>", "\U0001f600", "%2F/x"]
    roots = []
    for text in hostile:
        root = new_id(text)[:150] + text
        child = root + "/" + text
        provenance.create_run(root, text, {"in": {text: text}}, initiator=text)
        provenance.record_node_start(root, text, json.dumps(text), is_source=True)
        provenance.create_run(child, f"{text}/{text}[]", {}, parent_run_id=root)
        provenance.record_node_start(child, "inner", "{}")
        provenance.complete_node_with_edges(child, "inner", "1", [])
        provenance.finish_run(child, "completed")
        provenance.complete_node_with_edges(root, text, "2", [(text, "next")])
        provenance.record_node_start(root, "next", "{}")
        provenance.fail_node_and_finish_run(root, "next", text)
        roots.append(root)
    empty = new_id("no-nodes")
    provenance.create_run(empty, "empty", {})
    provenance.finish_run(empty, "cancelled")
    still_running = new_id("running")
    provenance.create_run(still_running, "busy", {})
    provenance.record_node_start(still_running, "a", "{}")
    assert lineage.flush(timeout=30)

    received = _received_equals_export(lineage_backend, provenance, [*roots, empty, still_running])
    _assert_in_run_order(received)
    assert len(received) == 10 * len(hostile) + 2 + 2


class _Stalled(Transport):
    """A backend that does not answer until told to."""

    kind = "stalled"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.sent: list[Any] = []

    def emit(self, event: Any) -> None:
        self.entered.set()
        self.release.wait()
        self.sent.append(event)


def test_a_stalled_backend_neither_slows_nor_undoes_the_writes(
    provenance: DagProvenance, new_id: NewId, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _Stalled()
    listener = OpenLineageListener(OpenLineageClient(transport=backend), max_queue=5)
    provenance.add_listener(listener)
    try:
        run = new_id("run")
        provenance.create_run(run, "dag", {})
        assert backend.entered.wait(10)  # the backend holds the first event
        for i in range(10):  # 5 wait in the queue, the rest are dropped
            provenance.record_node_start(run, f"n{i}", "{}")
        provenance.finish_run(run, "completed")
        assert len(provenance.get_node_executions(run)) == 10  # every write landed
        assert listener.flush(timeout=0.1) is False  # still stalled
        assert listener.dropped == 12 - 1 - 5
        assert "queue is full" in caplog.text
    finally:
        backend.release.set()
        assert listener.close(timeout=10)
    assert len(backend.sent) == 6 and listener.handled == 6


def test_a_failing_backend_is_counted_and_the_writes_stand(
    provenance: DagProvenance,
    lineage: OpenLineageListener,
    lineage_backend: LineageEndpoint,
    new_id: NewId,
) -> None:
    lineage_backend.fail_next = 2  # the backend refuses two events (a 400: no retry)
    run = new_id("run")
    provenance.create_run(run, "dag", {})
    provenance.record_node_start(run, "a", "{}")
    provenance.complete_node_with_edges(run, "a", "1", [])
    provenance.finish_run(run, "completed")
    assert lineage.flush(timeout=30)
    assert provenance.get_run(run) is not None
    assert lineage.failed == 2 and lineage.handled == 2
    assert [e["eventType"] for e in lineage_backend.events] == ["COMPLETE", "COMPLETE"]


@pytest.mark.both_stores
def test_a_listener_added_mid_run_reads_the_run_it_did_not_see_start(
    provenance: DagProvenance, lineage_backend: LineageEndpoint, new_id: NewId
) -> None:
    root, child = new_id("root"), new_id("child")
    provenance.create_run(root, "late", {})
    provenance.record_node_start(root, "fan", "{}")
    provenance.create_run(child, "late/fan[0]", {}, parent_run_id=root)
    listener = OpenLineageListener(namespace=NAMESPACE)
    provenance.add_listener(listener)
    try:
        provenance.record_node_start(child, "work", "{}")
        provenance.complete_node_with_edges(child, "work", "1", [])
        provenance.finish_run(child, "completed")
        assert listener.flush(timeout=30)
    finally:
        listener.close()
    assert listener.unresolved == 0
    exported = as_sent(to_openlineage(_tree(provenance, root), namespace=NAMESPACE))
    received = lineage_backend.events
    # The three events it heard are those of the export, parent and root facets included.
    assert len(received) == 3
    assert all(_key(e) in set(map(_key, exported)) for e in received)
