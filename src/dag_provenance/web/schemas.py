"""What the JSON API answers with (besides `DagRun` itself): run summaries
for lists, pages of them with their keyset cursor, payloads as shown, and
errors. They are the API's documented shape (`/api/openapi.json`)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

from dag_provenance.models import DagRun
from dag_provenance.status import FINISHED_STATUSES
from dag_provenance.web.urls import run_url


class RunSummary(BaseModel):
    """A run as a list shows it: no nodes, but how many are in each status."""

    run_id: str
    dag_nsref: str
    parent_run_id: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    initiated_by: str | None
    duration_seconds: float | None = Field(
        description="finished_at - started_at; null while the run has not finished"
    )
    node_counts: dict[str, int] = Field(description="The run's own nodes, by status")
    sub_dag_runs: int = Field(description="Sub-DAG runs directly below the run's nodes")
    url: str = Field(description="The run's page in the viewer")

    @classmethod
    def of(cls, run: DagRun) -> RunSummary:
        counts = Counter(node.status for node in run.nodes.values())
        sub_runs = sum(len(node.sub_dags or ()) for node in run.nodes.values())
        finished = run.finished_at is not None and run.status in FINISHED_STATUSES
        return cls(
            run_id=run.run_id,
            dag_nsref=run.dag_nsref,
            parent_run_id=run.parent_run_id,
            status=run.status,
            started_at=run.started_at,
            finished_at=run.finished_at,
            initiated_by=run.initiated_by,
            duration_seconds=(
                (run.finished_at - run.started_at).total_seconds()
                if finished and run.finished_at
                else None
            ),
            node_counts=dict(counts),
            sub_dag_runs=sub_runs,
            url=run_url(run.run_id),
        )


class RunPage(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    next: str | None = Field(
        description="Pass as `after` for the next page; null on the last page. Pages stay "
        "stable while new runs are written (keyset paging on started_at, run_id)."
    )


class Payload(BaseModel):
    """A recorded payload as shown: JSON pretty-printed, cut at a preview size
    unless the whole was asked for."""

    text: str | None = Field(description="null when nothing was recorded")
    chars: int = Field(description="Characters in the whole text as shown")
    truncated: bool = Field(description="Only the first part is in `text` (ask with full=1)")
    is_json: bool = Field(description="The payload is JSON (and was pretty-printed)")


class NodeIo(BaseModel):
    """The inputs and outputs of a node, or of the run itself (its source
    inputs and sink outputs) when no node was named."""

    run_id: str
    node: str | None
    input: Payload
    output: Payload


class ErrorAnswer(BaseModel):
    """Every error the API answers with."""

    detail: str


__all__ = ["ErrorAnswer", "NodeIo", "Payload", "RunPage", "RunSummary"]
