"""What the viewer reads from the store: one call per page or answer.

The store is the `AsyncDagProvenance` the application opened for its life
(`app`); every function here is one of its calls, with the viewer's
shaping (pages of `limit` runs and the cursor of the next, a run that must
exist, one node's payloads).
"""

from __future__ import annotations

from datetime import UTC, datetime

from dag_provenance.async_repository import AsyncDagProvenance
from dag_provenance.errors import NotFoundError, RunNotFoundError
from dag_provenance.models import DagRun, DagStats, IoPayload, NodeExecution
from dag_provenance.protocol import RunCursor
from dag_provenance.web.params import RunFilters, Window, cursor_text


async def runs_page(
    store: AsyncDagProvenance, filters: RunFilters, after: RunCursor | None, limit: int
) -> tuple[list[DagRun], str | None]:
    """Up to `limit` runs, newest first, and the `after` of the next page
    (None when there is none: one run more is read to know)."""
    runs = await store.get_recent_runs(
        limit + 1,
        statuses=filters.statuses or None,
        dag_nsref=filters.dag,
        started_after=filters.started_after,
        started_before=filters.started_before,
        after=after,
    )
    if len(runs) <= limit:
        return runs, None
    last = runs[limit - 1]
    return runs[:limit], cursor_text(last.started_at, last.run_id)


async def run_tree(store: AsyncDagProvenance, run_id: str) -> DagRun:
    """The run with its nodes, edges and sub-DAG runs; `RunNotFoundError` if
    there is no such run."""
    run = await store.inspect_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return run


async def payloads(store: AsyncDagProvenance, run_id: str, node_label: str | None) -> IoPayload:
    """The node's input and output (with no label: the run's source inputs
    and sink outputs), in one statement; `NotFoundError` if the run or the
    node does not exist."""
    # load_io fills what it finds on the run it is given: a stand-in naming
    # the run and the one node is all it reads.
    stand_in = DagRun(run_id=run_id, dag_nsref="", status="", started_at=datetime.now(UTC))
    if node_label is not None:
        stand_in.nodes[node_label] = NodeExecution(node_label=node_label, status="")
    await store.load_io(stand_in, [] if node_label is None else [node_label])
    if stand_in.io is None:
        raise RunNotFoundError(run_id)
    if node_label is None:
        return stand_in.io
    found = stand_in.nodes[node_label].io
    if found is None:
        raise NotFoundError(f"run {run_id!r} has no node {node_label!r}")
    return found


async def dag_stats(store: AsyncDagProvenance, nsref: str, window: Window) -> DagStats:
    """The DAG's runs per status and its nodes' figures in the window."""
    return await store.dag_stats(
        nsref, started_after=window.started_after, started_before=window.started_before
    )


__all__ = ["dag_stats", "payloads", "run_tree", "runs_page"]
