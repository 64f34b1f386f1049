"""The database a command works on: which one, opening it, and the run a
command names in it.

It is `--url` (given after the command, else before it), else
`$DAG_PROVENANCE_URL`, else `./dag_provenance.db`. A command that reads
refuses a SQLite file that does not exist rather than create an empty one.
Wherever a command takes a run id it also takes a unique prefix of one
(`lookup.py` states the rule).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dag_provenance.cli.errors import CliError, hide
from dag_provenance.engine import URL_ENV, is_url, make_engine, sqlite_file_of
from dag_provenance.errors import RunNotFoundError
from dag_provenance.lookup import resolve_run_id
from dag_provenance.models import DagRun
from dag_provenance.repository import DagProvenance

DEFAULT_DATABASE = "dag_provenance.db"


class _BeforeCommand:
    """The --url given before the command, for this invocation."""

    url: str | None = None


def use_url_before_command(url: str | None) -> None:
    _BeforeCommand.url = url


def target_of(url: str | None) -> str:
    """The database: the command's --url, else the one before the command, else
    the environment's, else the default file."""
    return url or _BeforeCommand.url or os.environ.get(URL_ENV) or DEFAULT_DATABASE


def shown(target: str) -> str:
    """The database as it may be printed: never with its password (which from
    now on is hidden in error messages too)."""
    if not is_url(target):
        return target
    parsed = make_url(target)
    if parsed.password:
        hide(str(parsed.password))
    return parsed.render_as_string(hide_password=True)


def _sqlite_file(target: str) -> Path | None:
    if not is_url(target):
        return Path(target)
    return sqlite_file_of(make_url(target))


def refuse_missing_file(target: str) -> None:
    """A command that reads refuses a SQLite file that does not exist, rather
    than create an empty one."""
    file = _sqlite_file(target)
    if file is not None and not file.exists():
        raise CliError(
            f"no database at {file}: create one with `dag-provenance db upgrade` "
            "(or `dag-provenance demo`), or give --url"
        )


def _checked(url: str | None, *, create: bool) -> str:
    """The database of `url`, its password hidden; unless `create`, one that exists."""
    target = target_of(url)
    shown(target)
    if not create:
        refuse_missing_file(target)
    return target


@contextmanager
def open_store(url: str | None, *, create: bool = False) -> Iterator[DagProvenance]:
    """The store at `url`; an existing one unless `create` (which also migrates)."""
    provenance = DagProvenance(_checked(url, create=create), migrate=create)
    try:
        yield provenance
    finally:
        provenance.close()


@contextmanager
def open_engine(url: str | None, *, create: bool = False) -> Iterator[Engine]:
    """An engine on the database at `url`; an existing one unless `create`."""
    made = make_engine(_checked(url, create=create))
    try:
        yield made
    finally:
        made.dispose()


def named_run(provenance: DagProvenance, ref: str) -> DagRun:
    """The run `ref` names: its id or a unique prefix of it. Refuses an unknown
    or ambiguous one with the library's error."""
    run_id = resolve_run_id(provenance, ref)
    run = provenance.inspect_run(run_id)
    if run is None:  # deleted since it was resolved
        raise RunNotFoundError(run_id)
    return run
