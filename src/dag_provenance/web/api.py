"""The JSON API under `/api`, which the pages use too; its OpenAPI document
is `/api/openapi.json`.

Run ids and nsrefs go in the path (percent-encoded, `/` as `%2F`; see
`urls`). What is asked of a run has a prefix of its own (`/api/io/`,
`/api/events/`) rather than a suffix after the id, so an id ending in `/io`
or `/events` is still just an id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response, StreamingResponse

import dag_provenance.web.reads as reads
from dag_provenance.models import DagRun, DagStats
from dag_provenance.protocol import RunCursor
from dag_provenance.web.live import run_events
from dag_provenance.web.params import (
    PAGE_SIZE,
    LimitParam,
    RunFilters,
    Window,
    after_param,
    nsref_param,
    run_filters,
    run_id_param,
    stats_window,
)
from dag_provenance.web.payloads import shown_async
from dag_provenance.web.schemas import ErrorAnswer, NodeIo, RunPage, RunSummary
from dag_provenance.web.state import Viewer, viewer

router = APIRouter(prefix="/api", tags=["runs"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorAnswer, "description": "No such run (or node)"}
}
_BAD: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "A parameter the store refuses"}
}
RunId = Annotated[str, Depends(run_id_param)]
ViewerDep = Annotated[Viewer, Depends(viewer)]


@router.get("/runs", response_model=RunPage, responses=_BAD)
async def list_runs(
    state: ViewerDep,
    filters: Annotated[RunFilters, Depends(run_filters)],
    after: Annotated[RunCursor | None, Depends(after_param)],
    limit: LimitParam = PAGE_SIZE,
) -> RunPage:
    """Runs, newest first (sub-DAG runs among them), filtered, a page at a
    time: pass `next` as `after` for the next page."""
    runs, next_after = await reads.runs_page(state.store, filters, after, limit)
    return RunPage(runs=[RunSummary.of(run) for run in runs], next=next_after)


@router.get(
    "/runs/{run_id:path}",
    response_model=DagRun,
    responses=_NOT_FOUND,
    summary="A run's tree",
)
async def get_run(state: ViewerDep, run_id: RunId) -> Response:
    """The run with its nodes (by label), their edges and sub-DAG runs (no payloads)."""
    run = await reads.run_tree(state.store, run_id)
    return Response(run.model_dump_json(), media_type="application/json")


@router.get(
    "/io/{run_id:path}", response_model=NodeIo, responses=_NOT_FOUND, summary="Inputs and outputs"
)
async def get_io(
    state: ViewerDep,
    run_id: RunId,
    node: Annotated[
        str | None,
        Query(description="The node's label; without it, the run's source inputs and sink outputs"),
    ] = None,
    full: Annotated[
        bool, Query(description="The whole payloads, not their first 64 Ki characters")
    ] = False,
) -> NodeIo:
    """A node's recorded input and output, pretty-printed when JSON."""
    io = await reads.payloads(state.store, run_id, node)
    return NodeIo(
        run_id=run_id,
        node=node,
        input=await shown_async(io.input_json, full),
        output=await shown_async(io.output_json, full),
    )


@router.get(
    "/events/{run_id:path}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`state` events ({version, status, active}) as the run changes, "
            "then `end` when it has finished",
        },
        **_NOT_FOUND,
    },
    summary="Follow a run (server-sent events)",
)
async def follow_run(state: ViewerDep, run_id: RunId) -> StreamingResponse:
    """Server-sent events of the run: its state now, again whenever it
    changes, and `end` once it has finished (then the stream closes)."""
    run = await reads.run_tree(state.store, run_id)
    return StreamingResponse(
        run_events(state.store, run, poll_s=state.poll_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/dags/{nsref:path}/stats",
    response_model=DagStats,
    responses=_BAD,
    tags=["dags"],
    summary="A DAG's statistics",
)
async def dag_stats(
    state: ViewerDep,
    nsref: Annotated[str, Depends(nsref_param)],
    window: Annotated[Window, Depends(stats_window)],
) -> DagStats:
    """The DAG's runs started in the window (the last 30 days unless told),
    per status, and per node label: executions, failures, failure rate, p50
    and p95 durations, last failure. Sub-DAG runs count under their own nsref."""
    return await reads.dag_stats(state.store, nsref, window)


__all__ = ["router"]
