"""Profile this store's write lifecycle under cProfile.

    python -m benchmarks.profile_writes [--runs 300] [--top 25] [--sort cumulative] [--url URL]

Runs the DagRunner-shaped write lifecycle of the benchmark (`run_dag`) on a
fresh SQLite file (or on a scratch database on the server `--url` points at)
and prints the top entries of the profile, to find what the hot path spends
its time on: statement construction, session setup, JSON, validation, the
driver.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/profile_writes.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workload import run_dag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="DAG runs to profile")
    parser.add_argument("--top", type=int, default=25, help="entries to print")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (e.g. tottime)")
    parser.add_argument("--url", help="a server URL to profile on instead of a SQLite file")
    args = parser.parse_args(argv)

    from dag_provenance import DagProvenance
    from dag_provenance.testing import scratch_database

    with ExitStack() as stack:
        if args.url:
            target: str | Path = stack.enter_context(scratch_database(args.url))
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="dp-profile-"))
            target = Path(folder) / "profile.db"
        store = DagProvenance(target)
        stack.callback(store.close)
        for k in range(10):  # warm up: connections, compiled statement cache
            run_dag(store, f"warm{k}", k)

        profiler = cProfile.Profile()
        calls = 0
        start = time.perf_counter()
        profiler.enable()
        for k in range(args.runs):
            calls += run_dag(store, f"p{k:07d}", k)
        profiler.disable()
        elapsed = time.perf_counter() - start

    print(
        f"{args.runs} DAG runs, {calls} public calls in {elapsed:.2f} s under cProfile "
        f"({calls / elapsed:,.0f} calls/s with profiling overhead)"
    )
    # Cumulative time finds the expensive layers; own time finds the hot functions.
    for key in dict.fromkeys([args.sort, "tottime"]):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
