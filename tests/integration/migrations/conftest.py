"""Fixtures pytest-alembic needs (the library's own Alembic config, a brand-new
empty database on the engine under test) and a comparable schema snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy import Engine

from dag_provenance.migrate import alembic_config as library_alembic_config
from dag_provenance.orm import Base

SchemaOf = Callable[[Engine], dict[str, Any]]


@pytest.fixture
def alembic_config() -> Config:
    return library_alembic_config()


@pytest.fixture
def alembic_engine(empty_engine: Engine) -> Engine:
    return empty_engine


@pytest.fixture
def schema_of() -> SchemaOf:
    """`schema_of(engine)`: what reflection reports about the provenance tables."""
    return normalised_schema


def normalised_schema(engine: Engine) -> dict[str, Any]:
    """Everything reflection reports about the provenance tables, comparable across DBs."""
    inspector = sa.inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(Base.metadata.tables):
        schema[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ),
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    str(fk.get("options", {}).get("ondelete")).upper(),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
            ),
            "checks": sorted(
                (ck["name"], " ".join(ck["sqltext"].split()))
                for ck in inspector.get_check_constraints(table)
            ),
        }
    return schema
