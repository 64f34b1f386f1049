"""A database built from scratch (create_all + stamp) and one migrated from
lythonic's schema end up identical, down to constraint names, CHECKs and
ON DELETE rules, which `alembic check` does not all compare."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from dag_provenance import migrate
from dag_provenance.engine import make_engine
from dag_provenance.testing import scratch_database


@pytest.fixture
def second_engine(engine_name: str, empty_db_url: str, tmp_path: Any) -> Iterator[Engine]:
    """Another brand-new empty database on the same engine."""
    if engine_name == "sqlite":
        engine = make_engine(tmp_path / "second.db")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with scratch_database(empty_db_url) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def test_a_fresh_database_and_a_migrated_one_have_the_same_schema(
    empty_engine: Engine, second_engine: Engine, schema_of: Callable[[Engine], dict[str, Any]]
) -> None:
    migrate.ensure_schema(empty_engine)  # from scratch
    migrate.upgrade(second_engine, "0001")
    migrate.upgrade(second_engine)  # through every revision

    assert migrate.current_revision(second_engine) == migrate.current_revision(empty_engine)
    assert schema_of(second_engine) == schema_of(empty_engine)
