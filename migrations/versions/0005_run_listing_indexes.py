"""indexes for listing runs: by parent, by start time, by status, by DAG

Revision ID: 0005
Revises: 0004
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_dag_runs_parent_run_id": ["parent_run_id"],
    "ix_dag_runs_started_at": ["started_at"],
    "ix_dag_runs_status_started_at": ["status", "started_at"],
    "ix_dag_runs_dag_nsref_started_at": ["dag_nsref", "started_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(op.f(name), "dag_runs", columns)


PARENT_FK = "fk_dag_runs_parent_run_id_dag_runs"


def downgrade() -> None:
    on_mysql = op.get_context().dialect.name in ("mysql", "mariadb")
    if on_mysql:
        # MariaDB/MySQL dropped the foreign key's own index when this one was
        # created, and refuse to drop the only index a foreign key can use:
        # recreating the key around the drop gives it its own index back.
        op.drop_constraint(op.f(PARENT_FK), "dag_runs", type_="foreignkey")
    for name in INDEXES:
        op.drop_index(op.f(name), table_name="dag_runs")
    if on_mysql:
        op.create_foreign_key(
            op.f(PARENT_FK),
            "dag_runs",
            "dag_runs",
            ["parent_run_id"],
            ["run_id"],
            ondelete="CASCADE",
        )
