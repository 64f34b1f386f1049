"""`dag-provenance`: the console script. Thin: parses, calls the library, prints.

The database is `--url` (given after the command, else before it), else
`$DAG_PROVENANCE_URL`, else `./dag_provenance.db`. Wherever a command takes a
run id it also takes a unique prefix of one (`lookup.py` states the rule).
Listings print rich tables and trees fitted to the terminal's width (rich reads
`$COLUMNS`, else the terminal's size, else assumes 80), or with `--json`
machine-readable JSON only (progress bars and prompts go to stderr). An error
prints one line on stderr and exits 1; `--debug` shows the traceback instead. The library, and
with it SQLAlchemy and Pydantic, is imported by the commands, not at startup.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, NoReturn, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree
    from sqlalchemy import Engine

    from dag_provenance.models import DagRun, NodeExecution
    from dag_provenance.repository import DagProvenance

URL_ENV = "DAG_PROVENANCE_URL"
DEFAULT_DATABASE = "dag_provenance.db"
FINISHED = ("completed", "failed", "cancelled")
STATUS_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "running": "cyan",
    "paused": "yellow",
    "cancelled": "magenta",
    "pending": "dim",
    "skipped": "yellow",
}
STATUS_ICONS = {
    "completed": "✔",
    "failed": "✘",
    "running": "▶",
    "paused": "⏸",
    "cancelled": "⊘",
    "pending": "…",
    "skipped": "↷",
}
GRAPHVIZ_FORMATS = {".svg": "svg", ".png": "png"}
WATCH_MAX_TIMEOUT_S = 24 * 3600

app = typer.Typer(
    name="dag-provenance",
    help="Inspect, migrate, prune and copy a dag-provenance store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: schema migrations and copying.", no_args_is_help=True)
runs_app = typer.Typer(help="Recorded runs: list, show, watch, draw, prune.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        # Parentheses, not brackets: the help is rich markup, which eats [...].
        help=f"Database: a SQLAlchemy URL or a SQLite file path "
        f"(default: ${URL_ENV}, else ./{DEFAULT_DATABASE})",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Full run ids and every column, one line per run however wide."),
]
RunIdArgument = Annotated[str, typer.Argument(help="The run: its id or a unique prefix of it.")]


class _Invocation:
    """What the options before the command said, for this invocation."""

    debug = False
    url: str | None = None


_secrets: set[str] = set()


class CliError(Exception):
    """A user-facing failure: its message is printed as is."""


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help=f"Database for the command: a SQLAlchemy URL or a SQLite file path; "
            f"a --url after the command wins (default: ${URL_ENV}, else ./{DEFAULT_DATABASE})",
            show_default=False,
        ),
    ] = None,
) -> None:
    _Invocation.debug = debug
    _Invocation.url = url
    _secrets.clear()


P = ParamSpec("P")
R = TypeVar("R")


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn any error escaping a command into one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as e:
            if _Invocation.debug:
                raise
            _fail(e)

    return wrapper


def _fail(e: BaseException) -> NoReturn:
    from dag_provenance.errors import ProvenanceError

    if isinstance(e, CliError | ProvenanceError):
        message = str(e)
    elif isinstance(e, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = f"{type(e).__name__}: {e} (--debug shows the traceback)"
    message = " ".join(message.split()) or type(e).__name__
    for secret in _secrets:
        message = message.replace(secret, "***")
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(1)


# Where the database is


def _target(url: str | None) -> str:
    """The database: the command's --url, else the one before the command, else
    the environment's, else the default file."""
    return url or _Invocation.url or os.environ.get(URL_ENV) or DEFAULT_DATABASE


def _is_url(target: str) -> bool:
    return "://" in target


def _sqlite_file(target: str) -> Path | None:
    if not _is_url(target):
        return Path(target)
    from sqlalchemy.engine import make_url

    parsed = make_url(target)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(str(parsed.database))
    return None


def shown(target: str) -> str:
    """The database as it may be printed: never with its password."""
    if not _is_url(target):
        return target
    from sqlalchemy.engine import make_url

    parsed = make_url(target)
    if parsed.password:
        _secrets.add(str(parsed.password))
    return parsed.render_as_string(hide_password=True)


def _existing(target: str) -> str:
    shown(target)
    file = _sqlite_file(target)
    if file is not None and not file.exists():
        raise CliError(
            f"no database at {file}: create one with `dag-provenance db upgrade` "
            "(or `dag-provenance demo`), or give --url"
        )
    return target


@contextmanager
def store(url: str | None, *, create: bool = False) -> Iterator[DagProvenance]:
    """The store at `url`; an existing one unless `create` (which also migrates)."""
    from dag_provenance.repository import DagProvenance

    target = _target(url)
    if not create:
        _existing(target)
    else:
        shown(target)
    provenance = DagProvenance(target, migrate=create)
    try:
        yield provenance
    finally:
        provenance.close()


