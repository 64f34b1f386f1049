"""Turning rows into what the store returns: lythonic's plain dicts, and
`DagRun` trees of Pydantic models.

Pure functions over rows already read (tuples or SQLAlchemy `Row`s): the
repository feeds them what its statements return, and `orm.to_dag_run` what a
host application's Session loaded, so both build the same models the same
way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from dag_provenance.models import (
    DagRun,
    DagStats,
    EdgeTraversal,
    NodeExecution,
    NodeFailure,
    NodeStats,
    attach_sub_dags,
    trusted_model,
)
from dag_provenance.status import RunStatus

RunRow = tuple[str, str, str | None, str, datetime, datetime | None, str | None]
"""(run_id, dag_nsref, parent_run_id, status, started_at, finished_at, initiated_by)"""

NodeRow = tuple[str, str, str, bool, bool, datetime | None, datetime | None, str | None]
"""(run_id, node_label, status, is_source, is_sink, started_at, finished_at, error)"""

EdgeRow = tuple[str, str, str, datetime]
"""(run_id, upstream_label, downstream_label, traversed_at)"""

# The fields lythonic's store passes when it builds these models: payloads
# (`io`), edges and sub-DAG runs are filled in afterwards, as there, so
# `model_dump(exclude_unset=True)` gives the same keys.
_RUN_FIELDS_SET = frozenset(DagRun.model_fields) - {"io"}
_NODE_FIELDS_SET = frozenset(NodeExecution.model_fields) - {"edges", "sub_dags", "io"}


class Recorder:
    """Turns a SELECT's rows into the original's plain dicts: by column
    name, timestamps as epoch seconds."""

    def __init__(self, keys: Sequence[str], timestamps: Iterable[int]) -> None:
        self._keys = tuple(keys)
        self._timestamps = tuple((i, self._keys[i]) for i in timestamps)

    def __call__(self, row: Sequence[Any]) -> dict[str, Any]:
        record = dict(zip(self._keys, row, strict=True))
        for i, key in self._timestamps:
            value = row[i]
            if value is not None:
                record[key] = value.timestamp()
        return record


def runs_from_rows(rows: Iterable[Any]) -> dict[str, DagRun]:
    """A `DagRun` (no nodes yet) per `RunRow`, by run id, in the rows' order."""
    runs: dict[str, DagRun] = {}
    for run_id, nsref, parent, status, started, finished, initiator in rows:
        runs[run_id] = trusted_model(
            DagRun,
            {
                "run_id": run_id,
                "dag_nsref": nsref,
                "parent_run_id": parent,
                "status": status,
                "started_at": started,
                "finished_at": finished,
                "initiated_by": initiator,
                "nodes": {},
                "io": None,
            },
            _RUN_FIELDS_SET,
        )
    return runs


def add_nodes(runs: dict[str, DagRun], rows: Iterable[Any]) -> None:
    """Put each `NodeRow`'s node into its run (rows of other runs are ignored)."""
    for run_id, label, status, is_source, is_sink, started, finished, error in rows:
        run = runs.get(run_id)
        if run is not None:
            run.nodes[label] = trusted_model(
                NodeExecution,
                {
                    "node_label": label,
                    "status": status,
                    "is_source": bool(is_source),
                    "is_sink": bool(is_sink),
                    "started_at": started,
                    "finished_at": finished,
                    "error": error,
                    "edges": [],
                    "sub_dags": None,
                    "io": None,
                },
                _NODE_FIELDS_SET,
            )


def add_edges(runs: dict[str, DagRun], rows: Iterable[Any]) -> None:
    """Append each `EdgeRow`'s traversal to its upstream node, in the rows' order."""
    for run_id, upstream, downstream, traversed in rows:
        run = runs.get(run_id)
        node = run.nodes.get(upstream) if run is not None else None
        if node is not None:
            # Validated construction: for this two-field model pydantic-core
            # is faster than skipping validation.
            node.edges.append(EdgeTraversal(downstream_label=downstream, traversed_at=traversed))


def dag_run_from_rows(
    root_id: str,
    run_rows: Iterable[RunRow],
    node_rows: Iterable[NodeRow],
    edge_rows: Iterable[EdgeRow],
) -> DagRun:
    """The tree rooted at `root_id`, with sub-DAG runs under their composite nodes."""
    runs = runs_from_rows(run_rows)
    add_nodes(runs, node_rows)
    add_edges(runs, edge_rows)
    attach_sub_dags(runs.values())
    return runs[root_id]


# --- statistics (`dag_stats`) -------------------------------------------------------


def dag_stats(
    dag_nsref: str,
    started_after: datetime | None,
    started_before: datetime | None,
    status_rows: Iterable[Sequence[Any]],
    node_rows: Iterable[Sequence[Any]],
    failure_rows: Iterable[Sequence[Any]],
) -> DagStats:
    """`DagStats` from the rows of `statements.stats_statements`: runs per
    status; per label completed and failed counts and p50/p95 in
    microseconds; per label the latest failure."""
    runs_by_status = dict.fromkeys((status.value for status in RunStatus), 0)
    for status, runs in status_rows:
        runs_by_status[status] = int(runs)
    last_failures = {
        label: NodeFailure(run_id=run_id, finished_at=finished_at, error=error)
        for label, run_id, finished_at, error in failure_rows
    }
    nodes = [
        _node_stats(label, int(completed), int(failed), p50_us, p95_us, last_failures.get(label))
        for label, completed, failed, p50_us, p95_us in node_rows
    ]
    return DagStats(
        dag_nsref=dag_nsref,
        started_after=None if started_after is None else started_after.astimezone(UTC),
        started_before=None if started_before is None else started_before.astimezone(UTC),
        runs=sum(runs_by_status.values()),
        runs_by_status=runs_by_status,
        nodes=sorted(nodes, key=lambda node: node.node_label),
    )


def _node_stats(
    label: str,
    completed: int,
    failed: int,
    p50_us: int | None,
    p95_us: int | None,
    last_failure: NodeFailure | None,
) -> NodeStats:
    """A label's `NodeStats` from its counts and its percentiles in microseconds."""
    executions = completed + failed
    return NodeStats(
        node_label=label,
        executions=executions,
        completed=completed,
        failed=failed,
        p50_seconds=_seconds(p50_us),
        p95_seconds=_seconds(p95_us),
        failure_rate=failed / executions if executions else None,
        last_failure=last_failure,
    )


def _seconds(microseconds: int | None) -> float | None:
    # Whole microseconds, divided once: the float nearest the exact duration,
    # as `timedelta.total_seconds()` gives it.
    return None if microseconds is None else int(microseconds) / 1_000_000
