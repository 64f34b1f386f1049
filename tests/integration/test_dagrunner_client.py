"""A real client: lythonic's own DagRunner records its runs in our store,
on every engine, and what it recorded reads back through our API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from lythonic.compose import dag_provenance as lythonic_provenance
from lythonic.compose.dag_runner import DagRunner, DagRunResult
from lythonic.compose.namespace import Dag

from dag_provenance import DagProvenance, DagRun

from .lythonic_dags import (
    FAIL_ONCE,
    PAUSE_ONCE,
    call_dag,
    failing_dag,
    fan_dag,
    flaky_dag,
    linear_dag,
    map_dag,
    nested_dag,
    pausing_dag,
)

NewId = Callable[[str], str]


def _run(
    store: DagProvenance, dag: Dag, inputs: dict[str, dict[str, Any]], nsref: str
) -> DagRunResult:
    return asyncio.run(DagRunner(dag, provenance=store).run(source_inputs=inputs, dag_nsref=nsref))  # type: ignore[arg-type]


def _inspect(store: DagProvenance, run_id: str) -> DagRun:
    run = store.inspect_run(run_id)
    assert run is not None
    return run


def _statuses(run: DagRun) -> dict[str, str]:
    return {label: node.status for label, node in run.nodes.items()}


def _edges(run: DagRun) -> set[tuple[str, str]]:
    return {(label, e.downstream_label) for label, n in run.nodes.items() for e in n.edges}


def test_a_linear_dag_run_is_recorded_node_by_node(
    provenance: DagProvenance, new_id: NewId
) -> None:
    nsref = new_id("tests") + ":linear"
    result = _run(provenance, linear_dag(), {"load": {"path": "in.csv"}}, nsref)
    assert result.status == "completed"

    run = _inspect(provenance, result.run_id)
    assert (run.dag_nsref, run.status, run.parent_run_id) == (nsref, "completed", None)
    assert run.finished_at is not None
    assert _statuses(run) == {"load": "completed", "count": "completed", "report": "completed"}
    assert _edges(run) == {("load", "count"), ("count", "report")}
    assert (run.nodes["load"].is_source, run.nodes["load"].is_sink) == (True, False)
    assert (run.nodes["report"].is_source, run.nodes["report"].is_sink) == (False, True)
    assert all(n.sub_dags is None for n in run.nodes.values())

    record = provenance.get_run(result.run_id)
    assert record is not None
    assert json.loads(record["source_inputs_json"]) == {"load": {"path": "in.csv"}}
    assert json.loads(record["sink_outputs_json"]) == {"report": "3 rows"}
    executions = provenance.get_node_executions(result.run_id)
    assert [n["node_label"] for n in executions] == ["load", "count", "report"]
    assert json.loads(executions[1]["input_json"]) == {
        "data": {"path": "in.csv", "rows": [3, 1, 2]}
    }
    assert provenance.get_node_output(result.run_id, "count") == "3"
    assert provenance.get_pending_nodes(result.run_id) == []


def test_a_fan_out_fan_in_dag_records_every_edge(provenance: DagProvenance, new_id: NewId) -> None:
    result = _run(provenance, fan_dag(), {"start": {"n": 3}}, new_id("tests") + ":fan")
    assert (result.status, result.outputs) == ("completed", {"total": 15})

    run = _inspect(provenance, result.run_id)
    assert _statuses(run) == dict.fromkeys(["start", "double", "square", "total"], "completed")
    assert _edges(run) == {
        ("start", "double"),
        ("start", "square"),
        ("double", "total"),
        ("square", "total"),
    }
    assert len(provenance.get_edge_traversals(result.run_id)) == 4
    assert json.loads(provenance.get_node_output(result.run_id, "total") or "null") == 15


def test_a_failing_node_fails_its_run_with_the_traceback_recorded(
    provenance: DagProvenance, new_id: NewId
) -> None:
    result = _run(provenance, failing_dag(), {"start": {"n": 7}}, new_id("tests") + ":failing")
    assert (result.status, result.failed_node) == ("failed", "explode")

    run = _inspect(provenance, result.run_id)
    assert run.status == "failed"
    assert run.finished_at is not None
    assert _statuses(run) == {"start": "completed", "explode": "failed"}
    error = run.nodes["explode"].error or ""
    assert "Traceback" in error
    assert "ValueError: cannot handle 7" in error
    assert provenance.get_pending_nodes(result.run_id) == ["explode"]
    assert provenance.get_node_output(result.run_id, "explode") is None


def test_a_map_node_records_one_sub_dag_run_per_element(
    provenance: DagProvenance, new_id: NewId
) -> None:
    nsref = new_id("tests") + ":map"
    result = _run(provenance, map_dag(), {"split": {"text": "a b c"}}, nsref)
    assert (result.status, result.outputs) == ("completed", {"join": "A! B! C!"})

    run = _inspect(provenance, result.run_id)
    assert run.nodes["split"].sub_dags is None
    assert run.nodes["join"].sub_dags is None
    sub_dags = run.nodes["chunks"].sub_dags or {}
    assert set(sub_dags) == {"chunks[0]", "chunks[1]", "chunks[2]"}
    for i, word in enumerate("abc"):
        sub = sub_dags[f"chunks[{i}]"]
        assert (sub.dag_nsref, sub.parent_run_id, sub.status) == (
            f"{nsref}/chunks[{i}]",
            result.run_id,
            "completed",
        )
        assert _statuses(sub) == {"shout": "completed"}
        assert provenance.get_node_output(sub.run_id, "shout") == json.dumps(word.upper() + "!")
    children = provenance.get_child_runs(result.run_id)
    assert {c.run_id for c in children} == {s.run_id for s in sub_dags.values()}


def test_a_call_node_records_its_sub_dag_under_label_brackets(
    provenance: DagProvenance, new_id: NewId
) -> None:
    nsref = new_id("tests") + ":call"
    result = _run(provenance, call_dag(), {"seed": {"token": "hi"}}, nsref)
    assert (result.status, result.outputs) == ("completed", {"finish": "<HI>!:done"})

    run = _inspect(provenance, result.run_id)
    sub_dags = run.nodes["enrich"].sub_dags or {}
    assert list(sub_dags) == ["enrich[]"]
    sub = sub_dags["enrich[]"]
    assert sub.dag_nsref == f"{nsref}/enrich[]"
    assert _statuses(sub) == {"annotate": "completed", "shout": "completed"}
    assert _edges(sub) == {("annotate", "shout")}
    assert run.nodes["seed"].sub_dags is None


def test_nested_composites_record_grandchild_runs(provenance: DagProvenance, new_id: NewId) -> None:
    nsref = new_id("tests") + ":nested"
    result = _run(provenance, nested_dag(), {"seed": {"token": "x y"}}, nsref)
    assert (result.status, result.outputs) == ("completed", {"outer": "X! Y!"})

    run = _inspect(provenance, result.run_id)
    outer = (run.nodes["outer"].sub_dags or {})["outer[]"]
    words = outer.nodes["words"].sub_dags or {}
    assert set(words) == {"words[0]", "words[1]"}
    assert words["words[1]"].dag_nsref == f"{nsref}/outer[]/words[1]"

    descendants = {c.run_id: c for c in provenance.get_child_runs(result.run_id)}
    assert set(descendants) == {outer.run_id, *(w.run_id for w in words.values())}
    nested = descendants[outer.run_id].nodes["words"].sub_dags or {}
    assert all(nested[k] is descendants[words[k].run_id] for k in words)


def test_a_failing_sub_dag_fails_its_composite_node_and_the_parent_run(
    provenance: DagProvenance, new_id: NewId
) -> None:
    result = _run(provenance, map_dag(), {"split": {"text": "ok boom"}}, new_id("tests") + ":mf")
    assert (result.status, result.failed_node) == ("failed", "chunks")

    run = _inspect(provenance, result.run_id)
    assert run.status == "failed"
    assert run.nodes["chunks"].status == "failed"
    sub_dags = run.nodes["chunks"].sub_dags or {}
    assert set(sub_dags) == {"chunks[0]", "chunks[1]"}
    assert sub_dags["chunks[1]"].status == "failed"
    # lythonic's MapNode gathers its sub-DAGs without waiting for the others
    # once one fails, so chunks[0] may be recorded as completed or, if it was
    # cancelled when the event loop closed, still running.
    assert sub_dags["chunks[0]"].status in {"completed", "running"}
    assert "a word exploded" in (sub_dags["chunks[1]"].nodes["shout"].error or "")


def test_restarting_a_failed_run_reruns_only_what_did_not_complete(
    provenance: DagProvenance, new_id: NewId
) -> None:
    token = new_id("token")
    FAIL_ONCE.add(token)
    dag = flaky_dag()
    first = _run(provenance, dag, {"seed": {"token": token}}, new_id("tests") + ":flaky")
    assert (first.status, first.failed_node) == ("failed", "flaky")
    before = _inspect(provenance, first.run_id)
    assert "transient failure" in (before.nodes["flaky"].error or "")

    again = asyncio.run(DagRunner(dag, provenance=provenance).restart(first.run_id))  # type: ignore[arg-type]

    assert (again.run_id, again.status) == (first.run_id, "completed")
    assert again.outputs == {"finish": f"{token}:ok:done"}
    after = _inspect(provenance, first.run_id)
    assert after.status == "completed"
    assert _statuses(after) == dict.fromkeys(["seed", "flaky", "finish"], "completed")
    assert after.nodes["seed"] == before.nodes["seed"]  # kept, not re-run
    assert after.nodes["flaky"].error is None  # the restarted node started afresh
    assert provenance.get_pending_nodes(first.run_id) == []
    assert [r.run_id for r in provenance.get_recent_runs(dag_nsref=after.dag_nsref)] == [
        first.run_id
    ]


def test_a_paused_run_is_recorded_paused_and_resumes_on_restart(
    provenance: DagProvenance, new_id: NewId
) -> None:
    token = new_id("token")
    PAUSE_ONCE.add(token)
    dag = pausing_dag()
    first = _run(provenance, dag, {"seed": {"token": token}}, new_id("tests") + ":pause")
    assert first.status == "paused"
    paused = provenance.get_run(first.run_id)
    assert paused is not None
    assert (paused["status"], paused["finished_at"]) == ("paused", None)

    again = asyncio.run(DagRunner(dag, provenance=provenance).restart(first.run_id))  # type: ignore[arg-type]

    assert again.status == "completed"
    assert (provenance.get_run(first.run_id) or {})["status"] == "completed"


def test_replay_records_a_new_run_with_copied_outputs_as_skipped(
    provenance: DagProvenance, new_id: NewId
) -> None:
    # A store reading lythonic's initiator variable, so replay's create_run
    # (called without an initiator) is attributed to the caller.
    store = DagProvenance(provenance.engine, initiator_var=lythonic_provenance.run_initiator)
    dag = linear_dag()
    original = _run(store, dag, {"load": {"path": "in.csv"}}, new_id("tests") + ":replay")
    user = new_id("usr")

    async def replay() -> DagRunResult:
        with lythonic_provenance.initiated_by(user):
            return await DagRunner(dag, provenance=store).replay(original.run_id, {"count"})  # type: ignore[arg-type]

    replayed = asyncio.run(replay())

    assert replayed.status == "completed"
    assert replayed.run_id != original.run_id
    run = _inspect(store, replayed.run_id)
    assert run.initiated_by == user
    # lythonic re-runs exactly the nodes named; every other output is copied.
    assert _statuses(run) == {"load": "skipped", "count": "completed", "report": "skipped"}
    assert store.get_node_output(replayed.run_id, "load") == store.get_node_output(
        original.run_id, "load"
    )
    old = _inspect(store, original.run_id)
    assert _statuses(old) == dict.fromkeys(["load", "count", "report"], "completed")


def test_runs_and_their_sub_dag_runs_record_the_initiator(
    provenance: DagProvenance, new_id: NewId
) -> None:
    user = new_id("usr")

    async def run() -> DagRunResult:
        with lythonic_provenance.initiated_by(user):
            return await DagRunner(map_dag(), provenance=provenance).run(  # type: ignore[arg-type]
                source_inputs={"split": {"text": "p q"}}, dag_nsref=new_id("tests") + ":who"
            )

    result = asyncio.run(run())

    tree = [_inspect(provenance, result.run_id), *provenance.get_child_runs(result.run_id)]
    assert len(tree) == 3
    assert {r.initiated_by for r in tree} == {user}
