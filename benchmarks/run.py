"""Benchmark dag-provenance against the original lythonic store and raw-driver floors.

    python -m benchmarks.run            # full run on SQLite (~10 minutes)
    python -m benchmarks.run --quick    # smoke run (about a minute)
    python -m benchmarks.run --postgres URL --mysql URL   # also ours vs floors on the servers

See benchmarks/README.md for what each phase measures.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.config import FULL, QUICK, Config
from benchmarks.floor import RawSqliteStore
from benchmarks.harness import (
    Sample,
    Table,
    fmt_rate,
    fmt_ratio,
    interleaved,
    machine_lines,
    median_rate,
    progress,
    repeat,
    time_calls,
    time_threads,
    warm_sampler,
)
from benchmarks.paths import (
    LOOKUP_MEAN_NOTE,
    differences,
    lookup_answers,
    time_lookups,
    time_reads,
    tree_answers,
)
from benchmarks.servers import phase_servers
from benchmarks.workload import (
    INSPECT_RUN,
    Bundle,
    load_original_schema,
    load_ours,
    run_dag,
    store_runs,
    tree_runs,
)

KINDS = ("ours", "original", "floor")
PHASES = ("writes", "concurrent", "reads", "lookups", "trees", "flat", "open")
READ_STORE_PHASES = ("reads", "lookups")  # they share the stores of `ReadStores`
WRITER_THREADS = 4


# The three stores


def open_store(kind: str, path: Path) -> Any:
    if kind == "ours":
        from dag_provenance import DagProvenance

        return DagProvenance(path)
    if kind == "original":
        from lythonic.compose.dag_provenance import DagProvenance as OriginalProvenance

        return OriginalProvenance(Path(path))
    return RawSqliteStore(path)


def close_store(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def build_store(kind: str, path: Path, bundles: Iterable[Bundle]) -> Any:
    """A store of `kind` at `path` holding `bundles`, written through its own schema."""
    store = open_store(kind, path)
    if kind == "ours":
        load_ours(store.engine, bundles)
    else:
        load_original_schema(path, bundles)
    return store


def compare_table(title: str, first_header: str = "phase (calls/s)") -> Table:
    return Table(title, [first_header, *KINDS, "ours/original", "ours/floor"])


def compare_row(label: str, rates: dict[str, float | None]) -> list[str]:
    return [
        label,
        *(fmt_rate(rates.get(k)) for k in KINDS),
        fmt_ratio(rates.get("ours"), rates.get("original")),
        fmt_ratio(rates.get("ours"), rates.get("floor")),
    ]


# Phases


def phase_writes(cfg: Config, work: Path, concurrent: bool) -> Table:
    mode = f"{WRITER_THREADS} threads, one shared store" if concurrent else "one thread"
    progress(f"writes ({mode})")
    tag = "c" if concurrent else "w"
    stores = {k: open_store(k, work / f"writes-{tag}-{k}.db") for k in KINDS}
    counters = {k: itertools.count() for k in KINDS}

    def step_for(kind: str) -> Callable[[], int]:
        store, counter = stores[kind], counters[kind]

        def step() -> int:
            k = next(counter)
            return run_dag(store, f"{tag}{k:08d}", k)

        return step

    def sampler(kind: str) -> Callable[[], Sample]:
        if concurrent:
            return lambda: time_threads(step_for(kind), cfg.sample_s * 3, WRITER_THREADS)
        return lambda: time_calls(step_for(kind), cfg.sample_s * 2)

    try:
        for k in KINDS:
            step_for(k)()  # warm up: connections, statement caches
        results = interleaved({k: sampler(k) for k in KINDS}, cfg.reps)
    finally:
        for s in stores.values():
            close_store(s)
    title = "Concurrent writes" if concurrent else "Writes"
    table = compare_table(f"{title} (SQLite file, {mode})")
    table.rows.append(
        compare_row("DagRunner lifecycle", {k: median_rate(v) for k, v in results.items()})
    )
    table.notes.append(
        "a DAG run: create_run; per node record_node_start + complete_node_with_edges "
        "(2 edges); 10% fail a node (fail_node_and_finish_run); 20% run 2 sub-DAG child runs; "
        "finish_run. Every call commits."
    )
    if concurrent:
        failures = {k: sum(s.failures for s in v) for k, v in results.items()}
        table.rows.append(["failed calls (total)", *(str(failures[k]) for k in KINDS), "", ""])
        for k, v in results.items():
            errors = [e for s in v for e in s.errors]
            if errors:
                table.notes.append(f"{k} errors, e.g.: {errors[0]}")
    return table


class ReadStores:
    """The read phases' stores: per size, one of each kind holding the same runs
    (`store_runs`), built on first use and shared by the reads and lookups
    phases, so the large ones are written once."""

    def __init__(self, work: Path) -> None:
        self._work = work
        self._by_size: dict[int, dict[str, Any]] = {}

    def of_size(self, size: int) -> dict[str, Any]:
        if size not in self._by_size:
            progress(f"reads: building {size:,}-run stores")
            stores = self._by_size[size] = {}
            for kind in KINDS:
                t = time.perf_counter()
                path = self._work / f"reads{size}-{kind}.db"
                stores[kind] = build_store(kind, path, store_runs(size))
                progress(f"  {kind}: {time.perf_counter() - t:.1f} s")
        return self._by_size[size]

    def close(self) -> None:
        for stores in self._by_size.values():
            for store in stores.values():
                close_store(store)
        self._by_size.clear()


def _compare_rows(size: int, rows: list[tuple[str, dict[str, float | None]]]) -> list[list[str]]:
    return [compare_row(f"{size:,} runs: {label}", rates) for label, rates in rows]


def phase_reads(cfg: Config, read_stores: ReadStores) -> Table:
    table = compare_table("Reads (SQLite file)")
    for size in cfg.read_sizes:
        stores = read_stores.of_size(size)
        table.notes += [f"{size:,} runs: {p}" for p in differences(stores, tree_answers)]
        table.rows += _compare_rows(
            size, time_reads(f"reads {size:,}", stores, cfg.sample_s, cfg.reps)
        )
    table.notes.append(
        "stores hold runs shaped like the write phase's (5 nodes, 2 edges per node), written "
        "through each store's own schema; the floor has indexes on parent_run_id and started_at"
    )
    return table


def phase_lookups(cfg: Config, read_stores: ReadStores) -> Table:
    table = compare_table("Point lookups (SQLite file)")
    for size in cfg.read_sizes:
        stores = read_stores.of_size(size)
        table.notes += [f"{size:,} runs: {p}" for p in differences(stores, lookup_answers)]
        table.rows += _compare_rows(
            size, time_lookups(f"lookups {size:,}", stores, cfg.sample_s, cfg.reps)
        )
    table.notes += [
        "on the read phase's stores: a completed 5-node run (10 edges), its node n3's output, "
        "the pending nodes of a run that failed its third node",
        LOOKUP_MEAN_NOTE,
        "the floor runs a lookup's one SELECT in autocommit (SQLite's implicit one-statement "
        "transaction); ours and the original run it in a transaction of their own",
    ]
    return table


_ORIGINAL_CHILD_RUNS = textwrap.dedent(
    """
    import resource, sys, time
    from pathlib import Path
    from lythonic.compose.dag_provenance import DagProvenance
    store = DagProvenance(Path(sys.argv[1]))
    t = time.perf_counter()
    runs = store.get_child_runs(sys.argv[2])
    elapsed = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(elapsed, len(runs), rss)
    """
)


def _original_in_subprocess(path: Path, root: str, timeout_s: float) -> tuple[float | None, str]:
    """Time one original get_child_runs in a child process it can be killed in."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _ORIGINAL_CHILD_RUNS, str(path), root],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return None, f"n/a (original: >{timeout_s:.0f} s)"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return None, f"n/a (original: {last[:100]})"
    elapsed, _n, rss = done.stdout.split()
    return 1 / float(elapsed), f"original: one call in a subprocess, {float(rss):,.0f} MiB peak RSS"


