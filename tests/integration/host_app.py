"""A host application's own model, as the ORM and shared-transaction tests
use it: its own declarative base (its own MetaData), and a table whose rows
point at provenance runs with a foreign key to `dag_runs.run_id`."""

from __future__ import annotations

from sqlalchemy import Engine, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dag_provenance.orm import DagRunRow


class HostBase(DeclarativeBase):
    pass


class Job(HostBase):
    """A job of the host application, and the provenance run that executed it."""

    __tablename__ = "host_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    # A Column object, not the string "dag_runs.run_id": the provenance table
    # lives in the library's MetaData, not in the host's.
    run_id: Mapped[str | None] = mapped_column(ForeignKey(DagRunRow.run_id, ondelete="SET NULL"))

    # The class itself, not its name: it is mapped in the library's registry.
    run: Mapped[DagRunRow | None] = relationship(DagRunRow, viewonly=True)


def create_host_tables(engine: Engine) -> None:
    HostBase.metadata.create_all(engine, checkfirst=True)
