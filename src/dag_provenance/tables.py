"""The mapped tables: the schema the newest migration must produce.

Maximum lengths of identifier columns (characters, as Python's `len`):

- `run_id`, `parent_run_id`, node labels: 200. The widest index holds three of
  them (`edge_traversals`' primary key): 600 utf8mb4 characters is 2,400
  bytes, under both MariaDB/InnoDB's 3,072-byte key limit and PostgreSQL's
  ~2,700-byte B-tree entry limit even when every character takes 4 bytes.
- `dag_nsref`: 512 (2,048 bytes + the timestamp in the `(dag_nsref,
  started_at)` index). Sub-DAG runs append `/label[key]` to their parent's
  nsref, so nsrefs grow with nesting and need the room.
- `initiated_by`: 255.
- statuses: 16 (the longest allowed value is 9).

A longer value is refused by the repository with `IdentifierTooLongError`;
no engine ever truncates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dag_provenance.status import NodeStatus, RunStatus
from dag_provenance.types import Identifier, LongText, UTCDateTime

RUN_ID_MAX = 200
NODE_LABEL_MAX = 200
DAG_NSREF_MAX = 512
INITIATOR_MAX = 255
STATUS_MAX = 16

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _status_check(allowed: type[RunStatus] | type[NodeStatus]) -> CheckConstraint:
    values = ", ".join(f"'{s.value}'" for s in allowed)
    return CheckConstraint(f"status IN ({values})", name="status")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DagRunRow(Base):
    __tablename__ = "dag_runs"

    run_id: Mapped[str] = mapped_column(Identifier(RUN_ID_MAX), primary_key=True)
    dag_nsref: Mapped[str] = mapped_column(Identifier(DAG_NSREF_MAX))
    parent_run_id: Mapped[str | None] = mapped_column(
        Identifier(RUN_ID_MAX), ForeignKey("dag_runs.run_id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_inputs_json: Mapped[str | None] = mapped_column(LongText())
    sink_outputs_json: Mapped[str | None] = mapped_column(LongText())
    initiated_by: Mapped[str | None] = mapped_column(Identifier(INITIATOR_MAX))

    __table_args__ = (
        _status_check(RunStatus),
        Index("ix_dag_runs_parent_run_id", "parent_run_id"),
        Index("ix_dag_runs_started_at", "started_at"),
        Index("ix_dag_runs_status_started_at", "status", "started_at"),
        Index("ix_dag_runs_dag_nsref_started_at", "dag_nsref", "started_at"),
    )


class NodeExecutionRow(Base):
    __tablename__ = "node_executions"

    run_id: Mapped[str] = mapped_column(Identifier(RUN_ID_MAX), primary_key=True)
    node_label: Mapped[str] = mapped_column(Identifier(NODE_LABEL_MAX), primary_key=True)
    status: Mapped[str] = mapped_column(String(STATUS_MAX))
    is_source: Mapped[bool] = mapped_column(Boolean(), server_default=false())
    is_sink: Mapped[bool] = mapped_column(Boolean(), server_default=false())
    input_json: Mapped[str | None] = mapped_column(LongText())
    output_json: Mapped[str | None] = mapped_column(LongText())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(LongText())

    # The primary key leads with run_id, so it is also the foreign key's index.
    __table_args__ = (
        ForeignKeyConstraint(["run_id"], ["dag_runs.run_id"], ondelete="CASCADE"),
        _status_check(NodeStatus),
    )


class EdgeTraversalRow(Base):
    __tablename__ = "edge_traversals"

    run_id: Mapped[str] = mapped_column(Identifier(RUN_ID_MAX), primary_key=True)
    upstream_label: Mapped[str] = mapped_column(Identifier(NODE_LABEL_MAX), primary_key=True)
    downstream_label: Mapped[str] = mapped_column(Identifier(NODE_LABEL_MAX), primary_key=True)
    traversed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (ForeignKeyConstraint(["run_id"], ["dag_runs.run_id"], ondelete="CASCADE"),)


# Declarative types `__table__` as a FromClause; these are Tables.
dag_runs = cast(Table, DagRunRow.__table__)
node_executions = cast(Table, NodeExecutionRow.__table__)
edge_traversals = cast(Table, EdgeTraversalRow.__table__)
