"""`dag-provenance runs export`: run trees in the open lineage standards.

One run's whole tree (RUN_ID) as OpenLineage run events or as one W3C PROV
document (PROV-JSON, PROV-N, PROV-O), or every tree whose root run started
since a moment (`--since`) as OpenLineage events. Events are written one
JSON object a line, or with `--send` emitted through the OpenLineage client,
configured as it always is (`OPENLINEAGE_URL`, `openlineage.yml`,
`OPENLINEAGE__TRANSPORT__...`).

The `[lineage]` extra is imported when the command runs, never before, so
the other commands work without it and this one says how to install it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from dag_provenance.cli.app import UrlOption, runs_app
from dag_provenance.cli.database import named_run, open_store
from dag_provenance.cli.errors import CliError, command, hide
from dag_provenance.cli.render import err, out, progress_bars, when
from dag_provenance.cli.runs import parse_since
from dag_provenance.models import DagRun
from dag_provenance.protocol import RunCursor
from dag_provenance.repository import DagProvenance

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import RunEvent

OPENLINEAGE = "openlineage"

PAGE_SIZE = 50
"""Runs read at a time while listing the root runs of `--since` (a page
loads its runs' trees, dropped once their roots' ids are taken)."""

CLOSE_TIMEOUT_S = 30.0
"""How long closing the OpenLineage client may wait for events it still holds
(a transport that sends in the background)."""

Write = Callable[[str], object]


@runs_app.command("export")
@command
def runs_export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="openlineage (one JSON event a line), prov-json, prov-n or prov-o (Turtle).",
            show_default=False,
        ),
    ],
    run_id: Annotated[
        str | None,
        typer.Argument(
            help="The run: its id or a unique prefix of it; its whole tree is exported.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Instead of a RUN_ID: every run tree whose root run started since then "
            "(2h, 7d, 2025-01-31), as OpenLineage events.",
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", help="With --since: only trees whose root run has this status (repeatable)."
        ),
    ] = None,
    dag: Annotated[
        str | None,
        typer.Option("--dag", help="With --since: only trees whose root run is of this DAG nsref."),
    ] = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Emit the events through the OpenLineage client (configured by OPENLINEAGE_URL, "
            "openlineage.yml or OPENLINEAGE__TRANSPORT__...) instead of printing them.",
        ),
    ] = False,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write to FILE, not stdout (with --send: a copy of the events)."
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            help="The OpenLineage namespace of the jobs (default: dag-provenance).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Export run trees as OpenLineage events (one JSON object a line) or a W3C PROV document."""
    formats = _formats()
    if fmt not in formats:
        raise typer.BadParameter(f"--format must be one of {', '.join(formats)}, not {fmt!r}")
    if out_file is not None and out_file.is_dir():
        raise CliError(f"--out {out_file} is a directory: give a file")
    chosen = _chosen(run_id, since, status, dag)
    if fmt == OPENLINEAGE:
        _export_openlineage(chosen, status, dag, namespace, send, out_file, url)
        return
    if not isinstance(chosen, str):
        raise CliError(
            f"--since exports OpenLineage events (--format {OPENLINEAGE}); "
            f"a {fmt} document holds one run tree: give its RUN_ID"
        )
    if send:
        raise CliError(f"--send sends OpenLineage events: give --format {OPENLINEAGE}")
    if namespace is not None:
        raise CliError(f"--namespace names OpenLineage jobs: it does not apply to {fmt}")
    _export_prov(chosen, fmt, out_file, url)


def _chosen(
    run_id: str | None, since: str | None, status: Sequence[str] | None, dag: str | None
) -> str | datetime:
    """What to export: the tree of a RUN_ID, or those whose root run started
    since a moment (`--since`, narrowed by `--status` and `--dag`)."""
    if run_id is not None and since is not None:
        raise CliError("give a RUN_ID or --since, not both")
    if run_id is not None:
        if status or dag is not None:
            raise CliError("--status and --dag choose the run trees of --since; a RUN_ID names one")
        return run_id
    if since is None:
        raise CliError(
            "give a RUN_ID (to export that run's tree) or --since "
            "(every run tree whose root run started since then)"
        )
    return parse_since(since)


def _formats() -> tuple[str, ...]:
    # The PROV module imports prov itself only when it is used, so the formats
    # can be checked without the extra.
    from dag_provenance.lineage.prov import PROV_FORMATS

    return (OPENLINEAGE, *PROV_FORMATS)


# PROV