def phase_trees(cfg: Config, work: Path) -> Table:
    table = compare_table("Run trees: get_child_runs of a root (SQLite file)")
    progress("trees: building stores")
    stores = {}
    paths = {}
    for kind in KINDS:
        paths[kind] = work / f"trees-{kind}.db"
        stores[kind] = open_store(kind, paths[kind])
        for size in cfg.tree_sizes:
            bundles = tree_runs(f"t{size}", size)
            if kind == "ours":
                load_ours(stores[kind].engine, bundles)
            else:
                load_original_schema(paths[kind], bundles)
    try:
        for size in cfg.tree_sizes:
            progress(f"trees: {size:,} descendants")
            root = f"t{size}"
            in_process = [k for k in KINDS if k != "original" or size <= cfg.original_tree_limit]

            def sampler(kind: str, root: str = root) -> Callable[[], Sample]:
                step = repeat(lambda: stores[kind].get_child_runs(root))
                return lambda: time_calls(step, cfg.sample_s)

            # A 100,000-run tree takes seconds per call: three repetitions suffice.
            results = interleaved({k: sampler(k) for k in in_process}, min(cfg.reps, 3))
            rates: dict[str, float | None] = {k: median_rate(v) for k, v in results.items()}
            if "original" not in in_process:
                rates["original"], note = _original_in_subprocess(
                    paths["original"], root, cfg.original_timeout_s
                )
                table.notes.append(f"{size:,} descendants: {note}")
            table.rows.append(compare_row(f"{size:,} descendants", rates))
    finally:
        for s in stores.values():
            close_store(s)
    table.notes.append("trees: 10 children per run, breadth first; each run has 2 nodes, 2 edges")
    return table


