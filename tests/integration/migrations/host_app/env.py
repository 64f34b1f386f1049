"""The host application's Alembic environment.

Its own history is in Alembic's default `alembic_version`. dag-provenance's
is in `dag_provenance_version`, brought to head by the library first, on the
same connection, because the host's tables refer to `dag_runs`.
"""

from __future__ import annotations

from alembic import context
from integration.migrations.host_app.models import HostBase
from sqlalchemy import engine_from_config, pool

from dag_provenance import migrate
from dag_provenance.orm import include_name

config = context.config


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        # Before begin_transaction(): the provenance upgrade commits a transaction of its own.
        migrate.upgrade(connection)
        context.configure(
            connection=connection,
            target_metadata=HostBase.metadata,  # the host's tables only
            include_name=include_name,  # leave the provenance tables alone
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("this host application migrates online only")
run_migrations_online()