def _export_prov(run_id: str, fmt: str, out_file: Path | None, url: str | None) -> None:
    """Write the PROV document of the run's whole tree, payloads included."""
    from dag_provenance.lineage import load_tree_io, serialize_prov, to_prov

    with open_store(url) as provenance:
        tree = load_tree_io(provenance, named_run(provenance, run_id))
    text = serialize_prov(to_prov(tree), fmt)
    with _output(out_file) as write:
        write(text if text.endswith("\n") else text + "\n")
    if out_file is not None:
        err().print(f"wrote the {fmt} document to {escape(str(out_file))}")


# OpenLineage


def _export_openlineage(
    chosen: str | datetime,
    statuses: Sequence[str] | None,
    dag: str | None,
    namespace: str | None,
    send: bool,
    out_file: Path | None,
    url: str | None,
) -> None:
    """Write or send (or both) the OpenLineage events of the chosen trees."""
    # The extra, imported only now: without it this is one line saying how to
    # install it.
    from dag_provenance.lineage.openlineage import DEFAULT_NAMESPACE

    events = _Events(DEFAULT_NAMESPACE if namespace is None else namespace)
    client = _lineage_client() if send else None
    delivered = True
    try:
        with open_store(url) as provenance:

            def export(write: Write | None) -> _Tally:
                trees, count = _trees_of(provenance, chosen, statuses, dag)
                return events.export(provenance, trees, count, write, client)

            if client is not None and out_file is None:
                tally = export(None)
            else:
                with _output(out_file) as write:
                    tally = export(write)
    finally:
        if client is not None:
            delivered = client.close(CLOSE_TIMEOUT_S)
    if out_file is not None:
        err().print(
            f"wrote {tally.events} events of {tally.trees_text()} to {escape(str(out_file))}"
        )
    if client is not None:
        _report_sent(tally, delivered)


def _report_sent(tally: _Tally, delivered: bool) -> None:
    """The summary of `--send` on stdout; an error (exit code 1) if an event
    was not sent, or may not have been."""
    out().print(f"exported {tally.trees_text()}: {tally.sent} events sent, {tally.failed} failed")
    if tally.first_failure is not None:
        raise CliError(
            f"{tally.failed} of {tally.events} events were not sent; the first failure: "
            f"{type(tally.first_failure).__name__}: {tally.first_failure}"
        )
    if not delivered:
        raise CliError(
            f"the OpenLineage client still held events when it closed after {CLOSE_TIMEOUT_S:g}s: "
            "some may not have been sent"
        )


def _root_run_ids(
    store: DagProvenance, started_after: datetime, statuses: Sequence[str] | None, dag: str | None
) -> list[str]:
    """The ids of the root runs (no parent) started at or after `started_after`,
    of one of `statuses` and of DAG `dag` if given, oldest first. A sub-DAG
    run is never one: it is exported with its root's tree."""
    # Only the ids are kept (the pages' trees are dropped): the pages come
    # newest first, the export goes oldest first.
    newest_first: list[str] = []
    cursor: RunCursor | None = None
    while True:
        page = store.get_recent_runs(
            PAGE_SIZE,
            statuses=statuses or None,
            dag_nsref=dag,
            started_after=started_after,
            after=cursor,
        )
        newest_first.extend(run.run_id for run in page if run.parent_run_id is None)
        if len(page) < PAGE_SIZE:
            return newest_first[::-1]
        cursor = (page[-1].started_at, page[-1].run_id)


def _trees_of(
    store: DagProvenance, chosen: str | datetime, statuses: Sequence[str] | None, dag: str | None
) -> tuple[Iterable[DagRun], int]:
    """The trees to export and how many: the tree of the run `chosen` names,
    or each tree whose root run started at or after `chosen` (oldest first)."""
    if isinstance(chosen, str):
        return [named_run(store, chosen)], 1
    root_ids = _root_run_ids(store, chosen, statuses, dag)
    if not root_ids:
        err().print(f"no root run started since {when(chosen)} matches")
    return _trees(store, root_ids), len(root_ids)


def _trees(store: DagProvenance, root_ids: list[str]) -> Iterator[DagRun]:
    """Each root's whole tree, read when its turn comes, so one tree at a time
    is in memory."""
    for root_id in root_ids:
        tree = store.inspect_run(root_id)
        if tree is not None:  # else deleted (pruned) since it was listed
            yield tree


