"""pytest-alembic's four standard checks, on every engine: one head, base ->
head upgrades, the models match what the migrations build (`alembic check`),
and every revision downgrades and upgrades again."""

from __future__ import annotations

from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]
