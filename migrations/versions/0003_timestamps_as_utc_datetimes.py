"""timestamps: REAL epoch seconds -> UTC datetimes with microseconds

Each timestamp column gets a `<name>_new` sibling, the data step fills it
from the old one in keyset-paged batches, then the old column is dropped and
the new one takes its name. Epochs convert with `datetime.fromtimestamp(x,
UTC)`, exactly as lythonic's reader does, so a run inspected before and
after the upgrade shows the same microseconds. The downgrade converts back
with `datetime.timestamp()`.

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from dag_provenance.types import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_ROWS = 1000

#: table -> (primary key columns, {timestamp column: nullable})
TIMESTAMPS: dict[str, tuple[tuple[str, ...], dict[str, bool]]] = {
    "dag_runs": (("run_id",), {"started_at": False, "finished_at": True}),
    "node_executions": (("run_id", "node_label"), {"started_at": True, "finished_at": True}),
    "edge_traversals": (
        ("run_id", "upstream_label", "downstream_label"),
        {"traversed_at": False},
    ),
}


def epoch() -> sa.types.TypeEngine[float]:
    return sa.Double().with_variant(sa.REAL(), "sqlite")


def to_datetime(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def to_epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def upgrade() -> None:
    add_new_columns(UTCDateTime)
    copy_into_new_columns(epoch(), UTCDateTime(), to_datetime)
    replace_old_columns(epoch(), UTCDateTime())


def downgrade() -> None:
    add_new_columns(epoch)
    copy_into_new_columns(UTCDateTime(), epoch(), to_epoch)
    replace_old_columns(UTCDateTime(), epoch())


# --- schema steps ---------------------------------------------------------------


def add_new_columns(new_type: Callable[[], sa.types.TypeEngine[Any]]) -> None:
    for table, (_, columns) in TIMESTAMPS.items():
        with op.batch_alter_table(table) as batch_op:
            for name in columns:
                batch_op.add_column(sa.Column(f"{name}_new", new_type(), nullable=True))


def replace_old_columns(
    old_type: sa.types.TypeEngine[Any], new_type: sa.types.TypeEngine[Any]
) -> None:
    # Alembic's batch rename trips over a TypeDecorator: give it the engine's type
    # (on MariaDB/MySQL the rename restates the type, so it must be DATETIME(6)).
    existing_type = engine_type(new_type)
    for table, (_, columns) in TIMESTAMPS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, nullable in columns.items():
                batch_op.drop_column(name, existing_type=engine_type(old_type))
                batch_op.alter_column(
                    f"{name}_new",
                    new_column_name=name,
                    existing_type=existing_type,
                    existing_nullable=True,
                    nullable=nullable,
                )


def engine_type(type_: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    dialect = op.get_context().dialect
    if isinstance(type_, sa.types.TypeDecorator):
        return type_.load_dialect_impl(dialect)
    return type_


# --- data step -------------------------------------------------------------------


def copy_into_new_columns(
    old_type: sa.types.TypeEngine[Any],
    new_type: sa.types.TypeEngine[Any],
    convert: Callable[[Any], Any],
) -> None:
    if context.is_offline_mode():
        raise NotImplementedError("revision 0003 converts rows in Python: run it online")
    conn = op.get_bind()
    for name, (key, columns) in TIMESTAMPS.items():
        table = sa.table(
            name,
            *(sa.column(k, sa.Text()) for k in key),
            *(sa.column(c, old_type) for c in columns),
            *(sa.column(f"{c}_new", new_type) for c in columns),
        )
        where = sa.and_(*(table.c[k] == sa.bindparam(f"key_{k}") for k in key))
        update = (
            sa.update(table)
            .where(where)
            .values({f"{c}_new": sa.bindparam(f"new_{c}", type_=new_type) for c in columns})
        )
        for rows in keyset_pages(conn, table, key, list(columns)):
            conn.execute(
                update,
                [
                    {
                        **{f"key_{k}": row[k] for k in key},
                        **{f"new_{c}": convert(row[c]) for c in columns},
                    }
                    for row in rows
                ],
            )


def keyset_pages(
    conn: sa.Connection, table: sa.TableClause, key: Sequence[str], columns: list[str]
) -> Iterator[list[sa.RowMapping]]:
    """Yield the rows of `table` in primary-key order, BATCH_ROWS at a time."""
    key_columns = [table.c[k] for k in key]
    query = (
        sa.select(*key_columns, *(table.c[c] for c in columns))
        .order_by(*key_columns)
        .limit(BATCH_ROWS)
    )
    page = query
    while rows := list(conn.execute(page).mappings()):
        yield rows
        last = rows[-1]
        page = query.where(sa.tuple_(*key_columns) > sa.tuple_(*(last[k] for k in key)))
