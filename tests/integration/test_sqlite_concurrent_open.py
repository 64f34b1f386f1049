"""Processes that open a brand-new SQLite file at the same moment all get in.

Switching a file to WAL needs an exclusive lock, and SQLite does not call
the busy handler for it, so without a retry one of several processes
opening a new file together got "database is locked" (seen in CI).
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

PROCESSES = 8
ROUNDS = 15


def _open(path: str, barrier: Any, results: Any) -> None:
    from dag_provenance.engine import make_engine

    engine = make_engine(path)
    barrier.wait()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        results.put("ok")
    except Exception as e:  # reported to the parent, which asserts on it
        results.put(repr(e))


def test_processes_opening_a_new_sqlite_file_together_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    outcomes: list[str] = []
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"new-{round_}.db")
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        workers = [
            ctx.Process(target=_open, args=(path, barrier, results)) for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        outcomes += [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join()
    assert [o for o in outcomes if o != "ok"] == []
    assert len(outcomes) == PROCESSES * ROUNDS
