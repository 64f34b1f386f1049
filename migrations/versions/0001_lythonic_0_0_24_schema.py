"""lythonic 0.0.24's schema: TEXT ids, REAL epoch timestamps, INTEGER flags

Exactly the tables lythonic's own SQLite DagProvenance created, so a database
it wrote is this revision as it stands. Two concessions to the server engines,
which lythonic never ran on: MariaDB/MySQL cannot key a TEXT column, so key
columns are VARCHAR(200) there, and an epoch needs a double (REAL is a 4-byte
float on PostgreSQL).

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_LENGTH = 200


def key_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.VARCHAR(KEY_LENGTH), "mysql", "mariadb")


def epoch() -> sa.types.TypeEngine[float]:
    return sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dag_runs",
        sa.Column("run_id", key_text(), nullable=False),
        sa.Column("dag_nsref", sa.Text(), nullable=False),
        sa.Column("parent_run_id", key_text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", epoch(), nullable=False),
        sa.Column("finished_at", epoch(), nullable=True),
        sa.Column("source_inputs_json", sa.Text(), nullable=True),
        sa.Column("sink_outputs_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_dag_runs")),
        sa.ForeignKeyConstraint(
            ["parent_run_id"],
            ["dag_runs.run_id"],
            name=op.f("fk_dag_runs_parent_run_id_dag_runs"),
        ),
    )
    op.create_table(
        "node_executions",
        sa.Column("run_id", key_text(), nullable=False),
        sa.Column("node_label", key_text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("is_source", sa.Integer(), server_default=sa.text("0"), nullable=True),
        sa.Column("is_sink", sa.Integer(), server_default=sa.text("0"), nullable=True),
        sa.Column("input_json", sa.Text(), nullable=True),
        sa.Column("output_json", sa.Text(), nullable=True),
        sa.Column("started_at", epoch(), nullable=True),
        sa.Column("finished_at", epoch(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "node_label", name=op.f("pk_node_executions")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["dag_runs.run_id"],
            name=op.f("fk_node_executions_run_id_dag_runs"),
        ),
    )
    op.create_table(
        "edge_traversals",
        sa.Column("run_id", key_text(), nullable=False),
        sa.Column("upstream_label", key_text(), nullable=False),
        sa.Column("downstream_label", key_text(), nullable=False),
        sa.Column("traversed_at", epoch(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "upstream_label", "downstream_label", name=op.f("pk_edge_traversals")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["dag_runs.run_id"],
            name=op.f("fk_edge_traversals_run_id_dag_runs"),
        ),
    )


def downgrade() -> None:
    op.drop_table("edge_traversals")
    op.drop_table("node_executions")
    op.drop_table("dag_runs")
