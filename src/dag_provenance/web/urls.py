"""The viewer's addresses of runs and DAGs, built in one place.

Run ids and nsrefs may hold any character, `/` included: each is one
percent-encoded path segment (`quote(id, safe="")`), read back by a
`{run_id:path}` route. A few ids cannot travel in a path: `.` and `..`
(browsers resolve them as dot segments, `%2E` too) and any id with a line
feed (Starlette's routes do not match one); those go in `?id=` after the
bare prefix instead, which every route that takes an id in its path also
reads.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

ID_QUERY_PARAMETER = "id"


def path_safe(value: str) -> bool:
    """Whether `value` can travel as a path segment (see the module)."""
    return value not in (".", "..") and "\n" not in value


def _addressed(
    prefix: str, value: str, query: dict[str, str] | None = None, suffix: str = ""
) -> str:
    params = dict(query or {})
    if path_safe(value):
        path = prefix + quote(value, safe="") + suffix
    else:
        path = prefix + suffix
        params = {ID_QUERY_PARAMETER: value, **params}
    return path + ("?" + urlencode(params) if params else "")


def run_url(run_id: str) -> str:
    """The run's page."""
    return _addressed("/runs/", run_id)


def dag_url(nsref: str, since: str | None = None) -> str:
    """The DAG's page (its statistics), of the last 30 days unless `since`
    says otherwise (empty: all time)."""
    return _addressed("/dags/", nsref, {"since": since} if since is not None else None)


def runs_url(query: list[tuple[str, str]]) -> str:
    """The list of runs, filtered by `query` (`statuses`, `dag`, `since`, ...)."""
    return "/?" + urlencode(query) if query else "/"


def run_fragment_url(run_id: str) -> str:
    """The live part of the run's page (header, timeline, nodes), as HTML."""
    return _addressed("/fragments/run/", run_id)


def graph_url(run_id: str) -> str:
    """The run's graph, an SVG image."""
    return _addressed("/graphs/", run_id)


def api_run_url(run_id: str) -> str:
    """The run's tree, as JSON."""
    return _addressed("/api/runs/", run_id)


def io_url(run_id: str, node_label: str | None = None) -> str:
    """A node's (or with no label, the run's) inputs and outputs, as JSON."""
    return _addressed("/api/io/", run_id, {"node": node_label} if node_label is not None else None)


def events_url(run_id: str) -> str:
    """The run's server-sent events."""
    return _addressed("/api/events/", run_id)


def dag_stats_url(nsref: str, since: str | None = None, until: str | None = None) -> str:
    """The DAG's statistics, as JSON (of the last 30 days unless `since` says
    otherwise; empty: all time)."""
    query = {"since": since} if since is not None else {}
    if until:
        query["until"] = until
    return _addressed("/api/dags/", nsref, query, suffix="/stats")


__all__ = [
    "ID_QUERY_PARAMETER",
    "api_run_url",
    "dag_stats_url",
    "dag_url",
    "events_url",
    "graph_url",
    "io_url",
    "path_safe",
    "run_fragment_url",
    "run_url",
    "runs_url",
]
