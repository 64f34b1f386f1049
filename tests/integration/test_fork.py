"""A process forked from one that holds a store gets connections of its own."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from pathlib import Path
from typing import Any

from dag_provenance import DagProvenance


def _child_writes(path: str, run_id: str, parent_pool_ids: set[int], results: Any) -> None:
    store = DagProvenance(path)  # the same path: the shared engine the parent used
    try:
        with store.engine.connect() as conn:
            reused = id(conn.connection.driver_connection) in parent_pool_ids
        store.create_run(run_id, "fork:child", {})
        store.record_node_start(run_id, "n", "{}")
        store.complete_node_with_edges(run_id, "n", "1", [])
        store.finish_run(run_id, "completed")
        results.put("reused parent connection" if reused else "ok")
    except Exception as e:  # reported to the parent, which asserts on it
        results.put(repr(e))
    finally:
        store.close()


def test_a_forked_process_writes_through_its_own_connections(tmp_path: Path) -> None:
    path = str(tmp_path / "fork.db")
    parent = DagProvenance(path)
    try:
        parent.create_run(f"parent-{uuid.uuid4().hex[:6]}", "fork:parent", {})
        with parent.engine.connect() as conn:
            pooled = {id(conn.connection.driver_connection)}
        ctx = mp.get_context("fork")
        results = ctx.Queue()
        run_ids = [f"child-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
        children = [
            ctx.Process(target=_child_writes, args=(path, r, pooled, results)) for r in run_ids
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=60) for _ in children]
        for child in children:
            child.join()
        assert outcomes == ["ok"] * 3
        # The parent's own pooled connection still works after the forks.
        for run_id in run_ids:
            run = parent.inspect_run(run_id)
            assert run is not None and run.status == "completed"
        assert parent.get_recent_runs(limit=10, dag_nsref="fork:child")[0].nodes["n"].status == (
            "completed"
        )
    finally:
        parent.close()
