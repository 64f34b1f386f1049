"""The async store against the sync store driven from asyncio (issue 11):
write throughput and the event loop's worst lag with 1, 10 and 100 tasks.

    python -m benchmarks.async_tasks                  # SQLite file only
    python -m benchmarks.async_tasks --quick          # smoke run: fewer, smaller samples
    python -m benchmarks.async_tasks --postgres URL --mysql URL   # ~4.5 min on 2 cores

Every task runs the DagRunner-shaped write lifecycle (`run_dag_async`) on
runs of its own; a sample is a fixed number of DAG runs split evenly over
the tasks, so every mode and every task count does the same calls with the
same data. While a sample runs, a ticker task sleeps 1 ms in a loop and
records how late it wakes: the longest time anything held the loop; and
the process's CPU time per call is taken (all its threads, not the server's).

On SQLite and PostgreSQL three modes take turns, sample by sample:

- `AsyncDagProvenance`: the async store, every exchange awaited;
- `to_thread`: `DagProvenance`, each call `await asyncio.to_thread(...)` on
  the loop's default thread pool;
- `on the loop`: `DagProvenance` called on the loop's own thread (each call
  blocks the loop), then `await asyncio.sleep(0)` so the other tasks get a
  turn between calls, as they would between the nodes of a real DAG.

On PostgreSQL also the async store on a pool of as many connections as
`to_thread` has threads, to tell the pool's size from the async path's cost.

On MariaDB: `AsyncDagProvenance` on its two asyncio drivers, aiomysql (what
a `mysql+pymysql://` URL is served by) and asyncmy (refused in a URL, so
given as an `AsyncEngine`), both on engines made alike by
`create_async_engine`, beside the store's own aiomysql engine.

Each part works in a scratch database (`scratch_database`: a temp file for
SQLite, a database created and dropped on a server). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ParamSpec

if __package__ in (None, ""):  # run as a script: python benchmarks/async_tasks.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Table, fmt_rate, fmt_ratio, machine_lines, progress
from benchmarks.workload import AsyncWriteStore, WriteStore, run_dag_async
from dag_provenance.engine import ASYNC_POOL

P = ParamSpec("P")

TASK_COUNTS = (1, 10, 100)
MARIADB_TASK_COUNTS = (1, 10)
TICK_S = 0.001
ASYNC, TO_THREAD, ON_LOOP = (
    "AsyncDagProvenance",
    "to_thread(DagProvenance)",
    "DagProvenance on loop",
)
THREADS = min(32, (os.cpu_count() or 1) + 4)  # the loop's default executor's
ASYNC_SMALL_POOL = f"AsyncDagProvenance, pool {THREADS}+0"
AIOMYSQL_STORE = "aiomysql (the store's engine)"
AIOMYSQL, ASYNCMY = "aiomysql (create_async_engine)", "asyncmy (create_async_engine)"


@dataclass(frozen=True)
class Config:
    runs_per_sample: int  # DAG runs per sample, split evenly over the tasks
    reps: int  # samples per mode and task count; the table shows the median


FULL = Config(runs_per_sample=300, reps=3)
QUICK = Config(runs_per_sample=100, reps=2)


# The sync store as coroutines


class _SyncAsCoroutines:
    """`DagProvenance`'s write calls as coroutines, for `run_dag_async`;
    subclasses say how each call is run (`_call`)."""

    def __init__(self, store: WriteStore) -> None:
        self._store = store

    async def _call(self, method: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs) -> None:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        method = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> None:
            await self._call(method, *args, **kwargs)

        return call


class ThreadHop(_SyncAsCoroutines):
    """Each call on the loop's default thread pool (`asyncio.to_thread`)."""

    async def _call(self, method: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs) -> None:
        await asyncio.to_thread(method, *args, **kwargs)


class OnLoop(_SyncAsCoroutines):
    """Each call on the loop's thread, blocking it; then the other tasks' turn."""

    async def _call(self, method: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs) -> None:
        method(*args, **kwargs)
        await asyncio.sleep(0)


# Sampling


@dataclass
class TaskSample:
    calls: int
    seconds: float
    cpu_seconds: float  # this process's, all its threads
    worst_lag_s: float
    failures: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else float("nan")


