"""`dag-provenance db ...`: schema migrations and copying a store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dag_provenance import migrate
from dag_provenance.cli.app import JsonOption, UrlOption, db_app
from dag_provenance.cli.database import open_engine, open_store, shown, target_of
from dag_provenance.cli.errors import command
from dag_provenance.cli.render import counts_text, out, print_json, progress_bars
from dag_provenance.maintenance import copy_store


@db_app.command("upgrade")
@command
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    url: UrlOption = None,
) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    with open_engine(url, create=True) as e:
        before = migrate.current_revision(e)
        migrate.upgrade(e, revision)
        after = migrate.current_revision(e)
    where = shown(target_of(url))
    if before == after:
        out().print(f"{escape(where)} is already at {after}")
    else:
        out().print(f"upgraded {escape(where)}: {before or '(empty)'} -> {after}")


@db_app.command("downgrade")
@command
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' drops every table).")],
    url: UrlOption = None,
) -> None:
    """Migrate the schema down to REVISION."""
    with open_engine(url) as e:
        before = migrate.current_revision(e)
        migrate.downgrade(e, revision)
        after = migrate.current_revision(e)
    out().print(
        f"downgraded {escape(shown(target_of(url)))}: {before or '(empty)'} -> {after or '(base)'}"
    )


@db_app.command("current")
@command
def db_current(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Print the revision the database is at."""
    with open_engine(url) as e:
        revision = migrate.current_revision(e)
    if as_json:
        print_json({"current_revision": revision})
    else:
        out().print(revision or "(no revision: empty or unversioned database)")


@db_app.command("history")
@command
def db_history(as_json: JsonOption = False) -> None:
    """List the migrations this version knows, oldest first."""
    rows = migrate.history()
    if as_json:
        print_json([{"revision": r, "down_revision": d, "description": doc} for r, d, doc in rows])
        return
    table = Table("REVISION", "DOWN FROM", "DESCRIPTION")
    for revision, down, doc in rows:
        table.add_row(revision, down or "(base)", escape(doc or ""))
    out().print(table)


@db_app.command("status")
@command
def db_status(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show the current and newest revisions and the migrations still to run."""
    with open_engine(url) as e:
        status = migrate.migration_status(e)
    if as_json:
        print_json(status.model_dump(mode="json"))
        return
    console = out()
    console.print(f"database  {escape(shown(target_of(url)))}")
    console.print(f"current   {status.current_revision or '(none)'}")
    console.print(f"head      {status.head_revision}")
    if status.is_too_new:
        console.print("[bold red]the database is newer than this dag-provenance[/]")
    elif status.is_up_to_date:
        console.print("[green]up to date[/]")
    else:
        console.print(f"[yellow]{len(status.pending)} pending:[/]")
        for pending in status.pending:
            console.print(f"  {pending.revision}  {escape(pending.description)}")


@db_app.command("copy")
@command
def db_copy(
    to: Annotated[str, typer.Option("--to", help="The target database (URL or SQLite path).")],
    url: UrlOption = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Copy every run into another (empty) database; re-run to finish an interrupted copy."""
    with (
        open_store(url) as source,
        open_store(to, create=True) as target,
        progress_bars() as progress,
    ):
        result = copy_store(source, target, batch_size=batch_size, progress=progress)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    present = result.already_present
    out().print(
        f"copied {counts_text(result)} to {escape(shown(to))}"
        + (f" ({counts_text(present)} were already there)" if present.total else "")
    )
