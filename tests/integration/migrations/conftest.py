"""Fixtures pytest-alembic needs: the library's own Alembic config, and a
brand-new empty database on the engine under test."""

from __future__ import annotations

import pytest
from alembic.config import Config
from sqlalchemy import Engine

from dag_provenance.migrate import alembic_config as library_alembic_config


@pytest.fixture
def alembic_config() -> Config:
    return library_alembic_config()


@pytest.fixture
def alembic_engine(empty_engine: Engine) -> Engine:
    return empty_engine
