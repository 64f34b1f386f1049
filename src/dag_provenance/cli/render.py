"""What the commands print: statuses, times, listings, run trees, JSON.

Listings print rich tables and trees fitted to the terminal's width (rich
reads `$COLUMNS`, else the terminal's size, else assumes 80), or with
`--json` machine-readable JSON only (progress bars and prompts go to stderr).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dag_provenance.formatting import (
    STATUS_ICONS,
    duration,
    error_line,
    seconds_text,
    shorten,
    start_order,
)
from dag_provenance.maintenance import Counts
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.status import FINISHED_STATUSES, NodeStatus, RunStatus

# A run and a node status of the same name are equal (and hash alike), so one
# key serves both.
STATUS_STYLES: dict[str, str] = {
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.RUNNING: "cyan",
    RunStatus.PAUSED: "yellow",
    RunStatus.CANCELLED: "magenta",
    NodeStatus.PENDING: "dim",
    NodeStatus.SKIPPED: "yellow",
}
# The node counts of a run listing, in this order.
_COUNTED_NODE_STATUSES = (
    NodeStatus.COMPLETED,
    NodeStatus.SKIPPED,
    NodeStatus.RUNNING,
    NodeStatus.PENDING,
    NodeStatus.FAILED,
)


# Consoles, JSON and progress bars


def out(width: int | None = None) -> Console:
    """The console on stdout: `width` columns, else the terminal's (rich reads
    `$COLUMNS`, else the size of the terminal on stdin/stdout/stderr, else 80)."""
    return Console(highlight=False, width=width)


def err() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def run_json(run: DagRun) -> Any:
    return run.model_dump(mode="json")


@contextmanager
def progress_bars(shown: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A `(phase, done, total)` callback drawing one bar per phase on stderr,
    when stderr is a terminal and `shown`. Nothing is drawn (not even a blank
    line) until the first call, nor ever into a file or a pipe."""
    bars: list[Progress] = []
    tasks: dict[str, TaskID] = {}
    drawn = shown and err().is_terminal

    def update(phase: str, done: int, total: int) -> None:
        if not drawn:
            return
        if not bars:
            bars.append(
                Progress(
                    TextColumn("{task.description:<16}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=err(),
                    transient=True,
                )
            )
            bars[0].start()
        if phase not in tasks:
            tasks[phase] = bars[0].add_task(phase, total=total)
        bars[0].update(tasks[phase], completed=done, total=total)

    try:
        yield update
    finally:
        if bars:
            bars[0].stop()


# Statuses, times and counts


def status_text(status: str) -> Text:
    icon = STATUS_ICONS.get(status, "?")
    return Text(f"{icon} {status}", style=STATUS_STYLES.get(status, ""))


def when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def took(started: datetime | None, finished: datetime | None, status: str) -> str:
    """How long it took; for what is still going, how long so far (`12s…`)."""
    if started is not None and finished is None and status not in FINISHED_STATUSES:
        return seconds_text((datetime.now(UTC) - started).total_seconds()) + "…"
    return duration(started, finished)


def counts_text(counts: Counts) -> str:
    """What `prune` or `copy_store` counted: `3 runs, 12 node executions, ...`."""
    return (
        f"{counts.runs} runs, {counts.node_executions} node executions, "
        f"{counts.edge_traversals} edge traversals"
    )


# Listings


class Column(NamedTuple):
    """A listing's column. Essential columns are always shown, and only a
    column that `folds` is ever wrapped; the others make room for them,
    rightmost first, on a narrow terminal."""

    header: str
    essential: bool = True
    folds: bool = False


def print_listing(columns: list[Column], rows: list[list[Text]], *, wide: bool = False) -> None:
    """Print `rows` as a borderless table fitted to the terminal: optional
    columns are dropped (rightmost first) until the rest fit whole; if even
    the essential ones do not, the columns that fold give way first. With
    `wide` every column is printed, one line per row, however wide it gets."""
    console = out()
    kept = list(range(len(columns)))
    table = _listing_table(columns, rows, kept)
    if wide:
        out(width=max(console.width, _natural_width(console, table))).print(table)
        return
    optional = [i for i, column in enumerate(columns) if not column.essential]
    while optional and _natural_width(console, table) > console.width:
        kept.remove(optional.pop())
        table = _listing_table(columns, rows, kept)
    console.print(table)


def _natural_width(console: Console, table: Table) -> int:
    """The width `table` takes when nothing in it is cut or wrapped."""
    return Measurement.get(console, console.options.update_width(10**6), table).maximum


def _listing_table(columns: list[Column], rows: list[list[Text]], kept: list[int]) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for i in kept:
        table.add_column(columns[i].header, no_wrap=not columns[i].folds, overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


RUN_COLUMNS = [
    Column("RUN ID"),
    # An nsref can be long (sub-DAGs add to it): the one column that may wrap.
    Column("DAG", folds=True),
    Column("STATUS"),
    Column("STARTED (UTC)"),
    Column("TOOK"),
]


def run_cells(run: DagRun, ids: dict[str, str]) -> list[Text]:
    """The cells of `RUN_COLUMNS` for a run; `ids` maps its id to the id shown."""
    return [
        Text(ids[run.run_id]),
        Text(run.dag_nsref),
        status_text(run.status),
        Text(when(run.started_at).removesuffix(" UTC")),
        Text(took(run.started_at, run.finished_at, run.status)),
    ]


def node_counts(run: DagRun) -> Text:
    """How many of the run's nodes are in each status, as `4✔ 1✘`."""
    counts = Counter(node.status for node in run.nodes.values())
    text = Text()
    for node_status in _COUNTED_NODE_STATUSES:
        if counts.get(node_status):
            if text:
                text.append(" ")
            text.append(
                f"{counts[node_status]}{STATUS_ICONS[node_status]}",
                STATUS_STYLES[node_status],
            )
    return text


# Run trees


def run_tree(run: DagRun, *, io: bool = False, title: str | None = None) -> Tree:
    """A rich Tree of a run: nodes in start order with status, timing, errors,
    edges, and sub-DAG runs under their composite node."""
    head = status_text(run.status)
    head.append("  ")
    head.append(f"{title + '  ' if title else ''}run {run.run_id}", "bold")
    head.append(f"  {run.dag_nsref}")
    timing = took(run.started_at, run.finished_at, run.status)
    head.append(f"  started {when(run.started_at)}", "dim")
    if timing:
        head.append(f"  took {timing}", "dim")
    if run.initiated_by:
        head.append(f"  by {run.initiated_by}", "dim")
    tree = Tree(head)
    if run.parent_run_id and title is None:
        tree.add(f"[dim]parent run {escape(run.parent_run_id)}[/]")
    if io and run.io is not None:
        _add_io(tree, "inputs", run.io.input_json)
        _add_io(tree, "outputs", run.io.output_json)
    for node in sorted(run.nodes.values(), key=start_order):
        branch = tree.add(node_text(node))
        if node.error:
            branch.add(f"[red]error: {escape(error_line(node.error, 100))}[/]")
        if io and node.io is not None:
            _add_io(branch, "in", node.io.input_json)
            _add_io(branch, "out", node.io.output_json)
        if node.edges:
            targets = ", ".join(escape(e.downstream_label) for e in node.edges)
            branch.add(f"[dim]→ {targets}[/]")
        for key, sub_run in sorted((node.sub_dags or {}).items()):
            branch.add(run_tree(sub_run, io=io, title=f"sub-DAG {key}"))
    return tree


def _add_io(tree: Tree, name: str, payload: str | None) -> None:
    if payload is not None:
        tree.add(f"[dim]{name}:[/] {escape(shorten(payload, 100))}")


def node_text(node: NodeExecution) -> Text:
    """A node on one line: status, label, timing, and whether it is a source or sink."""
    text = status_text(node.status)
    text.append("  ")
    text.append(node.node_label, "bold")
    timing = took(node.started_at, node.finished_at, node.status)
    if timing:
        text.append(f"  {timing}", "dim")
    roles = [r for r, on in (("source", node.is_source), ("sink", node.is_sink)) if on]
    if roles:
        text.append(f"  ({', '.join(roles)})", "dim")
    return text
