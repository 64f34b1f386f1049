"""The web viewer at scale (issue 13): on a 100,000-run store, how long the
list page and a 200-node run page take to serve.

    python -m benchmarks.viewer                 # SQLite file, ~1 min to build
    python -m benchmarks.viewer --runs 20000    # a smaller store

The store is built in bulk (`store_runs`: runs shaped like DagRunner's, 10%
failed, 20% with sub-DAG runs, the newest 50 still running) plus one run of
200 nodes; the viewer is served by uvicorn on loopback, as
`dag-provenance serve` serves it, and each page is fetched over HTTP by one
client, one request at a time: the median and 95th percentile of the
request's wall time, after a warm-up. Target: each page's median under
100 ms on the 2-core benchmark machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import uvicorn

from benchmarks.workload import T0, load_ours, make_run, store_runs
from dag_provenance import DagProvenance
from dag_provenance.web import create_app

BIG_RUN = "viewer-200-nodes"
TARGET_MS = 100.0


def build(path: Path, runs: int) -> None:
    store = DagProvenance(path)  # migrated
    try:
        load_ours(store.engine, store_runs(runs))
        big = make_run(BIG_RUN, "bench.big", T0 + timedelta(days=1), n_nodes=200, edges_per_node=2)
        load_ours(store.engine, [big])
    finally:
        store.close()


class Served:
    def __init__(self, path: Path) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(str(path)), host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        tick = threading.Event()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the viewer did not start")
            tick.wait(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def timed(client: httpx.Client, path: str, n: int, warm: int = 5) -> list[float]:
    for _ in range(warm):
        client.get(path).raise_for_status()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dp_viewer_") as folder:
        path = Path(folder) / "viewer.db"
        start = time.perf_counter()
        build(path, args.runs)
        print(f"built a {args.runs:,}-run store in {time.perf_counter() - start:.0f} s")
        pages = {
            "list page (/)": "/",
            "list page, failed runs": "/?status=failed",
            "200-node run page": f"/runs/{quote(BIG_RUN, safe='')}",
            "JSON: /api/runs": "/api/runs",
            "JSON: 200-node run": f"/api/runs/{quote(BIG_RUN, safe='')}",
        }
        with Served(path) as url, httpx.Client(base_url=url, timeout=60) as client:
            print(f"\n{'page':<26} {'median':>9} {'p95':>9}  (ms, {args.requests} requests)")
            for name, page in pages.items():
                times = timed(client, page, args.requests)
                median = statistics.median(times)
                p95 = statistics.quantiles(times, n=20)[-1]
                mark = "" if median < TARGET_MS else f"  over {TARGET_MS:g} ms"
                print(f"{name:<26} {median:9.1f} {p95:9.1f}{mark}")


if __name__ == "__main__":
    main()
