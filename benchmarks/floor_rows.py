"""Rows into what the floors return: the original's plain dicts and its
Pydantic models, built without validation (`model_construct`), as cheaply as
Python allows, so a floor's cost is the driver's and the database's.

Every floor reads the same columns in the same order; only how its driver
hands back timestamps differs, so each builder takes `ts`, the floor's
conversion of a non-null timestamp value to what a user sees: an aware UTC
datetime for models, epoch seconds for dicts (as the original returns them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from lythonic.compose.dag_provenance import DagRun, EdgeTraversal, NodeExecution

ToDatetime = Callable[[Any], datetime]
ToEpoch = Callable[[Any], float]

RUN_COLUMNS = (
    "run_id",
    "dag_nsref",
    "parent_run_id",
    "status",
    "started_at",
    "finished_at",
    "source_inputs_json",
    "sink_outputs_json",
    "initiated_by",
)
"""get_run's columns, in the table's (and the dict's) order."""

NODE_COLUMNS = (
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
)
"""get_node_executions' columns, in the table's (and the dict's) order."""

EDGE_COLUMNS = ("run_id", "upstream_label", "downstream_label", "traversed_at")
"""get_edge_traversals' columns, in the table's (and the dict's) order."""


# Plain records (the point lookups)


def run_record(r: tuple[Any, ...], epoch: ToEpoch) -> dict[str, Any]:
    """A RUN_COLUMNS row as get_run's dict."""
    return {
        "run_id": r[0],
        "dag_nsref": r[1],
        "parent_run_id": r[2],
        "status": r[3],
        "started_at": epoch(r[4]),
        "finished_at": None if r[5] is None else epoch(r[5]),
        "source_inputs_json": r[6],
        "sink_outputs_json": r[7],
        "initiated_by": r[8],
    }


def node_record(r: tuple[Any, ...], epoch: ToEpoch) -> dict[str, Any]:
    """A NODE_COLUMNS row as one of get_node_executions' dicts."""
    return {
        "run_id": r[0],
        "node_label": r[1],
        "status": r[2],
        "is_source": bool(r[3]),
        "is_sink": bool(r[4]),
        "input_json": r[5],
        "output_json": r[6],
        "started_at": None if r[7] is None else epoch(r[7]),
        "finished_at": None if r[8] is None else epoch(r[8]),
        "error": r[9],
    }


def edge_record(r: tuple[Any, ...], epoch: ToEpoch) -> dict[str, Any]:
    """An EDGE_COLUMNS row as one of get_edge_traversals' dicts."""
    return {
        "run_id": r[0],
        "upstream_label": r[1],
        "downstream_label": r[2],
        "traversed_at": epoch(r[3]),
    }


# Run trees (inspect_run, get_recent_runs, get_child_runs)


def run_model(r: tuple[Any, ...], ts: ToDatetime) -> DagRun:
    """A (run_id, dag_nsref, parent_run_id, status, started_at, finished_at,
    initiated_by) row as a DagRun with no nodes yet."""
    return DagRun.model_construct(
        run_id=r[0],
        dag_nsref=r[1],
        parent_run_id=r[2],
        status=r[3],
        started_at=ts(r[4]),
        finished_at=None if r[5] is None else ts(r[5]),
        initiated_by=r[6],
        nodes={},
        io=None,
    )


def add_nodes(runs: dict[str, DagRun], rows: Iterable[tuple[Any, ...]], ts: ToDatetime) -> None:
    """Put each (run_id, node_label, status, is_source, is_sink, started_at,
    finished_at, error) row's node into its run."""
    for r in rows:
        run = runs.get(r[0])
        if run is not None:
            run.nodes[r[1]] = NodeExecution.model_construct(
                node_label=r[1],
                status=r[2],
                is_source=bool(r[3]),
                is_sink=bool(r[4]),
                started_at=None if r[5] is None else ts(r[5]),
                finished_at=None if r[6] is None else ts(r[6]),
                error=r[7],
                edges=[],
                sub_dags=None,
                io=None,
            )


def add_edges(runs: dict[str, DagRun], rows: Iterable[tuple[Any, ...]], ts: ToDatetime) -> None:
    """Append each (run_id, upstream_label, downstream_label, traversed_at)
    row's traversal to its upstream node, in the rows' order."""
    for r in rows:
        run = runs.get(r[0])
        node = run.nodes.get(r[1]) if run is not None else None
        if node is not None:
            node.edges.append(
                EdgeTraversal.model_construct(downstream_label=r[2], traversed_at=ts(r[3]))
            )


def attach_sub_dags(runs: dict[str, DagRun]) -> None:
    """Hang each run under its parent's composite node (`<parent nsref>/<label>[key]`)."""
    for child in runs.values():
        parent = runs.get(child.parent_run_id or "")
        if parent is None or not child.dag_nsref.startswith(parent.dag_nsref + "/"):
            continue
        key = child.dag_nsref[len(parent.dag_nsref) + 1 :]
        bracket = key.find("[")
        node = parent.nodes.get(key[:bracket] if bracket >= 0 else key)
        if node is not None:
            if node.sub_dags is None:
                node.sub_dags = {}
            node.sub_dags[key] = child