@contextmanager
def engine(url: str | None, *, create: bool = False) -> Iterator[Engine]:
    from dag_provenance.engine import make_engine

    target = _target(url)
    if not create:
        _existing(target)
    else:
        shown(target)
    made = make_engine(target)
    try:
        yield made
    finally:
        made.dispose()


# Output


def out(width: int | None = None) -> Console:
    """The console on stdout: `width` columns, else the terminal's (rich reads
    `$COLUMNS`, else the size of the terminal on stdin/stdout/stderr, else 80)."""
    from rich.console import Console

    return Console(highlight=False, width=width)


def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A `(phase, done, total)` callback drawing one bar per phase on stderr.
    Nothing is drawn (not even a blank line) until the first call."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    bars: list[Progress] = []
    tasks: dict[str, TaskID] = {}

    def update(phase: str, done: int, total: int) -> None:
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


def _plain(value: str) -> Text:
    from rich.text import Text

    return Text(value)


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
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(10**6), table).maximum


def _listing_table(columns: list[Column], rows: list[list[Text]], kept: list[int]) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for i in kept:
        table.add_column(columns[i].header, no_wrap=not columns[i].folds, overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def status_text(status: str) -> Text:
    from rich.text import Text

    icon = STATUS_ICONS.get(status, "?")
    return Text(f"{icon} {status}", style=STATUS_STYLES.get(status, ""))


def when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def took(started: datetime | None, finished: datetime | None, status: str) -> str:
    from dag_provenance.formatting import duration, seconds_text

    if started is not None and finished is None and status not in FINISHED:
        return seconds_text((datetime.now(UTC) - started).total_seconds()) + "…"
    return duration(started, finished)


def run_json(run: DagRun) -> Any:
    return run.model_dump(mode="json")


def parse_since(value: str) -> datetime:
    """`30m`, `2h`, `3d`, `1w` ago, or an ISO date/datetime (UTC when naive)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if match:
        amount, unit = float(match[1]), match[2]
        seconds = amount * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither an age (30m, 2h, 3d, 1w) nor an ISO date (2025-01-31)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# db


@db_app.command("upgrade")
@command
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    url: UrlOption = None,
) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    from dag_provenance import migrate

    with engine(url, create=True) as e:
        before = migrate.current_revision(e)
        migrate.upgrade(e, revision)
        after = migrate.current_revision(e)
    where = shown(_target(url))
    if before == after:
        out().print(f"{_esc(where)} is already at {after}")
    else:
        out().print(f"upgraded {_esc(where)}: {before or '(empty)'} -> {after}")


@db_app.command("downgrade")
@command
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' drops every table).")],
    url: UrlOption = None,
) -> None:
    """Migrate the schema down to REVISION."""
    from dag_provenance import migrate

    with engine(url) as e:
        before = migrate.current_revision(e)
        migrate.downgrade(e, revision)
        after = migrate.current_revision(e)
    out().print(
        f"downgraded {_esc(shown(_target(url)))}: {before or '(empty)'} -> {after or '(base)'}"
    )


@db_app.command("current")
@command
def db_current(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Print the revision the database is at."""
    from dag_provenance import migrate

    with engine(url) as e:
        revision = migrate.current_revision(e)
    if as_json:
        print_json({"current_revision": revision})
    else:
        out().print(revision or "(no revision: empty or unversioned database)")


@db_app.command("history")
@command
def db_history(as_json: JsonOption = False) -> None:
    """List the migrations this version knows, oldest first."""
    from rich.table import Table

    from dag_provenance import migrate

    rows = migrate.history()
    if as_json:
        print_json([{"revision": r, "down_revision": d, "description": doc} for r, d, doc in rows])
        return
    table = Table("REVISION", "DOWN FROM", "DESCRIPTION")
    for revision, down, doc in rows:
        table.add_row(revision, down or "(base)", _esc(doc or ""))
    out().print(table)


@db_app.command("status")
@command
def db_status(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show the current and newest revisions and the migrations still to run."""
    from dag_provenance import migrate

    with engine(url) as e:
        status = migrate.migration_status(e)
    if as_json:
        print_json(status.model_dump(mode="json"))
        return
    console = out()
    console.print(f"database  {_esc(shown(_target(url)))}")
    console.print(f"current   {status.current_revision or '(none)'}")
    console.print(f"head      {status.head_revision}")
    if status.is_too_new:
        console.print("[bold red]the database is newer than this dag-provenance[/]")
    elif status.is_up_to_date:
        console.print("[green]up to date[/]")
    else:
        console.print(f"[yellow]{len(status.pending)} pending:[/]")
        for pending in status.pending:
            console.print(f"  {pending.revision}  {_esc(pending.description)}")


@db_app.command("copy")
@command
def db_copy(
    to: Annotated[str, typer.Option("--to", help="The target database (URL or SQLite path).")],
    url: UrlOption = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Copy every run into another (empty) database; re-run to finish an interrupted copy."""
    from dag_provenance.maintenance import copy_store

    with store(url) as source, store(to, create=True) as target, progress_bars() as progress:
        result = copy_store(source, target, batch_size=batch_size, progress=progress)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    present = result.already_present
    out().print(
        f"copied {result.runs} runs, {result.node_executions} node executions, "
        f"{result.edge_traversals} edge traversals to {_esc(shown(to))}"
        + (
            f" ({present.runs} runs, {present.node_executions} node executions, "
            f"{present.edge_traversals} edge traversals were already there)"
            if present.total
            else ""
        )
    )


# runs


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
    with store(url) as provenance:
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
        *_RUN_COLUMNS,
        Column("NODES", essential=False),
        Column("INITIATED BY", essential=False),
    ]
    rows = [
        [*_run_cells(run, ids), _node_counts(run), _plain(run.initiated_by or "")] for run in runs
    ]
    print_listing(columns, rows, wide=wide)


_RUN_COLUMNS = [
    Column("RUN ID"),
    # An nsref can be long (sub-DAGs add to it): the one column that may wrap.
    Column("DAG", folds=True),
    Column("STATUS"),
    Column("STARTED (UTC)"),
    Column("TOOK"),
]


def _shown_ids(provenance: DagProvenance, run_ids: list[str], wide: bool) -> dict[str, str]:
    """Each id as a listing shows it: whole with --wide, else its short id."""
    from dag_provenance.lookup import short_run_ids

    return {rid: rid for rid in run_ids} if wide else short_run_ids(provenance, run_ids)


def _run_cells(run: DagRun, ids: dict[str, str]) -> list[Text]:
    """The cells of `_RUN_COLUMNS` for a run."""
    return [
        _plain(ids[run.run_id]),
        _plain(run.dag_nsref),
        status_text(run.status),
        _plain(when(run.started_at).removesuffix(" UTC")),
        _plain(took(run.started_at, run.finished_at, run.status)),
    ]


def _node_counts(run: DagRun) -> Text:
    from rich.text import Text

    counts: dict[str, int] = {}
    for node in run.nodes.values():
        counts[node.status] = counts.get(node.status, 0) + 1
    text = Text()
    for node_status in ("completed", "skipped", "running", "pending", "failed"):
        if counts.get(node_status):
            if text:
                text.append(" ")
            text.append(
                f"{counts[node_status]}{STATUS_ICONS[node_status]}",
                STATUS_STYLES[node_status],
            )
    return text


def _get_run(provenance: DagProvenance, run_id: str) -> DagRun:
    from dag_provenance.errors import RunNotFoundError

    run = provenance.inspect_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def _resolve(provenance: DagProvenance, ref: str) -> str:
    """The full id of the run `ref` names: its id or a unique prefix of it.
    Refuses an unknown or ambiguous one (reads would just come back empty)."""
    from dag_provenance.lookup import resolve_run_id

    return resolve_run_id(provenance, ref)


def _load_io_tree(provenance: DagProvenance, run: DagRun) -> None:
    provenance.load_io(run)
    for node in run.nodes.values():
        for sub_run in (node.sub_dags or {}).values():
            _load_io_tree(provenance, sub_run)


def run_tree(run: DagRun, *, io: bool = False, title: str | None = None) -> Tree:
    """A rich Tree of a run: nodes in start order with status, timing, errors,
    edges, and sub-DAG runs under their composite node."""
    from rich.tree import Tree

    from dag_provenance.formatting import error_line, shorten

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
        tree.add(f"[dim]parent run {_esc(run.parent_run_id)}[/]")
    if io and run.io is not None:
        _add_io(tree, "inputs", run.io.input_json, shorten)
        _add_io(tree, "outputs", run.io.output_json, shorten)
    nodes = sorted(run.nodes.values(), key=_node_order)
    for node in nodes:
        branch = tree.add(_node_text(node))
        if node.error:
            branch.add(f"[red]error: {_esc(error_line(node.error, 100))}[/]")
        if io and node.io is not None:
            _add_io(branch, "in", node.io.input_json, shorten)
            _add_io(branch, "out", node.io.output_json, shorten)
        if node.edges:
            targets = ", ".join(_esc(e.downstream_label) for e in node.edges)
            branch.add(f"[dim]→ {targets}[/]")
        for key, sub_run in sorted((node.sub_dags or {}).items()):
            branch.add(run_tree(sub_run, io=io, title=f"sub-DAG {key}"))
    return tree


def _add_io(tree: Tree, name: str, payload: str | None, shorten: Callable[[str, int], str]) -> None:
    if payload is not None:
        tree.add(f"[dim]{name}:[/] {_esc(shorten(payload, 100))}")


def _node_order(node: NodeExecution) -> tuple[bool, datetime, str]:
    started = node.started_at or datetime.max.replace(tzinfo=UTC)
    return (node.started_at is None, started, node.node_label)


def _node_text(node: NodeExecution) -> Text:
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


@runs_app.command("show")
@command
def runs_show(
    run_id: RunIdArgument,
    io: Annotated[bool, typer.Option("--io", help="Add inputs and outputs (shortened).")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run as a tree: nodes, timing, errors, edges and sub-DAG runs."""
    with store(url) as provenance:
        run = _get_run(provenance, _resolve(provenance, run_id))
        if io:
            _load_io_tree(provenance, run)
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
    with store(url) as provenance:
        run_id = _resolve(provenance, run_id)
        children = provenance.get_child_runs(run_id)
        every_id = sorted({run_id, *(r.run_id for r in children)})
        ids = {} if as_json else _shown_ids(provenance, every_id, wide)
    if as_json:
        print_json([run_json(r) for r in children])
        return
    if not children:
        err().print(f"run {_esc(run_id)} has no child runs")
        return
    columns = [_RUN_COLUMNS[0], Column("PARENT", essential=False), *_RUN_COLUMNS[1:]]
    rows = []
    for run in children:
        run_cell, *rest = _run_cells(run, ids)
        rows.append([run_cell, _plain(ids[run.parent_run_id or run_id]), *rest])
    print_listing(columns, rows, wide=wide)


@runs_app.command("pending")
@command
def runs_pending(
    run_id: RunIdArgument,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the run's nodes that are pending, running or failed (what a restart re-runs)."""
    with store(url) as provenance:
        run_id = _resolve(provenance, run_id)
        labels = provenance.get_pending_nodes(run_id)
    if as_json:
        print_json(labels)
    elif labels:
        for label in labels:
            typer.echo(label)
    else:
        err().print(f"run {_esc(run_id)} has no pending nodes")


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
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    with store(url) as provenance:
        run_id = _resolve(provenance, run_id)
        run = _get_run(provenance, run_id)
        seen = run.latest_update()
        events: list[Text] = []
        deadline = time.monotonic() + timeout

        def view() -> Group:
            return Group(run_tree(run), *events[-10:])

        with Live(view(), console=out(), auto_refresh=False) as live:
            while run.status not in FINISHED:
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
                    for node in sorted(run.nodes_changed_since(seen), key=_node_order):
                        event = Text(f"{when(latest)}  ", "dim")
                        event.append_text(_node_text(node))
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
    from dag_provenance.graph import to_dot, to_mermaid

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
    with store(url) as provenance:
        run = _get_run(provenance, _resolve(provenance, run_id))
    source = to_dot(run) if chosen == "dot" else to_mermaid(run)
    if out_file is None:
        typer.echo(source, nl=False)
        return
    render(source, out_file, render_format)
    err().print(f"wrote {_esc(str(out_file))}")


def render(dot_source: str, out_file: Path, render_format: str) -> None:
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
    from dag_provenance.maintenance import PruneResult, prune

    cutoff = parse_since(older_than)
    with store(url) as provenance:
        planned = prune(provenance, cutoff, status, dry_run=True, batch_size=batch_size)
        result = planned
        if not dry_run and planned.runs:
            if not yes and not typer.confirm(
                f"Delete {_counts_text(planned)} (runs started before {when(cutoff)})?",
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
    out().print(f"{verb} {_counts_text(result)} (runs started before {when(cutoff)})")


def _counts_text(counts: Any) -> str:
    return (
        f"{counts.runs} runs, {counts.node_executions} node executions, "
        f"{counts.edge_traversals} edge traversals"
    )


# demo


@app.command("demo")
@command
def demo(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Record a small real run tree (fan-out, a failing node, a sub-DAG, a replay) and show it."""
    from dag_provenance.demo import record_demo

    with store(url, create=True) as provenance:
        runs = record_demo(provenance)
        failed = _get_run(provenance, runs.failed_run_id)
        replay = _get_run(provenance, runs.replay_run_id)
    if as_json:
        print_json(runs.model_dump(mode="json"))
        return
    where = shown(_target(url))
    console = out()
    console.print(
        f"Recorded the demo in {_esc(where)}: run {failed.run_id} failed in `publish`; "
        f"its replay {replay.run_id} re-ran only `publish` and completed.\n"
    )
    console.print(run_tree(failed))
    console.print(run_tree(replay))
    console.print(
        "\nNext: [bold]dag-provenance runs list[/], "
        f"[bold]dag-provenance runs graph {failed.run_id} --out run.svg[/]"
    )


def main() -> None:
    """The console script's entry point."""
    app()


if __name__ == "__main__":
    main()
