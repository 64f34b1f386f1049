"""On a SQLite file, each thread keeps one pooled connection between its
calls (a pool checkout costs more than a primary-key lookup). The pool must
still get every connection back: when the thread ends, when the store
closes, and never across a fork; and more threads than may keep one still
work."""

from __future__ import annotations

import multiprocessing as mp
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dag_provenance import DagProvenance
from dag_provenance.engine import SQLITE_THREAD_CONNECTIONS, shared_engines

NewId = Callable[[str], str]


def _in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as e:  # reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_a_thread_s_connection_goes_back_to_the_pool_when_the_thread_ends(
    tmp_path: Path, new_id: NewId
) -> None:
    with DagProvenance(tmp_path / "threads.db") as store:
        tag = new_id("t")

        def calls(i: int) -> None:
            store.create_run(f"{tag}-{i}", "tests:threads", {})
            assert store.get_run(f"{tag}-{i}") is not None

        assert _in_threads(4, calls) == []
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert len(store.get_recent_runs(limit=10, dag_nsref="tests:threads")) == 4


def test_more_threads_than_keep_a_connection_all_get_their_calls_through(
    tmp_path: Path, new_id: NewId
) -> None:
    threads = SQLITE_THREAD_CONNECTIONS * 3
    with DagProvenance(tmp_path / "many.db") as store:
        tag = new_id("t")
        inside = threading.Barrier(threads)

        def calls(i: int) -> None:
            run_id = f"{tag}-{i}"
            store.create_run(run_id, "tests:many", {})
            inside.wait(timeout=60)  # every thread is mid-work at once
            store.record_node_start(run_id, "n", "{}")
            store.complete_node_with_edges(run_id, "n", "1", [])

        assert _in_threads(threads, calls) == []
        assert len(store.get_recent_runs(limit=1000, dag_nsref="tests:many")) == threads


def test_closing_the_store_returns_the_connection_a_live_thread_keeps(
    tmp_path: Path, new_id: NewId
) -> None:
    store = DagProvenance(tmp_path / "close.db")
    engine = store.engine
    store.create_run(new_id("run"), "tests:close", {})  # this thread keeps one
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    store.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def _child(path: str, run_id: str, parent_connection: int, results: Any) -> None:
    store = DagProvenance(path)
    try:
        store.create_run(run_id, "fork:child", {})
        key = getattr(store, "_engine_key", None)
        threads = shared_engines.thread_connections(key) if key else None
        kept = threads.take() if threads is not None else None
        own = id(kept.driver_connection) if kept is not None else None
        results.put("reused the parent's" if own == parent_connection else "ok")
    except Exception as e:  # reported to the parent
        results.put(repr(e))
    finally:
        store.close()


def test_a_forked_child_never_uses_the_connection_its_parent_thread_keeps(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "fork.db")
    parent = DagProvenance(path)
    try:
        parent.create_run(f"parent-{uuid.uuid4().hex[:6]}", "fork:parent", {})
        key = getattr(parent, "_engine_key", None)
        threads = shared_engines.thread_connections(key) if key else None
        kept = threads.take() if threads is not None else None
        assert kept is not None
        ctx = mp.get_context("fork")
        results = ctx.Queue()
        child = ctx.Process(
            target=_child,
            args=(path, f"child-{uuid.uuid4().hex[:6]}", id(kept.driver_connection), results),
        )
        child.start()
        outcome = results.get(timeout=60)
        child.join()
        assert outcome == "ok"
        assert parent.get_recent_runs(limit=5, dag_nsref="fork:child")[0].status == "running"
    finally:
        parent.close()
