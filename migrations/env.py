"""Alembic environment for dag-provenance's own schema history.

The database comes from, in order: a connection or engine passed in
`config.attributes["connection"]` (how `dag_provenance.migrate` and
pytest-alembic run it), `-x url=...`, the `DAG_PROVENANCE_URL` environment
variable, or `sqlalchemy.url` in the ini file. A plain path is a SQLite file.

Only the provenance tables are compared and migrated, and the history is
kept in `dag_provenance_version`, so the store can live inside an
application's database next to that application's own Alembic history.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine

from dag_provenance.engine import URL_ENV, is_url, make_engine, sqlite_file_url
from dag_provenance.migrate import migration_transaction
from dag_provenance.orm import VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get(URL_ENV)
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit(f"no database given: pass `-x url=...` or set {URL_ENV}")
    return url


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave the application's own tables alone: only ours are compared."""
    if type_ == "table":
        return name in target_metadata.tables
    return True


def configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
        **kwargs,
    )


def run_on(connection: Connection) -> None:
    if connection.in_transaction():
        # The caller (dag_provenance.migrate) already holds the lock and the
        # transaction, with SQLite's foreign keys switched off.
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with migration_transaction(connection):
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        run_on(given)
        return
    engine = given if isinstance(given, Engine) else make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        if engine is not given:
            engine.dispose()


def run_migrations_offline() -> None:
    # Data steps read rows, so they refuse to run here; schema steps render as SQL.
    url = database_url()
    configure(url=url if is_url(url) else sqlite_file_url(url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
