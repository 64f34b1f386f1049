"""constraints: sized ids, long payloads, NOT NULL flags, status checks, cascading FKs

- ids, labels and nsrefs become length-limited identifiers (on MariaDB/MySQL
  with a binary no-pad collation, so ids differing in case or trailing
  spaces stay distinct); payloads become LONGTEXT on MariaDB/MySQL;
- is_source/is_sink become NOT NULL booleans defaulting to false (the data
  step first turns NULLs into 0);
- status columns get CHECK constraints listing the allowed values;
- the three foreign keys are recreated with ON DELETE CASCADE. lythonic's
  SQLite tables have unnamed foreign keys: the batch naming convention
  gives them the names our own revision 0001 used, so one drop works for both.

Revision ID: 0004
Revises: 0003
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from dag_provenance.types import Identifier, LongText

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMING_CONVENTION = {
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


def old_key() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.VARCHAR(200), "mysql", "mariadb")


class Change(NamedTuple):
    column: str
    old: sa.types.TypeEngine[Any]
    new: sa.types.TypeEngine[Any]
    nullable: bool


class ForeignKey(NamedTuple):
    name: str
    table: str
    column: str
    referred: str = "run_id"

    def create(self, batch_op: Any, **kw: Any) -> None:
        batch_op.create_foreign_key(
            op.f(self.name), "dag_runs", [self.column], [self.referred], **kw
        )


CHANGES: dict[str, list[Change]] = {
    "dag_runs": [
        Change("run_id", old_key(), Identifier(200), False),
        Change("dag_nsref", sa.Text(), Identifier(512), False),
        Change("parent_run_id", old_key(), Identifier(200), True),
        Change("status", sa.Text(), sa.String(16), False),
        Change("source_inputs_json", sa.Text(), LongText(), True),
        Change("sink_outputs_json", sa.Text(), LongText(), True),
        Change("initiated_by", sa.Text(), Identifier(255), True),
    ],
    "node_executions": [
        Change("run_id", old_key(), Identifier(200), False),
        Change("node_label", old_key(), Identifier(200), False),
        Change("status", sa.Text(), sa.String(16), False),
        Change("input_json", sa.Text(), LongText(), True),
        Change("output_json", sa.Text(), LongText(), True),
        Change("error", sa.Text(), LongText(), True),
    ],
    "edge_traversals": [
        Change("run_id", old_key(), Identifier(200), False),
        Change("upstream_label", old_key(), Identifier(200), False),
        Change("downstream_label", old_key(), Identifier(200), False),
    ],
}

FOREIGN_KEYS = {
    "dag_runs": ForeignKey("fk_dag_runs_parent_run_id_dag_runs", "dag_runs", "parent_run_id"),
    "node_executions": ForeignKey(
        "fk_node_executions_run_id_dag_runs", "node_executions", "run_id"
    ),
    "edge_traversals": ForeignKey(
        "fk_edge_traversals_run_id_dag_runs", "edge_traversals", "run_id"
    ),
}

# Frozen here, not derived from dag_provenance.status: this revision must
# mean the same thing forever.
STATUS_CHECKS = {
    "dag_runs": "status IN ('running', 'paused', 'completed', 'failed', 'cancelled')",
    "node_executions": "status IN ('pending', 'running', 'completed', 'failed', 'skipped')",
}
FLAGS = ("is_source", "is_sink")
TO_BOOLEAN = {"is_source": "is_source <> 0", "is_sink": "is_sink <> 0"}
TO_INTEGER = {"is_source": "is_source::integer", "is_sink": "is_sink::integer"}


def on_sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def batch(table: str) -> Any:
    return op.batch_alter_table(table, naming_convention=NAMING_CONVENTION)


def upgrade() -> None:
    fill_null_flags()
    if not on_sqlite():
        # MariaDB/MySQL refuse to alter a column a foreign key uses. (On
        # SQLite each table is rebuilt once, its foreign key dropped in the rebuild.)
        for fk in FOREIGN_KEYS.values():
            op.drop_constraint(op.f(fk.name), fk.table, type_="foreignkey")
    # dag_runs first: the others' foreign keys need its final run_id type.
    for table, changes in CHANGES.items():
        fk = FOREIGN_KEYS[table]
        with batch(table) as batch_op:
            if on_sqlite():
                batch_op.drop_constraint(op.f(fk.name), type_="foreignkey")
            for change in changes:
                # nullable is restated: lythonic's `run_id TEXT PRIMARY KEY` lets
                # SQLite store NULL (its primary keys are nullable unless declared not).
                batch_op.alter_column(
                    change.column,
                    type_=change.new,
                    existing_type=change.old,
                    nullable=change.nullable,
                )
            if table == "node_executions":
                upgrade_flags(batch_op)
            fk.create(batch_op, ondelete="CASCADE")
            if table in STATUS_CHECKS:
                batch_op.create_check_constraint(
                    op.f("ck_" + table + "_status"), STATUS_CHECKS[table]
                )


def downgrade() -> None:
    if not on_sqlite():
        for fk in FOREIGN_KEYS.values():
            op.drop_constraint(op.f(fk.name), fk.table, type_="foreignkey")
    for table, changes in CHANGES.items():
        fk = FOREIGN_KEYS[table]
        with batch(table) as batch_op:
            if table in STATUS_CHECKS:
                batch_op.drop_constraint(op.f("ck_" + table + "_status"), type_="check")
            if on_sqlite():
                batch_op.drop_constraint(op.f(fk.name), type_="foreignkey")
            for change in changes:
                batch_op.alter_column(
                    change.column,
                    type_=change.old,
                    existing_type=change.new,
                    existing_nullable=change.nullable,
                )
            if table == "node_executions":
                downgrade_flags(batch_op)
            fk.create(batch_op)


# --- schema steps for the flags --------------------------------------------------


def upgrade_flags(batch_op: Any) -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for flag in FLAGS:
        if postgresql:
            # PostgreSQL cannot cast the integer default to boolean: drop it first.
            batch_op.alter_column(flag, server_default=None, existing_type=sa.Integer())
        batch_op.alter_column(
            flag,
            type_=sa.Boolean(),
            existing_type=sa.Integer(),
            nullable=False,
            existing_nullable=True,
            server_default=None if postgresql else sa.false(),
            postgresql_using=TO_BOOLEAN[flag],
        )
        if postgresql:
            batch_op.alter_column(flag, server_default=sa.false(), existing_type=sa.Boolean())


def downgrade_flags(batch_op: Any) -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for flag in FLAGS:
        if postgresql:
            batch_op.alter_column(flag, server_default=None, existing_type=sa.Boolean())
        batch_op.alter_column(
            flag,
            type_=sa.Integer(),
            existing_type=sa.Boolean(),
            nullable=True,
            existing_nullable=False,
            server_default=None if postgresql else sa.text("0"),
            postgresql_using=TO_INTEGER[flag],
        )
        if postgresql:
            batch_op.alter_column(flag, server_default=sa.text("0"), existing_type=sa.Integer())


# --- data step -------------------------------------------------------------------


def fill_null_flags() -> None:
    if context.is_offline_mode():
        raise NotImplementedError("revision 0004 updates rows: run it online")
    node_executions = sa.table("node_executions", *(sa.column(f, sa.Integer()) for f in FLAGS))
    for flag in FLAGS:
        column = node_executions.c[flag]
        op.get_bind().execute(sa.update(node_executions).where(column.is_(None)).values({flag: 0}))
