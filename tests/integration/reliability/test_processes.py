"""Several processes on one database, and a writer killed mid-workload: no
error reaches a caller, nothing committed is lost, nothing half-written stays."""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest
import sqlalchemy as sa

from dag_provenance import DagProvenance, migrate
from dag_provenance.engine import make_engine

from . import processes
from .workload import (
    fails,
    integrity_check,
    row_counts,
    rows_of_runs,
    stored_violations,
    write_run,
)

PROCESSES = 4
RUNS_PER_PROCESS = 30
# Kill points, in calls done, chosen to fall inside runs (a run is 12 or 9 calls).
KILL_AFTER_CALLS = (37, 53, 71, 89)

spawn = multiprocessing.get_context("spawn")


@pytest.mark.slow
def test_four_processes_starting_together_on_one_database_write_everything(
    empty_db_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    with spawn.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=spawn) as pool:
        barrier = manager.Barrier(PROCESSES)
        futures = [
            pool.submit(
                processes.write_runs_together, empty_db_url, tag, w, RUNS_PER_PROCESS, barrier
            )
            for w in range(PROCESSES)
        ]
        # .result() re-raises a child's error here: none may reach a caller.
        assert [f.result(timeout=120) for f in futures] == [RUNS_PER_PROCESS] * PROCESSES

    engine = make_engine(empty_db_url)
    try:
        per_process = rows_of_runs(range(RUNS_PER_PROCESS))
        assert row_counts(engine).runs == per_process.runs * PROCESSES
        assert row_counts(engine).nodes == per_process.nodes * PROCESSES
        assert row_counts(engine).edges == per_process.edges * PROCESSES
        assert stored_violations(engine) == []
        assert integrity_check(engine) == []
    finally:
        engine.dispose()


@pytest.mark.slow
def test_stores_starting_together_on_a_database_behind_run_each_migration_step_once(
    empty_db_url: str,
) -> None:
    engine = make_engine(empty_db_url)
    try:
        migrate.upgrade(engine, "0002")  # lythonic 0.0.28's schema: every later step to run
    finally:
        engine.dispose()

    with spawn.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=spawn) as pool:
        barrier = manager.Barrier(PROCESSES)
        futures = [
            pool.submit(processes.open_store_counting_schema_changes, empty_db_url, barrier)
            for _ in range(PROCESSES)
        ]
        changes = sorted(f.result(timeout=120) for f in futures)

    # One process migrated; the others found the schema at head under the lock.
    assert changes[:-1] == [0] * (PROCESSES - 1)
    assert changes[-1] > 0
    engine = make_engine(empty_db_url)
    try:
        version = sa.table(migrate.VERSION_TABLE, sa.column("version_num"))
        with engine.connect() as conn:
            assert conn.execute(sa.select(version.c.version_num)).scalars().all() == [
                migrate.head_revision()
            ]
    finally:
        engine.dispose()


# --- crash ------------------------------------------------------------------------


def kill_after(url: str, tag: str, first_run: int, calls: int) -> int:
    """Start a writer, SIGKILL it once it reports `calls` calls done (it keeps
    writing meanwhile), and return how many whole runs it reported done."""
    receiver, sender = spawn.Pipe(duplex=False)
    child = spawn.Process(target=processes.write_until_killed, args=(url, tag, first_run, sender))
    child.start()
    sender.close()
    runs_done = 0
    try:
        done = 0
        while done < calls:
            assert receiver.poll(60), "the writer stopped reporting"
            done, runs_done = receiver.recv()
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    return runs_done


@pytest.mark.slow
def test_a_writer_killed_mid_workload_leaves_whole_records_and_the_store_carries_on(
    empty_db_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    DagProvenance(empty_db_url).close()
    engine = make_engine(empty_db_url)
    try:
        first_run = 0
        for cycle, calls in enumerate(KILL_AFTER_CALLS):
            runs_done = kill_after(empty_db_url, f"{tag}-c{cycle}", first_run, calls)

            assert integrity_check(engine) == []
            assert stored_violations(engine) == []
            # Every run the writer reported done is there, whole.
            done_ids = [f"{tag}-c{cycle}-r{i}" for i in range(first_run, first_run + runs_done)]
            assert row_counts(engine, done_ids) == rows_of_runs(
                range(first_run, first_run + runs_done)
            )
            first_run += runs_done + 1

        # A new store opens the database and carries on writing.
        with DagProvenance(empty_db_url) as store:
            after = [f"{tag}-after-{i}" for i in range(3)]
            for i, run_id in enumerate(after):
                write_run(store, run_id, i)
            assert [store.get_run(r)["status"] for r in after] == [  # type: ignore[index]
                "failed" if fails(i) else "completed" for i in range(3)
            ]
        assert row_counts(engine, after) == rows_of_runs(range(3))
        assert stored_violations(engine) == []
        assert integrity_check(engine) == []
    finally:
        engine.dispose()
