"""The servers phase: this store against its raw-driver floor (`server_floor`)
on PostgreSQL and MariaDB, one table per server.

Each part works in scratch databases on the server (created and dropped by
`scratch_database`, never the database the URL names), whose schema this
store creates; the floor then connects to the same database. Ours and the
floor take turns sample by sample, so drift in the machine hits both alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from benchmarks.config import Config
from benchmarks.harness import (
    Sample,
    Table,
    fmt_rate,
    fmt_ratio,
    interleaved,
    median_rate,
    progress,
    time_calls,
    time_threads,
)
from benchmarks.paths import (
    LOOKUP_MEAN_NOTE,
    differences,
    lookup_answers,
    time_lookups,
    time_reads,
    tree_answers,
)
from benchmarks.server_floor import ServerFloor, open_server_floor
from benchmarks.workload import load_ours, run_dag, store_runs

SERVER_WRITER_THREADS = 8


def phase_servers(cfg: Config, servers: dict[str, str]) -> Iterator[Table]:
    """One table per server as it is done, `servers` mapping its name to its SQLAlchemy URL."""
    for name, url in servers.items():
        yield server_table(cfg, name, url)


def server_table(cfg: Config, name: str, url: str) -> Table:
    table = Table(
        f"{name}: ours vs the raw-driver floor (loopback)",
        ["phase (calls/s)", "ours", "floor", "ours/floor"],
    )
    _writes(cfg, name, url, table)
    for size in cfg.read_sizes:
        _reads(cfg, name, url, size, table)
    table.notes += [
        "a DAG run: create_run; per node record_node_start + complete_node_with_edges "
        "(2 edges); 10% fail a node (fail_node_and_finish_run); 20% run 2 sub-DAG child runs; "
        "finish_run. Every call commits.",
        f"{SERVER_WRITER_THREADS} threads: ours only, one shared store, each thread on its own "
        "runs (the floor has one connection)",
        LOOKUP_MEAN_NOTE,
        "read stores are bulk-loaded through ours' tables, then ANALYZEd",
    ]
    return table


def _row(label: str, rates: Mapping[str, float | None]) -> list[str]:
    ours, floor = rates.get("ours"), rates.get("floor")
    return [label, fmt_rate(ours), fmt_rate(floor), fmt_ratio(ours, floor)]


def _lifecycle(store: Any, tag: str) -> Callable[[], int]:
    """A step running the next DAG run of `store` (thread-safe: ids come from one counter)."""
    counter = itertools.count()

    def step() -> int:
        k = next(counter)
        return run_dag(store, f"{tag}{k:08d}", k)

    return step


def _writes(cfg: Config, name: str, url: str, table: Table) -> None:
    from dag_provenance import DagProvenance
    from dag_provenance.testing import scratch_database

    progress(f"{name}: writes")
    threads = SERVER_WRITER_THREADS
    with scratch_database(url) as db:
        store = DagProvenance(db)
        floor: ServerFloor | None = None
        try:
            floor = open_server_floor(db)
            table.notes.append(f"server: {_server_version(store)}; floor: {floor.name}")
            ours, raw = _lifecycle(store, "w"), _lifecycle(floor, "f")
            ours()  # warm up: connections, statement caches
            raw()
            samplers: dict[str, Callable[[], Sample]] = {
                "ours": lambda: time_calls(ours, cfg.sample_s * 2),
                "floor": lambda: time_calls(raw, cfg.sample_s * 2),
                "threads": lambda: time_threads(ours, cfg.sample_s * 3, threads),
            }
            results = interleaved(samplers, cfg.reps)
        finally:
            if floor is not None:
                floor.close()
            store.close()
    rates = {k: median_rate(v) for k, v in results.items()}
    table.rows.append(_row("writes: DagRunner lifecycle, one thread", rates))
    table.rows.append([f"writes: {threads} threads (ours)", fmt_rate(rates["threads"]), "", ""])
    table.rows.append(
        [f"  {threads} threads / one thread", fmt_ratio(rates["threads"], rates["ours"]), "", ""]
    )
    failed = sum(s.failures for s in results["threads"])
    table.rows.append([f"  failed calls ({threads} threads, total)", str(failed), "", ""])
    errors = [e for s in results["threads"] for e in s.errors]
    if errors:
        table.notes.append(f"errors with {threads} threads, e.g.: {errors[0]}")


def _reads(cfg: Config, name: str, url: str, size: int, table: Table) -> None:
    from dag_provenance import DagProvenance
    from dag_provenance.testing import scratch_database

    progress(f"{name}: building the {size:,}-run store")
    with scratch_database(url) as db:
        store = DagProvenance(db)
        floor: ServerFloor | None = None
        try:
            load_ours(store.engine, store_runs(size))
            _analyze(store)
            floor = open_server_floor(db)
            stores = {"ours": store, "floor": floor}
            problems = differences(stores, lookup_answers) + differences(stores, tree_answers)
            table.notes += [f"{size:,} runs: {p}" for p in problems]
            where = f"{name} {size:,}"
            rows = time_lookups(where, stores, cfg.sample_s, cfg.reps)
            rows += time_reads(where, stores, cfg.sample_s, cfg.reps)
        finally:
            if floor is not None:
                floor.close()
            store.close()
    table.rows += [_row(f"{size:,} runs: {label}", rates) for label, rates in rows]


def _analyze(store: Any) -> None:
    """Refresh planner statistics after the bulk load, as autovacuum (PostgreSQL)
    or InnoDB's automatic recalculation (MariaDB) soon would on a live store."""
    from sqlalchemy import text

    keyword = "ANALYZE" if store.engine.dialect.name == "postgresql" else "ANALYZE TABLE"
    with store.engine.begin() as conn:
        for table in ("dag_runs", "node_executions", "edge_traversals"):
            conn.execute(text(f"{keyword} {table}"))


def _server_version(store: Any) -> str:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return str(conn.execute(text("SELECT VERSION()")).scalar_one()).split(" on ")[0]
