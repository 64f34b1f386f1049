"""`dag-provenance runs stats`: one DAG's runs per status, and per node its
executions, failure rate, p50/p95 durations and latest failure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.text import Text

from dag_provenance.cli.app import JsonOption, UrlOption, runs_app
from dag_provenance.cli.database import open_store
from dag_provenance.cli.errors import CliError, command
from dag_provenance.cli.render import (
    STATUS_STYLES,
    Column,
    err,
    out,
    print_json,
    print_listing,
    when,
)
from dag_provenance.cli.runs import parse_since
from dag_provenance.formatting import STATUS_ICONS, error_line, seconds_text
from dag_provenance.models import DagStats, NodeStats

STATS_COLUMNS = [
    # Labels and errors can be long: the columns that wrap on a narrow terminal.
    Column("NODE", folds=True),
    Column("EXECUTIONS"),
    Column("FAILURE RATE"),
    Column("P50"),
    Column("P95"),
    Column("LAST FAILURE (UTC)", folds=True),
]
ERROR_WIDTH = 80


@runs_app.command("stats")
@command
def runs_stats(
    dag: Annotated[
        str,
        typer.Option("--dag", help="The DAG's nsref, exactly (its sub-DAG runs are not counted)."),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only runs started since: 30d, 2h, 2025-01-31 (default: all)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Only runs started before: 2025-02-01, 2025-02-01T12:00, or an age."
        ),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """A DAG's runs per status, and per node: executions, failure rate, p50/p95, last failure."""
    started_after = parse_since(since) if since else None
    started_before = parse_since(until) if until else None
    if started_after and started_before and started_before <= started_after:
        raise CliError(
            f"--until ({when(started_before)}) must be after --since ({when(started_after)})"
        )
    with open_store(url) as provenance:
        stats = provenance.dag_stats(
            dag, started_after=started_after, started_before=started_before
        )
    if as_json:
        print_json(stats.model_dump(mode="json"))
        return
    if not stats.runs:
        err().print(Text(f"no runs of DAG {stats.dag_nsref} {window_text(stats)}"))
        return
    console = out()
    console.print(Text(f"DAG {stats.dag_nsref}  {window_text(stats)}", "bold"))
    console.print(runs_line(stats))
    if not stats.nodes:
        console.print("no node executions recorded")
        return
    print_listing(STATS_COLUMNS, [node_cells(node) for node in stats.nodes])


def window_text(stats: DagStats) -> str:
    """The window in words: `started since ... (UTC) before ...`, or all time."""
    after, before = stats.started_after, stats.started_before
    if after is None and before is None:
        return "(all runs)"
    parts = ["started"]
    if after is not None:
        parts.append(f"since {when(after)}")
    if before is not None:
        parts.append(f"before {when(before)}")
    return " ".join(parts)


def runs_line(stats: DagStats) -> Text:
    """`12 runs: ✔ 10 completed  ✘ 2 failed`, statuses without runs left out."""
    line = Text(f"{stats.runs} run{'' if stats.runs == 1 else 's'}:")
    separator = " "
    for status, count in stats.runs_by_status.items():
        if count:
            icon, style = STATUS_ICONS.get(status, "?"), STATUS_STYLES.get(status, "")
            line.append(separator)
            line.append(f"{icon} {count} {status}", style)
            separator = "  "
    return line


def node_cells(node: NodeStats) -> list[Text]:
    """One node's row. Cells are `Text`, never parsed as markup: a label or
    an error holding `[...]` prints as it is."""
    rate = _absent()
    if node.failure_rate is not None:
        rate = Text(f"{node.failure_rate:.1%}", "bold red" if node.failed else "")
    return [
        Text(node.node_label),
        Text(f"{node.executions}"),
        rate,
        _seconds(node.p50_seconds),
        _seconds(node.p95_seconds),
        _failure(node),
    ]


def _seconds(value: float | None) -> Text:
    return _absent() if value is None else Text(seconds_text(value))


def _absent() -> Text:
    """A figure that does not exist (the node has no finished execution)."""
    return Text("-", "dim")


def _failure(node: NodeStats) -> Text:
    failure = node.last_failure
    if failure is None:
        return Text()
    text = Text(_utc(failure.finished_at), "dim")
    line = error_line(failure.error, ERROR_WIDTH)
    if line:
        text.append(f"  {line}", "red")
    return text


def _utc(value: datetime) -> str:
    return when(value).removesuffix(" UTC")
