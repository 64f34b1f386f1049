"""lythonic 0.0.28: dag_runs.initiated_by, who started the run

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dag_runs") as batch_op:
        batch_op.add_column(sa.Column("initiated_by", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dag_runs") as batch_op:
        batch_op.drop_column("initiated_by")
