"""The ORM face of the store: the declarative classes that are the single
definition of the provenance schema, for host applications to query with
their own `Session`.

- `Base` (its `metadata` is the provenance schema: three tables, named
  constraints), `DagRunRow`, `NodeExecutionRow` and `EdgeTraversalRow`.
- Relationships: `DagRunRow.nodes`, `.edges`, `.parent`, `.children`;
  `NodeExecutionRow.run` and `EdgeTraversalRow.run`. Collections load with
  "selectin": walking the nodes, edges and children of any number of runs
  costs one SELECT per collection per tree level, never one per row (to
  `EAGER_LOAD_DEPTH` levels of sub-DAG runs).
- `to_dag_run(row)`: a loaded `DagRunRow` as the `DagRun` model the store
  returns, with its nodes, edges and sub-DAG runs.
- `include_name`: a filter for a host application's Alembic environment, so
  its autogenerate and `alembic check` leave the provenance tables alone.

Rows are read-only by contract: write through `DagProvenance`, which checks
every value (lengths, statuses, NUL characters, time zones) and keeps runs,
nodes and edges consistent. The relationships are view-only for that reason.

The schema the newest migration must produce is this module's.

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

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, cast

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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dag_provenance.status import NodeStatus, RunStatus
from dag_provenance.types import Identifier, LongText, UTCDateTime

if TYPE_CHECKING:
    from dag_provenance.models import DagRun

RUN_ID_MAX = 200
NODE_LABEL_MAX = 200
DAG_NSREF_MAX = 512
INITIATOR_MAX = 255
STATUS_MAX = 16

EAGER_LOAD_DEPTH = 32
"""Levels of sub-DAG runs whose nodes, edges and children load eagerly (one
SELECT per collection per level) when a run is loaded. SQLAlchemy stops
chaining eager loads at the first repeated class unless told how deep to go;
deeper levels still load, lazily, one query per run."""

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
    """The provenance schema's declarative base; `Base.metadata` holds its tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DagRunRow(Base):
    """A run of a DAG (or a sub-DAG run, under `parent`)."""

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

    nodes: Mapped[list[NodeExecutionRow]] = relationship(
        back_populates="run",
        lazy="selectin",
        join_depth=EAGER_LOAD_DEPTH,
        viewonly=True,
        order_by="(NodeExecutionRow.started_at, NodeExecutionRow.node_label)",
    )
    edges: Mapped[list[EdgeTraversalRow]] = relationship(
        back_populates="run",
        lazy="selectin",
        join_depth=EAGER_LOAD_DEPTH,
        viewonly=True,
        order_by=(
            "(EdgeTraversalRow.traversed_at, EdgeTraversalRow.upstream_label, "
            "EdgeTraversalRow.downstream_label)"
        ),
    )
    parent: Mapped[DagRunRow | None] = relationship(
        back_populates="children", remote_side="DagRunRow.run_id", viewonly=True
    )
    children: Mapped[list[DagRunRow]] = relationship(
        back_populates="parent",
        lazy="selectin",
        join_depth=EAGER_LOAD_DEPTH,
        viewonly=True,
        order_by="(DagRunRow.started_at, DagRunRow.run_id)",
    )

    def __repr__(self) -> str:
        return (
            f"DagRunRow(run_id={self.run_id!r}, dag_nsref={self.dag_nsref!r}, "
            f"status={self.status!r})"
        )

    __table_args__ = (
        _status_check(RunStatus),
        Index("ix_dag_runs_parent_run_id", "parent_run_id"),
        Index("ix_dag_runs_started_at", "started_at"),
        Index("ix_dag_runs_status_started_at", "status", "started_at"),
        Index("ix_dag_runs_dag_nsref_started_at", "dag_nsref", "started_at"),
    )


