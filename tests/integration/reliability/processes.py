"""What the child processes of the reliability tests run (spawned, so these
functions are importable by module name and take only picklable arguments)."""

from __future__ import annotations

from multiprocessing.connection import Connection as Pipe
from typing import Any

from sqlalchemy import event

from dag_provenance import DagProvenance

from .workload import write_run

SCHEMA_CHANGES = (
    "CREATE",
    "ALTER",
    "DROP",
    "INSERT INTO DAG_PROVENANCE_VERSION",
    "UPDATE DAG_PROVENANCE_VERSION",
)


def write_runs_together(url: str, tag: str, worker: int, runs: int, barrier: Any) -> int:
    """Open a store once every worker is ready (on a database that may still be
    empty), then write `runs` runs of the workload. Returns the runs written."""
    barrier.wait()
    with DagProvenance(url) as store:
        for i in range(runs):
            write_run(store, f"{tag}-p{worker}-r{i}", i)
    return runs


def open_store_counting_schema_changes(url: str, barrier: Any) -> int:
    """Open a store once every process is ready; return how many schema-changing
    statements (DDL, version-table writes) this process sent."""
    changes = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal changes
        changes += " ".join(statement.split()).upper().startswith(SCHEMA_CHANGES)

    from dag_provenance.engine import make_engine

    engine = make_engine(url)
    event.listen(engine, "before_cursor_execute", count)
    barrier.wait()
    try:
        DagProvenance(engine).close()
    finally:
        engine.dispose()
    return changes


def write_until_killed(url: str, tag: str, first_run: int, pipe: Pipe) -> None:
    """Write runs of the workload forever, sending `(calls, runs)` done after
    every call, until the parent kills this process."""
    calls = 0
    runs = 0

    def report() -> None:
        nonlocal calls
        calls += 1
        pipe.send((calls, runs))

    store = DagProvenance(url)
    i = first_run
    while True:
        write_run(store, f"{tag}-r{i}", i, after_call=report)
        runs += 1
        pipe.send((calls, runs))
        i += 1
