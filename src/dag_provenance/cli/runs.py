"""`dag-provenance runs ...`: list, show, watch, draw and prune recorded runs."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from dag_provenance import validate
from dag_provenance.cli.app import JsonOption, RunIdArgument, UrlOption, WideOption, runs_app
from dag_provenance.cli.database import named_run, open_store
from dag_provenance.cli.errors import CliError, command
from dag_provenance.cli.render import (
    RUN_COLUMNS,
    Column,
    counts_text,
    err,
    node_counts,
    node_text,
    out,
    print_json,
    print_listing,
    progress_bars,
    run_cells,
    run_json,
    run_tree,
    when,
)
from dag_provenance.errors import InvalidInputError
from dag_provenance.formatting import start_order
from dag_provenance.graph import to_dot, to_mermaid
from dag_provenance.lineage.tree import load_tree_io
from dag_provenance.lookup import resolve_run_id, short_run_ids
from dag_provenance.maintenance import PruneResult, prune
from dag_provenance.repository import DagProvenance
from dag_provenance.status import FINISHED_STATUSES

GRAPHVIZ_FORMATS = {".svg": "svg", ".png": "png"}
WATCH_MAX_TIMEOUT_S = 24 * 3600


def parse_since(value: str) -> datetime:
    """`30m`, `2h`, `3d`, `1w` ago, or an ISO date/datetime (UTC when naive)."""
    try:
        return validate.moment("", value)
    except InvalidInputError as e:
        raise typer.BadParameter(str(e)) from None


def _shown_ids(provenance: DagProvenance, run_ids: list[str], wide: bool) -> dict[str, str]:
    """Each id as a listing shows it: whole with --wide, else its short id."""
    return {rid: rid for rid in run_ids} if wide else short_run_ids(provenance, run_ids)


@runs_app.command("list")
@command
def runs_list(
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only runs with this status (repeatable).")
    ] = None,
    dag: Annotated[str | None, typer.Option("--dag", help="Only runs of this DAG nsref.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only runs started since: 2h, 3d, 2025-01-31.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0)] = 20,
    url: UrlOption = None,
    wide: WideOption = False,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    started_after = parse_since(since) if since else None
    with open_store(url) as provenance:
        runs = provenance.get_recent_runs(
            limit, statuses=status or None, dag_nsref=dag, started_after=started_after
        )
        ids = {} if as_json else _shown_ids(provenance, [r.run_id for r in runs], wide)
    if as_json:
        print_json([run_json(r) for r in runs])
        return
    if not runs:
        err().print("no runs")
        return
    columns = [
        *RUN_COLUMNS,
        Column("NODES", essential=False),
        Column("INITIATED BY", essential=False),
    ]
    rows = [[*run_cells(run, ids), node_counts(run), Text(run.initiated_by or "")] for run in runs]
    print_listing(columns, rows, wide=wide)


@runs_app.command("show")
@command
def runs_show(
    run_id: RunIdArgument,
    io: Annotated[bool, typer.Option("--io", help="Add inputs and outputs (shortened).")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run as a tree: nodes, timing, errors, edges and sub-DAG runs."""
    with open_store(url) as provenance:
        run = named_run(provenance, run_id)
        if io:
            load_tree_io(provenance, run)
    if as_json:
        print_json(run_json(run))
    else:
        out().print(run_tree(run, io=io))


@runs_app.command("children")
@command
def runs_children(
    run_id: Annotated[str, typer.Argument(help="The parent run: its id or a unique prefix of it.")],
    url: UrlOption = None,
    wide: WideOption = False,
    as_json: JsonOption = False,
) -> None:
    """List every descendant run of a run (sub-DAG runs, theirs, ...)."""
    with open_store(url) as provenance:
        # Resolved first: an unknown or ambiguous id is refused, not listed as childless.
        run_id = resolve_run_id(provenance, run_id)
        children = provenance.get_child_runs(run_id)
        every_id = sorted({run_id, *(r.run_id for r in children)})
        ids = {} if as_json else _shown_ids(provenance, every_id, wide)
    if as_json:
        print_json([run_json(r) for r in children])
        return
    if not children:
        err().print(f"run {escape(run_id)} has no child runs")
        return
    columns = [RUN_COLUMNS[0], Column("PARENT", essential=False), *RUN_COLUMNS[1:]]
    rows = []
    for run in children:
        run_cell, *rest = run_cells(run, ids)
        rows.append([run_cell, Text(ids[run.parent_run_id or run_id]), *rest])
    print_listing(columns, rows, wide=wide)


