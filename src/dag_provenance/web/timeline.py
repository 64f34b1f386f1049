"""The run's timeline (a Gantt chart): where each bar goes.

One row per node execution, in start order, each sub-DAG run's rows right
under the composite node that started it (a row for the sub-DAG run itself,
then its nodes, indented). Times run left to right from the root run's start
to its end (to now while it runs). The template (`_timeline.html`) draws the
rows as SVG whose geometry is in presentation attributes (`x`, `width`), which
the Content-Security-Policy allows, and whose colours come from the status
classes of the style sheet; every recorded string in it is autoescaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dag_provenance.formatting import duration, seconds_text, shorten, start_order
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.status import NodeStatus

LABEL_WIDTH = 300
CHART_WIDTH = 700
ROW_HEIGHT = 20
BAR_HEIGHT = 12
AXIS_HEIGHT = 24
INDENT = 14
MIN_BAR_WIDTH = 2.0
LABEL_CHARS = 38
TICKS = 5


@dataclass(frozen=True)
class Row:
    """A row: a node execution's bar (`kind == "bar"`), or the span of a
    sub-DAG run above its nodes (`kind == "run"`)."""

    kind: str
    run_id: str
    label: str
    """What the row is called: the node label, or the sub-DAG key."""
    shown_label: str
    status: str
    depth: int
    y: float
    x: float
    width: float
    title: str
    """The tooltip: full label, status and timing."""
    open_ended: bool = False
    """Still going: the bar ends at the time the page was drawn."""
    not_started: bool = False

    @property
    def text_x(self) -> float:
        return 6 + self.depth * INDENT

    @property
    def bar_y(self) -> float:
        return self.y + (ROW_HEIGHT - BAR_HEIGHT) / 2

    @property
    def text_y(self) -> float:
        return self.y + ROW_HEIGHT / 2 + 4


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Timeline:
    rows: list[Row]
    ticks: list[Tick]
    width: float
    height: float
    chart_x: float
    bars: int


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.span = max((end - start).total_seconds(), 1e-3)

    def x(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.span
        return LABEL_WIDTH + max(0.0, min(1.0, offset)) * CHART_WIDTH


def _end_of(run: DagRun, now: datetime) -> datetime:
    ends = [now if run.finished_at is None else run.finished_at]
    for each in run.walk():
        for node in each.nodes.values():
            ends.extend(t for t in (node.started_at, node.finished_at) if t is not None)
    return max(ends)


def layout(run: DagRun, now: datetime) -> Timeline:
    """The timeline of `run` and its sub-DAG runs, drawn at `now`."""
    scale = _Scale(run.started_at, _end_of(run, now))
    rows: list[Row] = []
    _add_nodes(rows, run, 0, scale, now)
    ticks = [
        Tick(
            LABEL_WIDTH + CHART_WIDTH * i / (TICKS - 1),
            "+" + seconds_text(scale.span * i / (TICKS - 1)) if i else "0",
        )
        for i in range(TICKS)
    ]
    return Timeline(
        rows=rows,
        ticks=ticks,
        width=LABEL_WIDTH + CHART_WIDTH + 40,
        height=AXIS_HEIGHT + ROW_HEIGHT * len(rows) + 6,
        chart_x=LABEL_WIDTH,
        bars=sum(1 for r in rows if r.kind == "bar"),
    )


def _y(rows: list[Row]) -> float:
    return AXIS_HEIGHT + ROW_HEIGHT * len(rows)


def _add_nodes(rows: list[Row], run: DagRun, depth: int, scale: _Scale, now: datetime) -> None:
    for node in sorted(run.nodes.values(), key=start_order):
        rows.append(_bar(node, run, depth, _y(rows), scale, now))
        for key, sub_run in sorted((node.sub_dags or {}).items()):
            rows.append(_run_span(sub_run, key, depth + 1, _y(rows), scale, now))
            _add_nodes(rows, sub_run, depth + 2, scale, now)


def _bar(
    node: NodeExecution, run: DagRun, depth: int, y: float, scale: _Scale, now: datetime
) -> Row:
    label = node.node_label
    open_ended = node.started_at is not None and (
        node.finished_at is None and node.status == NodeStatus.RUNNING
    )
    if node.started_at is None:
        x, width = scale.x(run.started_at), MIN_BAR_WIDTH
        title = f"{label}\n{node.status} (not started)"
    else:
        end = node.finished_at or now
        x = scale.x(node.started_at)
        width = max(MIN_BAR_WIDTH, scale.x(end) - x)
        took = duration(node.started_at, end)
        title = f"{label}\n{node.status} · {took}{'…' if open_ended else ''}"
        if node.error:
            title += "\n" + shorten(node.error, 200)
    return Row(
        kind="bar",
        run_id=run.run_id,
        label=label,
        shown_label=_shown(label, depth),
        status=node.status,
        depth=depth,
        y=y,
        x=x,
        width=width,
        title=title,
        open_ended=open_ended,
        not_started=node.started_at is None,
    )


def _run_span(run: DagRun, key: str, depth: int, y: float, scale: _Scale, now: datetime) -> Row:
    end = run.finished_at or now
    x = scale.x(run.started_at)
    title = f"sub-DAG {key}\nrun {run.run_id}\n{run.status} · {duration(run.started_at, end)}"
    return Row(
        kind="run",
        run_id=run.run_id,
        label=key,
        shown_label=_shown(f"▸ {key}", depth),
        status=run.status,
        depth=depth,
        y=y,
        x=x,
        width=max(MIN_BAR_WIDTH, scale.x(end) - x),
        title=title,
        open_ended=run.finished_at is None,
    )


def _shown(label: str, depth: int) -> str:
    return shorten(label, max(8, LABEL_CHARS - depth * 2))


__all__ = ["Row", "Tick", "Timeline", "layout"]