def phase_flat(cfg: Config, work: Path) -> Table:
    from dag_provenance import DagProvenance

    small, big = cfg.flat_sizes
    table = Table(
        "Flat cost as the store grows (ours, SQLite file)",
        ["read (calls/s)", f"{small:,} runs", f"{big:,} runs", "time big/small"],
    )
    stores: dict[str, Any] = {}
    try:
        for name, size in (("small", small), ("big", big)):
            progress(f"flat: building the {size:,}-run store")
            t = time.perf_counter()
            store = DagProvenance(work / f"flat-{size}.db")
            stores[name] = store
            n = cfg.flat_nodes_per_run
            bundles = store_runs(size, nodes_per_run=n, child_nodes=n, edges_per_node=1)
            load_ours(store.engine, bundles)
            nodes = _count_nodes(store)
            progress(f"  {time.perf_counter() - t:.1f} s")
            table.notes.append(f"{name}: {size:,} runs, {nodes:,} node executions (1 edge each)")
        for label, call in (
            ("get_recent_runs(limit=100)", lambda s: s.get_recent_runs(limit=100)),
            ("inspect_run (20-node run)", lambda s: s.inspect_run(INSPECT_RUN)),
        ):
            samplers = {n: warm_sampler(partial(call, s), cfg.sample_s) for n, s in stores.items()}
            results = interleaved(samplers, cfg.reps)
            r_small, r_big = median_rate(results["small"]), median_rate(results["big"])
            table.rows.append(
                [label, fmt_rate(r_small), fmt_rate(r_big), fmt_ratio(r_small, r_big)]
            )
    finally:
        for s in stores.values():
            close_store(s)
    return table


def _count_nodes(store: Any) -> int:
    from sqlalchemy import func, select

    from dag_provenance.orm import node_executions

    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(node_executions)).scalar_one())