class NodeExecutionRow(Base):
    """One node's execution in a run (a restarted node's row is replaced)."""

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

    run: Mapped[DagRunRow] = relationship(back_populates="nodes", viewonly=True)

    def __repr__(self) -> str:
        return (
            f"NodeExecutionRow(run_id={self.run_id!r}, node_label={self.node_label!r}, "
            f"status={self.status!r})"
        )

    # The primary key leads with run_id, so it is also the foreign key's index.
    __table_args__ = (
        ForeignKeyConstraint(["run_id"], ["dag_runs.run_id"], ondelete="CASCADE"),
        _status_check(NodeStatus),
    )


class EdgeTraversalRow(Base):
    """An edge traversed in a run, from the node that completed to the next."""

    __tablename__ = "edge_traversals"

    run_id: Mapped[str] = mapped_column(Identifier(RUN_ID_MAX), primary_key=True)
    upstream_label: Mapped[str] = mapped_column(Identifier(NODE_LABEL_MAX), primary_key=True)
    downstream_label: Mapped[str] = mapped_column(Identifier(NODE_LABEL_MAX), primary_key=True)
    traversed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    run: Mapped[DagRunRow] = relationship(back_populates="edges", viewonly=True)

    def __repr__(self) -> str:
        return (
            f"EdgeTraversalRow(run_id={self.run_id!r}, upstream_label={self.upstream_label!r}, "
            f"downstream_label={self.downstream_label!r})"
        )

    __table_args__ = (ForeignKeyConstraint(["run_id"], ["dag_runs.run_id"], ondelete="CASCADE"),)


# Declarative types `__table__` as a FromClause; these are Tables.
dag_runs = cast(Table, DagRunRow.__table__)
node_executions = cast(Table, NodeExecutionRow.__table__)
edge_traversals = cast(Table, EdgeTraversalRow.__table__)

VERSION_TABLE = "dag_provenance_version"
"""The provenance migrations' own Alembic version table."""

PROVENANCE_TABLES = frozenset(Base.metadata.tables) | {VERSION_TABLE}
"""Every table the library owns in a database, its version table included."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For a host application's Alembic `context.configure(include_name=...)`:
    False for the provenance tables and their version table, so the host's
    autogenerate and `alembic check` neither drop nor alter them (their
    columns, indexes and constraints go with them). Everything else is
    included. Chain it with a filter of your own if you have one.

    It filters what is reflected from the database only: keep the provenance
    tables out of the host's `target_metadata`, or autogenerate proposes
    creating them. A host's foreign key therefore names the Column,
    `ForeignKey(DagRunRow.run_id)`, which that MetaData can resolve."""
    return not (type_ == "table" and name in PROVENANCE_TABLES)


def to_dag_run(row: DagRunRow) -> DagRun:
    """`row` as the `DagRun` the store returns: its nodes with their edges, and
    its sub-DAG runs (the loaded `children`, recursively) under their
    composite nodes. Payloads are left out, as `inspect_run` leaves them;
    timestamps are tz-aware UTC."""
    from dag_provenance.rows import dag_run_from_rows

    runs = list(_walk(row))
    return dag_run_from_rows(
        row.run_id,
        [
            (r.run_id, r.dag_nsref, r.parent_run_id, r.status, r.started_at, r.finished_at,
             r.initiated_by)
            for r in runs
        ],
        [
            (n.run_id, n.node_label, n.status, n.is_source, n.is_sink, n.started_at,
             n.finished_at, n.error)
            for r in runs
            for n in r.nodes
        ],
        [
            (e.run_id, e.upstream_label, e.downstream_label, e.traversed_at)
            for r in runs
            for e in r.edges
        ],
    )  # fmt: skip


def _walk(row: DagRunRow) -> Iterable[DagRunRow]:
    """`row` and every run below it through `children`, each once."""
    seen: set[str] = set()
    stack = [row]
    while stack:
        run = stack.pop()
        if run.run_id not in seen:
            seen.add(run.run_id)
            yield run
            stack.extend(reversed(run.children))