@dataclass
class _Tally:
    """What an export did."""

    trees: int = 0
    runs: int = 0
    events: int = 0
    sent: int = 0
    failed: int = 0
    first_failure: Exception | None = None

    def trees_text(self) -> str:
        return f"{_counted(self.trees, 'run tree')} ({_counted(self.runs, 'run')})"


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class _Events:
    """The OpenLineage events of run trees in one namespace: written as JSON
    lines, emitted through a client, or both."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def of(self, store: DagProvenance, tree: DagRun) -> list[RunEvent]:
        """The tree's events. A sub-DAG run exported without its root still
        names its parent and root runs in its `parent` facets, as its root's
        export does."""
        from dag_provenance.lineage.openlineage import ancestors_of, to_openlineage

        ancestors = ancestors_of(store, tree.run_id) if tree.parent_run_id else []
        return to_openlineage(tree, namespace=self.namespace, ancestors=ancestors)

    @staticmethod
    def line(event: RunEvent) -> str:
        from openlineage.client.serde import Serde

        return Serde.to_json(event, separators=(",", ":")) + "\n"

    def export(
        self,
        store: DagProvenance,
        trees: Iterable[DagRun],
        count: int,
        write: Write | None,
        client: OpenLineageClient | None,
    ) -> _Tally:
        """Write (if `write`) and emit (if `client`) the events of each of the
        `count` trees in turn, with progress bars when emitting (to a
        terminal). An event the client fails to emit is counted and the
        export goes on."""
        tally = _Tally()
        with progress_bars(shown=client is not None) as progress:
            if count:
                progress("run trees", 0, count)
            for tree in trees:
                events = self.of(store, tree)
                tally.trees += 1
                tally.runs += sum(1 for _ in tree.walk())
                for done, event in enumerate(events, 1):
                    tally.events += 1
                    # Written first: the client adds its own facets to what it emits.
                    if write is not None:
                        write(self.line(event))
                    if client is not None:
                        _emit(client, event, tally)
                        progress("events", done, len(events))
                progress("run trees", tally.trees, count)
        return tally


def _emit(client: OpenLineageClient, event: RunEvent, tally: _Tally) -> None:
    # A transport reports a failure by raising: the HTTP transport retries a
    # 5xx answer (five times by default) and then raises requests' RetryError,
    # any other error status raises HTTPError, a connection failure
    # ConnectionError; other transports raise their own.
    try:
        client.emit(event)
    except Exception as e:
        tally.failed += 1
        if tally.first_failure is None:
            tally.first_failure = e
    else:
        tally.sent += 1


def _lineage_client() -> OpenLineageClient:
    """The OpenLineage client, configured its usual way; refused if it would
    send nothing (OpenLineage disabled, or no transport configured at all)."""
    from openlineage.client import OpenLineageClient

    url_password = urlsplit(os.environ.get("OPENLINEAGE_URL", "")).password
    for secret in (url_password, os.environ.get("OPENLINEAGE_API_KEY")):
        if secret:
            hide(secret)
    try:
        client = OpenLineageClient()
    except Exception as e:
        raise CliError(f"the OpenLineage client is misconfigured: {type(e).__name__}: {e}") from e
    kind = client.transport.kind
    configured = bool((client.config.transport or {}).get("type"))
    if kind == "noop":
        client.close(0)
        raise CliError(
            "OpenLineage is disabled (OPENLINEAGE_DISABLED=true): --send would send nothing"
        )
    if kind == "console" and not configured:
        client.close(0)
        raise CliError(
            "--send found no OpenLineage transport configured: set OPENLINEAGE_URL, "
            "write an openlineage.yml (or point OPENLINEAGE_CONFIG at one), or set "
            "OPENLINEAGE__TRANSPORT__TYPE and its options; without --send the events are printed"
        )
    return client


# Output


@contextmanager
def _output(out_file: Path | None) -> Iterator[Write]:
    """Where the export's text goes: stdout, or `out_file`, written beside it
    and moved into place only when the block ends without an error (so a
    failed export leaves the file as it was)."""
    if out_file is None:
        try:
            yield lambda text: typer.echo(text, nl=False)
        except BrokenPipeError:
            # The reader left (`| head`): stop without a word, as `cat` does.
            _silence_stdout()
            raise typer.Exit(1) from None
        return
    partial = out_file.with_name(f".{out_file.name}.{os.getpid()}.partial")
    try:
        stream = partial.open("x", encoding="utf-8", newline="\n")
    except OSError as e:
        raise CliError(f"cannot write {out_file}: {e.strerror or e}") from e
    try:
        with stream:
            yield stream.write
        os.replace(partial, out_file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit raises no second
    BrokenPipeError."""
    with suppress(OSError, ValueError):  # not a file (a test runner's capture)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