@runs_app.command("pending")
@command
def runs_pending(
    run_id: RunIdArgument,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the run's nodes that are pending, running or failed (what a restart re-runs)."""
    with open_store(url) as provenance:
        # Resolved first: an unknown or ambiguous id is refused, not reported as done.
        run_id = resolve_run_id(provenance, run_id)
        labels = provenance.get_pending_nodes(run_id)
    if as_json:
        print_json(labels)
    elif labels:
        for label in labels:
            typer.echo(label)
    else:
        err().print(f"run {escape(run_id)} has no pending nodes")


@runs_app.command("watch")
@command
def runs_watch(
    run_id: RunIdArgument,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between refreshes.")
    ] = 1.0,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0, max=WATCH_MAX_TIMEOUT_S, help="Give up after this many seconds."
        ),
    ] = 3600,
    url: UrlOption = None,
) -> None:
    """Follow a run live until it finishes (exit 1 if --timeout passes first)."""
    with open_store(url) as provenance:
        run = named_run(provenance, run_id)
        run_id = run.run_id
        seen = run.latest_update()
        events: list[Text] = []
        deadline = time.monotonic() + timeout

        def view() -> Group:
            return Group(run_tree(run), *events[-10:])

        with Live(view(), console=out(), auto_refresh=False) as live:
            while run.status not in FINISHED_STATUSES:
                if time.monotonic() >= deadline:
                    live.update(view(), refresh=True)
                    raise CliError(
                        f"run {run_id} is still {run.status} after {timeout:g}s (--timeout)"
                    )
                time.sleep(interval)
                # Read only what changed since the last refresh.
                run.apply_changes(provenance.changes_since(run_id, seen))
                latest = run.latest_update()
                if latest > seen:
                    for node in sorted(run.nodes_changed_since(seen), key=start_order):
                        event = Text(f"{when(latest)}  ", "dim")
                        event.append_text(node_text(node))
                        events.append(event)
                    seen = latest
                # Elapsed times of unfinished nodes move even when nothing was written.
                live.update(view(), refresh=True)


@runs_app.command("graph")
@command
def runs_graph(
    run_id: RunIdArgument,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="mermaid or dot (default: mermaid; dot with --out)", show_default=False
        ),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Render to FILE.svg or FILE.png with Graphviz.")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Print the run's graph as Mermaid or Graphviz DOT, or render it to SVG/PNG."""
    chosen = fmt or ("dot" if out_file else "mermaid")
    render_format = "svg"
    if chosen not in ("mermaid", "dot"):
        raise typer.BadParameter(f"--format must be mermaid or dot, not {chosen!r}")
    if out_file is not None:
        if chosen != "dot":
            raise CliError("--out renders with Graphviz: use --format dot (or leave --format out)")
        if out_file.suffix.lower() not in GRAPHVIZ_FORMATS:
            raise CliError(f"--out must end in .svg or .png, not {out_file.name!r}")
        render_format = GRAPHVIZ_FORMATS[out_file.suffix.lower()]
    with open_store(url) as provenance:
        run = named_run(provenance, run_id)
    source = to_dot(run) if chosen == "dot" else to_mermaid(run)
    if out_file is None:
        typer.echo(source, nl=False)
        return
    _graphviz(source, out_file, render_format)
    err().print(f"wrote {escape(str(out_file))}")


def _graphviz(dot_source: str, out_file: Path, render_format: str) -> None:
    """Render DOT source to `out_file` with Graphviz's `dot` program."""
    dot = shutil.which("dot")
    if dot is None:
        raise CliError(
            "Graphviz's `dot` program is not installed: install it (Debian/Ubuntu: "
            "`apt-get install graphviz`; macOS: `brew install graphviz`), or print the "
            "source with `--format dot`"
        )
    done = subprocess.run(
        [dot, f"-T{render_format}", "-o", str(out_file)],
        input=dot_source.encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise CliError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")


@runs_app.command("prune")
@command
def runs_prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age (30d, 12h, 2w) or ISO date to prune before.")
    ],
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only trees whose top run has this status (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete finished run trees started before a moment, with their nodes and edges."""
    cutoff = parse_since(older_than)
    with open_store(url) as provenance:
        planned = prune(provenance, cutoff, status, dry_run=True, batch_size=batch_size)
        result = planned
        if not dry_run and planned.runs:
            if not yes and not typer.confirm(
                f"Delete {counts_text(planned)} (runs started before {when(cutoff)})?",
                err=True,
            ):
                raise CliError("nothing deleted (not confirmed; --yes skips the question)")
            with progress_bars() as bar:

                def progress(totals: PruneResult) -> None:
                    bar("pruning runs", totals.runs, planned.runs)

                result = prune(provenance, cutoff, status, batch_size=batch_size, progress=progress)
    if as_json:
        print_json({**result.model_dump(mode="json"), "older_than": cutoff.isoformat()})
        return
    verb = "would delete" if dry_run else "deleted"
    out().print(f"{verb} {counts_text(result)} (runs started before {when(cutoff)})")
