"""The viewer's HTML pages and the fragments their script swaps in.

- `/`: recent runs, filtered and paged (keyset: `after`), its rows kept up
  to date from `/fragments/run-list` (the same query) while runs are active;
- `/runs/{run_id}`: one run: header, timeline, node tree (errors in full,
  edges, sub-DAG runs nested), graph (`/graphs/{run_id}`, an SVG image),
  payloads on demand; while the run is active its script follows
  `/api/events/{run_id}` and swaps in `/fragments/run/{run_id}`;
- `/dags/{nsref}`: a DAG's runs by status and its nodes' statistics.

Each page is one store call, rendered by templates compiled once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse, Response

import dag_provenance.web.reads as reads
from dag_provenance.graph import STATUS_COLOURS
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.protocol import RunCursor
from dag_provenance.status import NodeStatus
from dag_provenance.web.live import is_active, tree_version
from dag_provenance.web.params import (
    MAX_PAGE_SIZE,
    RunFilters,
    Window,
    after_param,
    nsref_param,
    run_filters,
    run_id_param,
    stats_window,
)
from dag_provenance.web.state import Viewer, viewer
from dag_provenance.web.templating import render, sub_runs
from dag_provenance.web.timeline import layout

router = APIRouter(include_in_schema=False)

RunId = Annotated[str, Depends(run_id_param)]
ViewerDep = Annotated[Viewer, Depends(viewer)]
PageLimit = Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)]


def _html(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context))


# --- the runs -----------------------------------------------------------------------------


async def _list_context(
    request: Request,
    state: Viewer,
    filters: RunFilters,
    after: RunCursor | None,
    limit: int | None,
) -> dict[str, Any]:
    size = limit or state.page_size
    runs, next_after = await reads.runs_page(state.store, filters, after, size)
    kept = filters.query() + ([("limit", str(limit))] if limit else [])
    return {
        "runs": runs,
        "filters": filters,
        "first_page": after is None,
        "first_url": "/?" + urlencode(kept) if kept else "/",
        "next_url": "/?" + urlencode([*kept, ("after", next_after)]) if next_after else None,
        "live_url": "/fragments/run-list" + ("?" + request.url.query if request.url.query else ""),
        "now": datetime.now(UTC),
        "database": state.database,
    }


@router.get("/", response_class=HTMLResponse)
async def runs_page(
    request: Request,
    state: ViewerDep,
    filters: Annotated[RunFilters, Depends(run_filters)],
    after: Annotated[RunCursor | None, Depends(after_param)],
    limit: PageLimit = None,
) -> HTMLResponse:
    return _html("runs.html", **await _list_context(request, state, filters, after, limit))


@router.get("/fragments/run-list", response_class=HTMLResponse)
async def runs_fragment(
    request: Request,
    state: ViewerDep,
    filters: Annotated[RunFilters, Depends(run_filters)],
    after: Annotated[RunCursor | None, Depends(after_param)],
    limit: PageLimit = None,
) -> HTMLResponse:
    return _html("_run_list.html", **await _list_context(request, state, filters, after, limit))


# --- one run ------------------------------------------------------------------------------


def _failed_nodes(run: DagRun) -> list[tuple[DagRun, NodeExecution]]:
    return [
        (each, node)
        for each in run.walk()
        for node in each.nodes.values()
        if node.status == NodeStatus.FAILED
    ]


def _run_context(run: DagRun, state: Viewer) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "run": run,
        "now": now,
        "timeline": layout(run, now),
        "version": tree_version(run),
        "active": is_active(run),
        "subs": sub_runs(run),
        "failed": _failed_nodes(run),
        "database": state.database,
    }


@router.get("/runs/{run_id:path}", response_class=HTMLResponse)
async def run_page(state: ViewerDep, run_id: RunId) -> HTMLResponse:
    run = await reads.run_tree(state.store, run_id)
    return _html("run.html", **_run_context(run, state))


@router.get("/fragments/run/{run_id:path}", response_class=HTMLResponse)
async def run_fragment(state: ViewerDep, run_id: RunId) -> HTMLResponse:
    run = await reads.run_tree(state.store, run_id)
    return _html("_run_live.html", **_run_context(run, state))


@router.get("/graphs/{run_id:path}")
async def run_graph(state: ViewerDep, run_id: RunId) -> Response:
    run = await reads.run_tree(state.store, run_id)
    return Response(await state.graphs.svg(run), media_type="image/svg+xml")


# --- one DAG -----------------------------------------------------------------------------

WINDOWS = (("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d"), ("90 days", "90d"), ("all", ""))


@router.get("/dags/{nsref:path}", response_class=HTMLResponse)
async def dag_page(
    state: ViewerDep,
    nsref: Annotated[str, Depends(nsref_param)],
    window: Annotated[Window, Depends(stats_window)],
) -> HTMLResponse:
    stats = await reads.dag_stats(state.store, nsref, window)
    in_window = [(k, v) for k, v in (("since", window.since), ("until", window.until)) if v]
    return _html(
        "dag.html",
        stats=stats,
        window=window,
        windows=WINDOWS,
        runs_query=[("dag", nsref), *in_window],
        database=state.database,
    )


# --- the status colours -------------------------------------------------------------------


def _status_css() -> str:
    """Badge, bar and border colours of each status, from `graph.STATUS_COLOURS`
    (one source for the pictures and the pages)."""
    rules = []
    for status, (fill, stroke) in STATUS_COLOURS.items():
        name = "-".join(str(status).split())
        rules += [
            f".badge.{name} {{ background: {fill}; border-color: {stroke}; }}",
            f".bar.{name}, .run-span.{name} {{ fill: {fill}; stroke: {stroke}; }}",
            f".node.{name} > .node-line, .subrun.{name} > h3 {{ border-left-color: {stroke}; }}",
            f"tr.run-row.{name} > td:first-child {{ box-shadow: inset 3px 0 {stroke}; }}",
        ]
    return "\n".join(rules) + "\n"


STATUS_CSS = _status_css()


@router.get("/static/status.css")
async def status_css() -> Response:
    return Response(STATUS_CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


__all__ = ["router"]
