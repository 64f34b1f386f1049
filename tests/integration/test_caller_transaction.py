"""A store given the caller's `Connection` or ORM `Session` records inside the
caller's transaction, on every engine: the caller's commit keeps its own rows
and the provenance together, its rollback removes both, and a refused call
does not poison the transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, func, insert, select
from sqlalchemy.orm import Session

from dag_provenance import DagProvenance, DuplicateRunError, RunNotFoundError

from .conftest import dump_tables
from .host_app import Job, create_host_tables

NewId = Callable[[str], str]
Owner = Connection | Session
OpenOwner = Callable[[], AbstractContextManager[Owner]]


@pytest.fixture(params=["connection", "session"])
def owned(request: pytest.FixtureRequest, provenance: DagProvenance) -> OpenOwner:
    """Opens what the caller owns: a Connection or a Session on the store's database."""
    create_host_tables(provenance.engine)

    @contextmanager
    def open_owner() -> Iterator[Owner]:
        if request.param == "connection":
            with provenance.engine.connect() as conn:
                yield conn
        else:
            with Session(provenance.engine) as session:
                yield session

    return open_owner


def _add_job(owner: Owner, name: str, run_id: str | None) -> None:
    if isinstance(owner, Session):
        owner.add(Job(name=name, run_id=run_id))
        owner.flush()
    else:
        owner.execute(insert(Job).values(name=name, run_id=run_id))


def _jobs(store: DagProvenance, name: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).where(Job.name == name)).scalar_one()


def test_the_caller_s_commit_keeps_its_rows_and_the_provenance(
    owned: OpenOwner,
    provenance: DagProvenance,
    new_id: NewId,
) -> None:
    run_id, job = new_id("run"), new_id("job")
    with owned() as owner:
        store = DagProvenance(owner)
        store.create_run(run_id, "tests:shared", {"job": job})
        store.record_node_start(run_id, "a", "{}")
        _add_job(owner, job, run_id)
        store.complete_node_with_edges(run_id, "a", '"ok"', [("a", "b")])
        store.finish_run(run_id, "completed")
        # Inside the transaction the store reads what it wrote there.
        assert (store.get_run(run_id) or {})["status"] == "completed"
        assert provenance.get_run(run_id) is None  # not committed yet
        owner.commit()

    assert (provenance.get_run(run_id) or {})["status"] == "completed"
    assert provenance.get_node_output(run_id, "a") == '"ok"'
    assert _jobs(provenance, job) == 1


def test_the_caller_s_rollback_removes_its_rows_and_the_provenance(
    owned: OpenOwner,
    provenance: DagProvenance,
    new_id: NewId,
) -> None:
    run_id, job = new_id("run"), new_id("job")
    before = dump_tables(provenance)
    with owned() as owner:
        store = DagProvenance(owner)
        store.create_run(run_id, "tests:shared", {})
        _add_job(owner, job, run_id)
        store.record_node_start(run_id, "a", "{}")
        owner.rollback()

    assert dump_tables(provenance) == before
    assert _jobs(provenance, job) == 0


def test_a_refused_call_does_not_poison_the_caller_s_transaction(
    owned: OpenOwner,
    provenance: DagProvenance,
    new_id: NewId,
) -> None:
    run_id, job = new_id("run"), new_id("job")
    with owned() as owner:
        store = DagProvenance(owner)
        store.create_run(run_id, "tests:shared", {})
        with pytest.raises(DuplicateRunError):
            store.create_run(run_id, "tests:shared", {})
        with pytest.raises(RunNotFoundError):
            store.record_node_start(new_id("missing"), "a", "{}")
        # The transaction goes on: more writes, the caller's included, commit.
        store.record_node_start(run_id, "a", "{}")
        _add_job(owner, job, run_id)
        owner.commit()

    assert [n["node_label"] for n in provenance.get_node_executions(run_id)] == ["a"]
    assert _jobs(provenance, job) == 1


def test_a_batch_is_a_savepoint_of_the_caller_s_transaction(
    owned: OpenOwner,
    provenance: DagProvenance,
    new_id: NewId,
) -> None:
    kept, dropped = new_id("kept"), new_id("dropped")
    with owned() as owner:
        store = DagProvenance(owner)
        with store.batch():
            store.create_run(kept, "tests:shared", {})
        with pytest.raises(RuntimeError, match="gave up"), store.batch():
            store.create_run(dropped, "tests:shared", {})
            raise RuntimeError("gave up")
        assert store.get_run(dropped) is None
        assert provenance.get_run(kept) is None  # the batch waits for the caller
        owner.commit()

    assert provenance.get_run(kept) is not None
    assert provenance.get_run(dropped) is None


def test_the_store_never_closes_or_ends_the_caller_s_connection(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    with provenance.engine.connect() as conn:
        with DagProvenance(conn) as store:
            store.create_run(run_id, "tests:shared", {})
        assert not conn.closed
        assert conn.in_transaction()  # still the caller's to commit
        conn.commit()
    assert provenance.get_run(run_id) is not None


def test_a_plain_sqlite_engine_s_connection_keeps_the_caller_in_charge(
    tmp_path: Path, new_id: NewId
) -> None:
    """pysqlite defers BEGIN; a SAVEPOINT sent first would open SQLite's
    transaction and its release would commit, whatever the caller did."""
    path = tmp_path / "plain.db"
    DagProvenance(path).close()  # migrated by the library's own engine
    plain = create_engine(f"sqlite:///{path}")  # not configured by the library
    rolled_back, committed = new_id("run"), new_id("run")
    try:
        with plain.connect() as conn:
            DagProvenance(conn).create_run(rolled_back, "tests:plain", {})
            conn.rollback()
            DagProvenance(conn).create_run(committed, "tests:plain", {})
            conn.commit()
        with pytest.raises(RuntimeError, match="block fails"), plain.begin() as conn:
            DagProvenance(conn).create_run(new_id("run"), "tests:plain", {})
            raise RuntimeError("the caller's block fails")
    finally:
        plain.dispose()
    reader = DagProvenance(path)
    assert reader.get_run(rolled_back) is None
    assert reader.get_run(committed) is not None
    assert [r.dag_nsref for r in reader.get_recent_runs()] == ["tests:plain"]
