"""job_reports: the host's report on a DAG run

Revision ID: h0001
Revises:
Create Date: 2025-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "h0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # As autogenerate renders it: dag_runs.run_id's type, and the key by its string name.
    op.create_table(
        "job_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "run_id",
            sa.String(length=200).with_variant(
                mysql.VARCHAR(length=200, charset="utf8mb4", collation="utf8mb4_nopad_bin"),
                "mysql",
                "mariadb",
            ),
            nullable=False,
        ),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["dag_runs.run_id"],
            name=op.f("fk_job_reports_run_id_dag_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_reports")),
    )
    op.create_index(op.f("ix_job_reports_run_id"), "job_reports", ["run_id"])


def downgrade() -> None:
    # The table takes its index along. Dropped first, the index is refused by
    # MariaDB/MySQL, where it is the only one the foreign key can use.
    op.drop_table("job_reports")
