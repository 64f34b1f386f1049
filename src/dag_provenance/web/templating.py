"""The viewer's Jinja2 templates: one environment, compiled once.

Autoescaping is on for every template (`autoescape=True`), and no template
marks recorded data safe: ids, labels, nsrefs, errors and payloads are
always text. The helpers below (filters and globals) return plain strings,
which the templates escape like any other value.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

import dag_provenance.web.urls as urls
from dag_provenance.formatting import (
    STATUS_ICONS,
    duration,
    error_line,
    seconds_text,
    shorten,
    start_order,
)
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.status import FINISHED_STATUSES, NodeStatus, RunStatus

NODE_STATUS_ORDER = (
    NodeStatus.COMPLETED,
    NodeStatus.SKIPPED,
    NodeStatus.RUNNING,
    NodeStatus.PENDING,
    NodeStatus.FAILED,
)


def when(moment: datetime | None) -> str:
    """`2025-01-31 08:30:00` (UTC); empty for no time."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def took(started: datetime | None, finished: datetime | None, status: str, now: datetime) -> str:
    """How long it took; for what is still going, how long so far (`12s…`)."""
    if started is not None and finished is None and status not in FINISHED_STATUSES:
        return seconds_text((now - started).total_seconds()) + "…"
    return duration(started, finished)


def status_icon(status: str) -> str:
    return STATUS_ICONS.get(status, "?")


def node_counts(run: DagRun) -> list[tuple[str, int]]:
    """How many of the run's own nodes are in each status, in a fixed order."""
    counts = Counter(node.status for node in run.nodes.values())
    ordered = [(str(s), counts.pop(s)) for s in NODE_STATUS_ORDER if s in counts]
    return ordered + sorted(counts.items())


def nodes_in_order(run: DagRun) -> list[NodeExecution]:
    return sorted(run.nodes.values(), key=start_order)


def sub_runs(run: DagRun) -> list[tuple[str, str, DagRun]]:
    """Every sub-DAG run below the run, depth first: (composite node, key, run)."""
    found: list[tuple[str, str, DagRun]] = []
    for node in nodes_in_order(run):
        for key, sub_run in sorted((node.sub_dags or {}).items()):
            found.append((node.node_label, key, sub_run))
            found.extend(sub_runs(sub_run))
    return found


def _static_version() -> str:
    """A digest of the static files, added to their addresses so a browser
    never keeps an old script or style sheet after an upgrade."""
    digest = hashlib.blake2b(digest_size=6)
    folder = resources.files("dag_provenance.web") / "static"
    for item in sorted(folder.iterdir(), key=lambda f: f.name):
        if item.is_file():
            digest.update(item.name.encode() + item.read_bytes())
    return digest.hexdigest()


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dag_provenance.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        when=when,
        iso=iso,
        icon=status_icon,
        error_line=error_line,
        short=shorten,
        seconds=seconds_text,
    )
    env.globals.update(
        took=took,
        node_counts=node_counts,
        nodes_in_order=nodes_in_order,
        sub_runs=sub_runs,
        run_url=urls.run_url,
        dag_url=urls.dag_url,
        io_url=urls.io_url,
        graph_url=urls.graph_url,
        events_url=urls.events_url,
        run_fragment_url=urls.run_fragment_url,
        api_run_url=urls.api_run_url,
        runs_url=urls.runs_url,
        dag_stats_url=urls.dag_stats_url,
        STATIC_VERSION=_static_version(),
        RUN_STATUSES=[s.value for s in RunStatus],
        FINISHED_STATUSES=[s.value for s in FINISHED_STATUSES],
    )
    return env


ENVIRONMENT = _environment()


def render(template: str, **context: Any) -> str:
    """The template filled in (templates are compiled on first use, then kept)."""
    return ENVIRONMENT.get_template(template).render(context)


__all__ = ["ENVIRONMENT", "node_counts", "render", "sub_runs", "took", "when"]
