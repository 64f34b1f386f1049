"""A small but real run tree, recorded the way lythonic's DagRunner records one.

The DAG `demo/pipeline`:

    fetch ──> audit
      └────> enrich (map over 3 records: sub-DAG clean ──> score) ──> report
                                                                └──> publish

`fetch` fans out, `enrich` expands into three sub-DAG runs, `publish` fails
(so the run fails); then the run is replayed with only `publish` re-run, as
`DagRunner.replay` does, and the replay completes. The calls made on the
store, and their order, are DagRunner's (lythonic is not needed to run this).
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from typing import Any

from pydantic import BaseModel

from dag_provenance.repository import DagProvenance
from dag_provenance.status import NodeStatus, RunStatus

DAG_NSREF = "demo/pipeline"
INITIATOR = "dag-provenance demo"

_EDGES: dict[str, list[tuple[str, str]]] = {
    "fetch": [("fetch", "audit"), ("fetch", "enrich")],
    "audit": [],
    "enrich": [("enrich", "report"), ("enrich", "publish")],
    "report": [],
    "publish": [],
}
_SOURCES = {"fetch"}
_SINKS = {"audit", "report", "publish"}
_RECORDS = [
    {"id": 1, "name": "Ada", "city": "London"},
    {"id": 2, "name": "Grace", "city": "Arlington"},
    {"id": 3, "name": "Zoë «Ω»", "city": "Zürich"},
]


class DemoRuns(BaseModel):
    """The ids of the runs the demo recorded."""

    failed_run_id: str
    replay_run_id: str
    sub_run_ids: list[str]


class PublishError(ConnectionError):
    """The demo's deliberate failure."""


def _dumps(value: Any) -> str:
    return json.dumps(value)


def _work(seconds: float) -> None:
    time.sleep(seconds)


def _score(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "score": len(record["name"]) * 10 + record["id"]}


def _run_sub_dag(store: DagProvenance, parent_run_id: str, key: str, record: Any) -> Any:
    """One sub-DAG run (clean -> score), as DagRunner._run_sub_dag records it."""
    run_id = str(uuid.uuid4())
    store.create_run(run_id, f"{DAG_NSREF}/{key}", {"clean": {"record": record}}, parent_run_id)
    store.record_node_start(run_id, "clean", _dumps({"record": record}), is_source=True)
    _work(0.004)
    cleaned = {k: v.strip() if isinstance(v, str) else v for k, v in record.items()}
    store.complete_node_with_edges(run_id, "clean", _dumps(cleaned), [("clean", "score")])
    store.record_node_start(run_id, "score", _dumps({"record": cleaned}), is_sink=True)
    _work(0.006)
    scored = _score(cleaned)
    store.complete_node_with_edges(run_id, "score", _dumps(scored), [])
    store.finish_run(run_id, RunStatus.COMPLETED, sink_outputs_json=_dumps({"score": scored}))
    return run_id, scored


def _publish(attempt: int) -> str:
    if attempt == 0:
        raise PublishError("publish endpoint https://example.invalid/hook refused the connection")
    return "published 3 records"


def _execute(
    store: DagProvenance, run_id: str, outputs: dict[str, Any], attempt: int
) -> tuple[RunStatus, list[str]]:
    """DagRunner._execute: nodes in topological order, skipping those in
    `outputs`; returns the final status and the sub-DAG run ids."""
    sub_runs: list[str] = []
    for label in ("fetch", "audit", "enrich", "report", "publish"):
        if label in outputs:
            continue
        flags = {"is_source": label in _SOURCES, "is_sink": label in _SINKS}
        upstream = {up: outputs[up] for up, edges in _EDGES.items() for _, d in edges if d == label}
        store.record_node_start(run_id, label, _dumps(upstream), **flags)
        try:
            if label == "fetch":
                _work(0.012)
                result: Any = _RECORDS
            elif label == "audit":
                _work(0.005)
                result = {"rows": len(outputs["fetch"])}
            elif label == "enrich":
                result = []
                for i, record in enumerate(outputs["fetch"]):
                    sub_id, scored = _run_sub_dag(store, run_id, f"enrich[{i}]", record)
                    sub_runs.append(sub_id)
                    result.append(scored)
            elif label == "report":
                _work(0.008)
                result = {"best": max(outputs["enrich"], key=lambda r: r["score"])["name"]}
            else:
                _work(0.02)
                result = _publish(attempt)
        except Exception:
            store.fail_node_and_finish_run(run_id, label, traceback.format_exc())
            return RunStatus.FAILED, sub_runs
        outputs[label] = result
        store.complete_node_with_edges(run_id, label, _dumps(result), _EDGES[label])
    sinks = {label: outputs[label] for label in sorted(_SINKS)}
    store.finish_run(run_id, RunStatus.COMPLETED, sink_outputs_json=_dumps(sinks))
    return RunStatus.COMPLETED, sub_runs


def record_demo(store: DagProvenance) -> DemoRuns:
    """Record the demo run (which fails in `publish`) and its replay (which
    completes); both are attributed to the initiator `dag-provenance demo`."""
    failed_id = str(uuid.uuid4())
    inputs = {"fetch": {"source": "people.csv"}}
    store.create_run(failed_id, DAG_NSREF, inputs, initiator=INITIATOR)
    _, sub_runs = _execute(store, failed_id, {}, attempt=0)

    # DagRunner.replay(failed_id, rerun_nodes={"publish"})
    old = {
        n["node_label"]: json.loads(n["output_json"])
        for n in store.get_node_executions(failed_id)
        if n["status"] in (NodeStatus.COMPLETED, NodeStatus.SKIPPED) and n["output_json"]
    }
    replay_id = str(uuid.uuid4())
    store.create_run(replay_id, DAG_NSREF, inputs, initiator=INITIATOR)
    for label, output in old.items():
        store.record_node_skipped(replay_id, label, _dumps(output))
    _execute(store, replay_id, dict(old), attempt=1)
    return DemoRuns(failed_run_id=failed_id, replay_run_id=replay_id, sub_run_ids=sub_runs)