class LagMeter:
    """A task sleeping `TICK_S` in a loop until stopped, keeping how late it
    woke at worst: the longest stretch the loop ran something else."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.worst_s = max(self.worst_s, time.perf_counter() - asked - TICK_S)

    def stop(self) -> None:
        self._stop.set()


_sample_ids = itertools.count()


async def sample(store: AsyncWriteStore, tasks: int, runs: int) -> TaskSample:
    """`runs` DAG runs on `store` from `tasks` concurrent tasks (each its own
    share, in turn), timed, with the loop's worst lag meanwhile."""
    tag = f"s{next(_sample_ids):05d}"
    per_task = runs // tasks
    gc.collect()  # before the ticker starts: a collection now is no lag of the store's
    meter = LagMeter()
    ticker = asyncio.create_task(meter.run())
    await asyncio.sleep(TICK_S)
    failures: list[str] = []

    async def writer(t: int) -> int:
        calls = 0
        for k in range(t * per_task, (t + 1) * per_task):
            try:
                calls += await run_dag_async(store, f"{tag}-{k:05d}", k)
            except Exception as e:  # counted, shown under the table; the run is abandoned
                failures.append(f"{type(e).__name__}: {str(e).splitlines()[0][:150]}")
        return calls

    start, cpu = time.perf_counter(), time.process_time()
    calls = await asyncio.gather(*(writer(t) for t in range(tasks)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    meter.stop()
    await ticker
    return TaskSample(sum(calls), elapsed, cpu, meter.worst_s, len(failures), failures[:3])


@dataclass
class Cell:
    """The samples of one mode at one task count."""

    samples: list[TaskSample] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(s.rate for s in self.samples)

    @property
    def lag_ms(self) -> str:
        """The median of the samples' worst lags, and the worst of all in brackets."""
        lags = [s.worst_lag_s * 1000 for s in self.samples]
        return f"{statistics.median(lags):,.1f} ({max(lags):,.1f})"

    @property
    def cpu_us(self) -> str:
        """The median CPU time per call of this process (all its threads), in µs."""
        return f"{statistics.median(s.cpu_seconds / s.calls * 1e6 for s in self.samples):,.0f}"

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.samples)


Cells = dict[tuple[int, str], Cell]


async def measure(
    cfg: Config, modes: Mapping[str, AsyncWriteStore], task_counts: Sequence[int]
) -> Cells:
    """Every mode at every task count, `cfg.reps` times, the samples interleaved
    (each repetition runs every task count and mode in turn), so drift in the
    machine's speed hits every contender alike."""
    for name, store in modes.items():  # warm up: pools at full size, statement caches
        progress(f"  warming up {name}")
        await sample(store, max(task_counts), max(task_counts))
    cells = {(n, name): Cell() for n in task_counts for name in modes}
    for rep in range(cfg.reps):
        progress(f"  repetition {rep + 1} of {cfg.reps}")
        for n in task_counts:
            for name, store in modes.items():
                cells[n, name].samples.append(await sample(store, n, cfg.runs_per_sample))
    return cells


# The parts


async def sync_vs_async(cfg: Config, engine: str, url: str, *, small_pool: bool) -> Cells:
    """The modes on the database at `url` (a scratch database); with
    `small_pool`, also the async store on a pool of as many connections as
    `to_thread` has threads."""
    from dag_provenance import AsyncDagProvenance, DagProvenance
    from dag_provenance.engine import make_async_engine

    progress(f"{engine}: {ASYNC} vs {TO_THREAD} vs {ON_LOOP}")
    sync_store = DagProvenance(url)
    small = make_async_engine(url, pool_size=THREADS, max_overflow=0) if small_pool else None
    try:
        async with AsyncExitStack() as stack:
            modes: dict[str, AsyncWriteStore] = {
                ASYNC: await stack.enter_async_context(AsyncDagProvenance(url))
            }
            if small is not None:
                modes[ASYNC_SMALL_POOL] = await stack.enter_async_context(AsyncDagProvenance(small))
            modes |= {TO_THREAD: ThreadHop(sync_store), ON_LOOP: OnLoop(sync_store)}
            cells = await measure(cfg, modes, TASK_COUNTS)
    finally:
        if small is not None:
            await small.dispose()
        sync_store.close()
    return cells


async def mysql_drivers(cfg: Config, url: str) -> Cells:
    """`AsyncDagProvenance` on aiomysql and on asyncmy, on the MariaDB database at `url`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

    from dag_provenance import AsyncDagProvenance

    progress(f"MariaDB: {AIOMYSQL_STORE} vs {AIOMYSQL} vs {ASYNCMY}")
    engines: dict[str, AsyncEngine] = {}
    try:
        async with AsyncExitStack() as stack:
            modes: dict[str, AsyncWriteStore] = {
                AIOMYSQL_STORE: await stack.enter_async_context(AsyncDagProvenance(url))
            }
            for name, driver in ((AIOMYSQL, "aiomysql"), (ASYNCMY, "asyncmy")):
                # An AsyncEngine is used as given: the store refuses only asyncmy URLs.
                engines[name] = create_async_engine(make_url(url).set(drivername=f"mysql+{driver}"))
                modes[name] = await stack.enter_async_context(AsyncDagProvenance(engines[name]))
            cells = await measure(cfg, modes, MARIADB_TASK_COUNTS)
    finally:
        for made in engines.values():
            await made.dispose()
    return cells


def _rows(engine: str, cells: Cells, base: str) -> list[list[str]]:
    """A row per task count and mode, its rate also as a ratio to mode `base`'s."""
    rows = []
    for (n, name), cell in cells.items():
        base_rate = cells[n, base].rate
        rows.append(
            [
                engine,
                str(n),
                name,
                fmt_rate(cell.rate),
                fmt_ratio(cell.rate, base_rate),
                cell.lag_ms,
                cell.cpu_us,
            ]
        )
    return rows


def _failure_notes(engine: str, cells: Cells) -> list[str]:
    notes = []
    for (n, name), cell in cells.items():
        if cell.failures:
            errors = [e for s in cell.samples for e in s.errors]
            notes.append(
                f"WARNING {engine}, {n} tasks, {name}: {cell.failures} failed DAG runs, "
                f"e.g. {errors[0]}"
            )
    return notes


# Main

HEADERS = [
    "engine",
    "tasks",
    "mode",
    "calls/s",
    "ratio to to_thread",
    "worst loop lag (ms)",
    "CPU/call (µs)",
]
LAG_NOTE = (
    "worst loop lag: how late a task sleeping 1 ms woke at worst during a sample; "
    "the median over the samples, the worst of all in brackets"
)
CPU_NOTE = (
    "CPU/call: this process's CPU time (all threads) per public call, the median over the "
    "samples; the database server's is not counted"
)


def _work_note(cfg: Config, task_counts: Sequence[int]) -> str:
    shares = ", ".join(f"{n} x {cfg.runs_per_sample // n}" for n in task_counts)
    return (
        f"a sample: {cfg.runs_per_sample} DAG runs of the write lifecycle (tasks x runs each: "
        f"{shares}); {cfg.reps} samples per row, interleaved with the other rows'; "
        "calls/s: public calls per second, the median over the samples"
    )


def sync_vs_async_table(cfg: Config, results: Mapping[str, Cells]) -> Table:
    table = Table("Async store vs the sync store driven from asyncio (writes)", HEADERS)
    for engine, cells in results.items():
        table.rows += _rows(engine, cells, TO_THREAD)
        table.notes += _failure_notes(engine, cells)
    table.notes += [
        _work_note(cfg, TASK_COUNTS),
        LAG_NOTE,
        CPU_NOTE,
        f"to_thread: the loop's default executor, min(32, cores + 4) = {THREADS} threads; "
        "pools: on PostgreSQL SQLAlchemy's default 5 + 10 overflow for the sync store, "
        f"{ASYNC_POOL['pool_size']} + {ASYNC_POOL['max_overflow']} for the async store "
        "(dag_provenance.engine.ASYNC_POOL); 8 + 16 on SQLite",
        f"pool {THREADS}+0 (PostgreSQL): the async store on "
        f"make_async_engine(url, pool_size={THREADS}, max_overflow=0), as many connections as "
        "to_thread has threads",
        "on loop: each call blocks the loop, then `await asyncio.sleep(0)` gives the other "
        "tasks a turn (without it a task would hold the loop for all its runs)",
    ]
    return table


def mysql_drivers_table(cfg: Config, cells: Cells) -> Table:
    headers = [*HEADERS]
    headers[2:5] = ["driver", "calls/s", "ratio to aiomysql"]
    table = Table("AsyncDagProvenance on MariaDB: aiomysql vs asyncmy (writes)", headers)
    table.rows += _rows("MariaDB", cells, AIOMYSQL)
    table.notes += _failure_notes("MariaDB", cells)
    table.notes += [
        _work_note(cfg, MARIADB_TASK_COUNTS),
        LAG_NOTE,
        CPU_NOTE,
        "create_async_engine: the scratch database's URL with the driver swapped, "
        "SQLAlchemy's defaults (among them a ROLLBACK, a round trip, as each connection goes "
        "back to the pool); the store's engine (from the mysql+pymysql:// URL) makes its "
        "session settings at connect and skips that ROLLBACK after a unit that ended cleanly",
        "asyncmy is not the store's driver: asyncmy 0.2 hangs, fails or returns no row reading "
        "back a value of 16 MiB or more (a row split over several packets), so the store maps "
        "mysql+pymysql:// URLs to aiomysql and refuses mysql+asyncmy:// ones",
    ]
    return table


async def run(cfg: Config, postgres: str | None, mysql: str | None) -> list[Table]:
    """Each part in a scratch database of its own, then the tables."""
    from dag_provenance.testing import scratch_database

    results: dict[str, Cells] = {}
    targets = {"PostgreSQL": postgres, "SQLite file": "sqlite://"}
    for engine, url in targets.items():
        if url:
            with scratch_database(url, prefix="dp_async_") as db:
                small_pool = engine == "PostgreSQL"
                results[engine] = await sync_vs_async(cfg, engine, db, small_pool=small_pool)
    tables = [sync_vs_async_table(cfg, results)]
    if mysql:
        with scratch_database(mysql, prefix="dp_async_") as db:
            tables.append(mysql_drivers_table(cfg, await mysql_drivers(cfg, db)))
    return tables


def _async_versions() -> str:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    names = ("aiosqlite", "aiomysql", "asyncmy", "greenlet")
    return "async:    " + ", ".join(f"{d} {version(d)}" for d in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: fewer, smaller samples")
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL")
    parser.add_argument("--mysql", metavar="URL", help="also compare the drivers on this MariaDB")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL

    header = [*machine_lines(), _async_versions(), f"mode:     {'quick' if args.quick else 'full'}"]
    print("\n".join(f"    {line}" for line in header), flush=True)
    started = time.perf_counter()
    tables = asyncio.run(run(cfg, args.postgres, args.mysql))
    print("\n" + "\n\n".join(t.markdown() for t in tables))
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
