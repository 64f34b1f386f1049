"""The viewer's request parameters: ids in paths, the run filters, the
keyset cursor and moments (`30m`, `7d`, an ISO date), as FastAPI
dependencies. A bad value raises the library's `InvalidInputError`, which
the error handlers answer with 400 and its message (`errors`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request

from dag_provenance import validate
from dag_provenance.errors import InvalidInputError
from dag_provenance.protocol import RunCursor
from dag_provenance.status import RunStatus
from dag_provenance.web.urls import ID_QUERY_PARAMETER

PAGE_SIZE = 50
"""Runs on a page of the list (each comes with its whole tree: keep it modest)."""
MAX_PAGE_SIZE = 200


CURSOR_SEPARATOR = ","


def cursor_text(started_at: datetime, run_id: str) -> str:
    """A keyset position as the `after` parameter carries it: the last run's
    started_at (ISO 8601) and run id, joined by a comma (ISO times have none)."""
    return started_at.isoformat() + CURSOR_SEPARATOR + run_id


def parse_cursor(value: str) -> RunCursor:
    moment, separator, run_id = value.partition(CURSOR_SEPARATOR)
    try:
        started_at = datetime.fromisoformat(moment)
    except ValueError:
        started_at = None
    if not separator or not run_id or started_at is None or started_at.tzinfo is None:
        raise InvalidInputError(
            f"after {value!r} is not a cursor: give the `next` value of the previous page "
            "(the last run's started_at, with its UTC offset, a comma and its run id)"
        )
    return started_at, run_id


def _id_in(request: Request, from_path: str, from_query: str | None, what: str) -> str:
    if "\n" in request.scope["path"]:
        # The route stopped at the line feed: the id read from the path is cut short.
        raise InvalidInputError(f"a {what} holding a line feed goes in ?id=, not in the path")
    chosen = from_path or from_query
    if not chosen:
        raise InvalidInputError(f"no {what} given: put it in the path, or in ?id=")
    return chosen


_ID_HELP = (
    "The id, when it cannot travel in the path ('.', '..', a line feed): leave the path empty."
)


def run_id_param(
    request: Request,
    run_id: str,
    id_: Annotated[str | None, Query(alias=ID_QUERY_PARAMETER, description=_ID_HELP)] = None,
) -> str:
    """The run id a request names (see `urls`)."""
    return _id_in(request, run_id, id_, "run id")


def nsref_param(
    request: Request,
    nsref: str,
    id_: Annotated[str | None, Query(alias=ID_QUERY_PARAMETER, description=_ID_HELP)] = None,
) -> str:
    """The DAG nsref a request names (see `urls`)."""
    return _id_in(request, nsref, id_, "DAG nsref")


@dataclass(frozen=True)
class RunFilters:
    """Which runs a list shows: statuses (none: every status), one DAG, and a
    start window `since <= started_at < until`, as typed (for the form) and parsed."""

    statuses: tuple[str, ...] = ()
    dag: str | None = None
    since: str | None = None
    until: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def query(self) -> list[tuple[str, str]]:
        """The filters as query parameters, to build the list's other pages."""
        pairs = [("statuses", s) for s in self.statuses]
        pairs += [(k, v) for k, v in (("dag", self.dag), ("since", self.since)) if v]
        if self.until:
            pairs.append(("until", self.until))
        return pairs


def run_filters(
    statuses: Annotated[
        list[RunStatus] | None,
        Query(description="Only runs with one of these statuses (repeat the parameter)."),
    ] = None,
    status: Annotated[list[RunStatus] | None, Query(description="The same as `statuses`.")] = None,
    dag: Annotated[str | None, Query(description="Only runs of this DAG nsref.")] = None,
    since: Annotated[
        str | None,
        Query(description="Only runs started since: an age (30m, 2h, 7d, 1w) or an ISO date."),
    ] = None,
    until: Annotated[
        str | None, Query(description="Only runs started before: an age or an ISO date.")
    ] = None,
) -> RunFilters:
    """The run filters of the list page and of `GET /api/runs` (empty values:
    no filter, as an HTML form sends them)."""
    return RunFilters(
        statuses=tuple(dict.fromkeys(s.value for s in [*(statuses or ()), *(status or ())])),
        dag=dag or None,
        since=since or None,
        until=until or None,
        started_after=validate.moment("since", since) if since else None,
        started_before=validate.moment("until", until) if until else None,
    )


def after_param(
    after: Annotated[
        str | None,
        Query(
            description="Keyset cursor: the `next` value of the previous page "
            "(the last run's started_at and run id); empty for the first page."
        ),
    ] = None,
) -> RunCursor | None:
    return parse_cursor(after) if after else None


LimitParam = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description="Runs per page (each with its tree).")
]


DEFAULT_STATS_SINCE = "30d"


@dataclass(frozen=True)
class Window:
    """A statistics window `since <= started_at < until`, as typed and parsed
    (None: open on that side)."""

    since: str | None
    until: str | None
    started_after: datetime | None
    started_before: datetime | None


def stats_window(
    since: Annotated[
        str | None,
        Query(
            description="Only runs started since: an age (30m, 2h, 7d) or an ISO date; "
            "empty for all time."
        ),
    ] = DEFAULT_STATS_SINCE,
    until: Annotated[
        str | None, Query(description="Only runs started before: an age or an ISO date.")
    ] = None,
) -> Window:
    """The window of a DAG's statistics (the last 30 days unless told)."""
    return Window(
        since=since or None,
        until=until or None,
        started_after=validate.moment("since", since) if since else None,
        started_before=validate.moment("until", until) if until else None,
    )


__all__ = [
    "DEFAULT_STATS_SINCE",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "LimitParam",
    "RunFilters",
    "Window",
    "after_param",
    "cursor_text",
    "nsref_param",
    "parse_cursor",
    "run_filters",
    "run_id_param",
    "stats_window",
]
