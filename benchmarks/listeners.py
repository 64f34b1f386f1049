"""What listening costs a write (issue 12): the DagRunner write lifecycle
(`run_dag`) on one database, by a store with no listener, with a listener
that does nothing, with `in_background` (a queue and a thread), and with an
`OpenLineageListener` whose transport keeps the events (they are built on
its thread, as for a real backend, but go nowhere).

    python -m benchmarks.listeners                     # SQLite file
    python -m benchmarks.listeners --postgres URL --mysql URL

Samples are interleaved (none, no-op, background, OpenLineage, none, ...).
Reported: the median calls/s, and the median CPU time per call of the whole
process (every thread: the listener's too), each with its ratio to no
listener. CPU time is the steadier figure: wall time on a SQLite file swings
with the disk. Background and OpenLineage samples end with a flush, so both
include building and handing over every event.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.transport import Transport

from benchmarks.harness import Sample, fmt_rate, interleaved, median_rate
from benchmarks.workload import run_dag
from dag_provenance import DagProvenance
from dag_provenance.events import ChangeEvent, in_background
from dag_provenance.lineage import OpenLineageListener
from dag_provenance.testing import scratch_database


class _Kept(Transport):
    kind = "kept"

    def __init__(self) -> None:
        self.count = 0

    def emit(self, event: Any) -> None:
        self.count += 1


def _nothing(event: ChangeEvent) -> None:
    pass


def _sampler(store: DagProvenance, dags: int, flush: Callable[[], object]) -> Callable[[], Sample]:
    serial = itertools.count()

    def sample() -> Sample:
        gc.collect()
        calls = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(dags):
            k = next(serial)
            calls += run_dag(store, f"bench-{id(store):x}-{k}", k)
        flush()
        return Sample(calls, time.perf_counter() - wall, cpu=time.process_time() - cpu)

    sample()  # warm
    return sample


def measure(target: str, dags: int, reps: int) -> dict[str, list[Sample]]:
    background = in_background(_nothing, max_queue=1_000_000)
    lineage = OpenLineageListener(OpenLineageClient(transport=_Kept()), max_queue=1_000_000)
    stores = {
        "no listener": (DagProvenance(target), lambda: None),
        "no-op listener": (DagProvenance(target, listeners=[_nothing]), lambda: None),
        "in_background(no-op)": (
            DagProvenance(target, listeners=[background]),
            lambda: background.flush(None),
        ),
        "OpenLineageListener": (
            DagProvenance(target, listeners=[lineage]),
            lambda: lineage.flush(None),
        ),
    }
    try:
        samplers = {name: _sampler(s, dags, f) for name, (s, f) in stores.items()}
        results = interleaved(samplers, reps)
    finally:
        for store, _ in stores.values():
            store.close()
        background.close()
        lineage.close()
    assert background.dropped == 0 and lineage.dropped == 0
    return results


def report(engine: str, results: dict[str, list[Sample]]) -> None:
    cpu = {name: statistics.median(s.cpu / s.calls for s in v) for name, v in results.items()}
    wall = {name: median_rate(v) for name, v in results.items()}
    print(f"\n{engine}: the write lifecycle (median of interleaved samples)")
    print(f"  {'':<24} {'calls/s':>10} {'ratio':>6}   {'CPU/call':>9} {'ratio':>6}")
    for name in results:
        print(
            f"  {name:<24} {fmt_rate(wall[name]):>10} {wall[name] / wall['no listener']:5.2f}x"
            f"   {cpu[name] * 1e6:7.1f}us {cpu[name] / cpu['no listener']:5.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres")
    parser.add_argument("--mysql")
    parser.add_argument("--dags", type=int, default=40, help="DAG runs per sample")
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    targets = [("SQLite file", "sqlite:///")]
    targets += [("PostgreSQL", args.postgres)] if args.postgres else []
    targets += [("MariaDB", args.mysql)] if args.mysql else []
    for engine, url in targets:
        with scratch_database(url) as target:
            report(engine, measure(target, args.dags, args.reps))


if __name__ == "__main__":
    main()