def phase_open(cfg: Config, work: Path) -> Table:
    progress("constructor: opening existing stores, creating fresh ones")
    existing = {}
    for kind in KINDS:
        existing[kind] = work / f"open-{kind}.db"
        store = open_store(kind, existing[kind])
        for n in range(20):
            run_dag(store, f"o{n}", n)
        close_store(store)
    fresh = work / "fresh"
    fresh.mkdir()
    counter = itertools.count()

    def open_existing(kind: str) -> Callable[[], Sample]:
        return lambda: time_calls(
            repeat(lambda: close_store(open_store(kind, existing[kind]))), cfg.sample_s
        )

    def open_warm(kind: str) -> Callable[[], Sample]:
        # A long-running process (a server, a worker) that opens a store per
        # request while the database stays open in the process.
        keep = open_store(kind, existing[kind])

        def sample() -> Sample:
            return time_calls(
                repeat(lambda: close_store(open_store(kind, existing[kind]))), cfg.sample_s
            )

        kept.append(keep)
        return sample

    kept: list[Any] = []

    def create_fresh(kind: str) -> Callable[[], Sample]:
        return lambda: time_calls(
            repeat(lambda: close_store(open_store(kind, fresh / f"{kind}-{next(counter)}.db"))),
            cfg.sample_s,
        )

    table = compare_table("Opening a store: the constructor (SQLite file)", "constructor (calls/s)")
    for label, make in (
        ("open + close an existing store (cold)", open_existing),
        ("open + close an existing store (already open in the process)", open_warm),
        ("create a fresh store file", create_fresh),
    ):
        samplers = {k: make(k) for k in KINDS}
        for sampler in samplers.values():
            sampler()  # warm up
        results = interleaved(samplers, cfg.reps)
        table.rows.append(compare_row(label, {k: median_rate(v) for k, v in results.items()}))
        for store in kept:
            close_store(store)
        kept.clear()
    table.notes.append(
        "ours: DagProvenance(path) + close() (schema check, Alembic only when behind; "
        "cold pays SQLite's WAL open and final checkpoint, which the original's rollback "
        "journal does not have; already open: the process-wide engine and schema check "
        "are reused); "
        "original: DagProvenance(Path) (CREATE TABLE IF NOT EXISTS, column check); "
        "floor: connect, pragmas, CREATE ... IF NOT EXISTS"
    )
    shutil.rmtree(fresh, ignore_errors=True)
    return table


# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: small stores, short samples"
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    parser.add_argument(
        "--postgres", metavar="URL", help="also compare ours and its floor on this PostgreSQL"
    )
    parser.add_argument(
        "--mysql", metavar="URL", help="also compare ours and its floor on this MariaDB"
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the SQLite files go (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files afterwards")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    header = [*machine_lines(), f"mode:     {'quick' if args.quick else 'full'}"]
    print("\n".join(header), flush=True)
    work = Path(tempfile.mkdtemp(prefix="dp-bench-", dir=args.workdir))
    started = time.perf_counter()
    tables: list[Table] = []
    read_stores = ReadStores(work)
    runners: dict[str, Callable[[], Table]] = {
        "writes": lambda: phase_writes(cfg, work, concurrent=False),
        "concurrent": lambda: phase_writes(cfg, work, concurrent=True),
        "reads": lambda: phase_reads(cfg, read_stores),
        "lookups": lambda: phase_lookups(cfg, read_stores),
        "trees": lambda: phase_trees(cfg, work),
        "flat": lambda: phase_flat(cfg, work),
        "open": lambda: phase_open(cfg, work),
    }
    last_read_phase = max((PHASES.index(p) for p in READ_STORE_PHASES if p in phases), default=-1)
    try:
        for phase in PHASES:
            if phase in phases:
                tables.append(runners[phase]())
                print("\n" + tables[-1].text(), flush=True)
            if PHASES.index(phase) == last_read_phase:
                read_stores.close()
        servers = {
            name: url
            for name, url in (("PostgreSQL", args.postgres), ("MariaDB", args.mysql))
            if url
        }
        for table in phase_servers(cfg, servers):
            tables.append(table)
            print("\n" + table.text(), flush=True)
    finally:
        read_stores.close()
        if args.keep:
            progress(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    footer = f"total benchmark time: {time.perf_counter() - started:.0f} s"
    if args.markdown:
        print("\n" + "\n".join(f"    {line}" for line in header) + "\n")
        print("\n\n".join(t.markdown() for t in tables))
    print("\n" + footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
