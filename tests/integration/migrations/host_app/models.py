"""The host application's tables, in a MetaData of its own.

The provenance tables stay out of it (Alembic's `include_name` filters only
what is reflected from the database: a table in `target_metadata` would be
proposed for creation), so the foreign key names `DagRunRow.run_id`, a
Column, rather than the string "dag_runs.run_id", which this MetaData could
not resolve.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dag_provenance.orm import DagRunRow


class HostBase(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class JobReport(HostBase):
    __tablename__ = "job_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    # No type given: it is dag_runs.run_id's (MariaDB refuses a key whose collation differs).
    run_id: Mapped[str] = mapped_column(
        ForeignKey(DagRunRow.run_id, ondelete="CASCADE"), index=True
    )
    summary: Mapped[str] = mapped_column(String(200))
