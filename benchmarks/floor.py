"""The raw-sqlite3 floor: the least a SQLite provenance store can cost.

One persistent connection in WAL mode with synchronous=NORMAL, the same API
subset as the original lythonic store and the same write SQL (INSERT OR
REPLACE, REAL epoch timestamps, the original's DDL) plus indexes on
parent_run_id and started_at so reads are fair.

Transactions: every public call is one. A write is `BEGIN IMMEDIATE` ...
`COMMIT`; a read of several statements (the run trees, load_io) is a deferred
`BEGIN` ... `COMMIT`, so its statements see one snapshot. A point lookup is a
single SELECT and runs in autocommit mode: SQLite gives one statement an
implicit read transaction of its own, the same one-snapshot guarantee, and an
explicit BEGIN/COMMIT around it would add two statements and change nothing.
Point lookups return what ours returns: the original's dicts (epoch-second
timestamps), in ours' order (nodes by start, then label; edges by traversal,
then labels).

Reads load a run tree the way a careful hand-written store would: the roots,
then one recursive CTE (UNION, so each run once) joined to the runs, nodes
and edges. The original instead binds one parameter per run id and rebuilds
each descendant once per level; a floor must not carry that cost, and this
shape keeps working on 100,000-run trees.

Calls are serialised by a lock: threads share the one connection, and each
public call is its own transaction on it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lythonic.compose.dag_provenance import (
    _DAG_RUNS_DDL,
    _EDGE_TRAVERSALS_DDL,
    _NODE_EXECUTIONS_DDL,
    DagRun,
    IoPayload,
)

from benchmarks.floor_rows import (
    EDGE_COLUMNS,
    NODE_COLUMNS,
    RUN_COLUMNS,
    add_edges,
    add_nodes,
    attach_sub_dags,
    edge_record,
    node_record,
    run_model,
    run_record,
)

FLOOR_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_dag_runs_parent_run_id ON dag_runs (parent_run_id)",
    "CREATE INDEX IF NOT EXISTS ix_dag_runs_started_at ON dag_runs (started_at)",
)

_RUN_COLS = (
    "r.run_id, r.dag_nsref, r.parent_run_id, r.status, r.started_at, r.finished_at, r.initiated_by"
)
_TREE = (
    "WITH RECURSIVE tree(run_id) AS ({anchor} "
    "UNION SELECT d.run_id FROM dag_runs d JOIN tree t ON d.parent_run_id = t.run_id) "
)


_GET_RUN = f"SELECT {', '.join(RUN_COLUMNS)} FROM dag_runs WHERE run_id = ?"
_GET_NODE_EXECUTIONS = (
    f"SELECT {', '.join(NODE_COLUMNS)} FROM node_executions WHERE run_id = ? "
    "ORDER BY started_at, node_label"
)
_GET_NODE_OUTPUT = (
    "SELECT output_json FROM node_executions "
    "WHERE run_id = ? AND node_label = ? AND status IN ('completed', 'skipped')"
)
_GET_PENDING_NODES = (
    "SELECT node_label FROM node_executions "
    "WHERE run_id = ? AND status IN ('pending', 'running', 'failed') "
    "ORDER BY started_at, node_label"
)
_GET_EDGE_TRAVERSALS = (
    f"SELECT {', '.join(EDGE_COLUMNS)} FROM edge_traversals WHERE run_id = ? "
    "ORDER BY traversed_at, upstream_label, downstream_label"
)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class RawSqliteStore:
    """Same public calls as `lythonic.compose.dag_provenance.DagProvenance`."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        cur = self._conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA busy_timeout = 30000")
        with self._tx() as c:
            for ddl in (_DAG_RUNS_DDL, _NODE_EXECUTIONS_DDL, _EDGE_TRAVERSALS_DDL, *FLOOR_INDEXES):
                c.execute(ddl)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    # Writes: the original's statements, one transaction per call.

    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO dag_runs (run_id, dag_nsref, parent_run_id, status, started_at, "
                "source_inputs_json, initiated_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    dag_nsref,
                    parent_run_id,
                    "running",
                    time.time(),
                    json.dumps(source_inputs),
                    initiator,
                ),
            )

    def finish_run(self, run_id: str, status: str, sink_outputs_json: str | None = None) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE dag_runs SET status = ?, finished_at = ?, sink_outputs_json = ? "
                "WHERE run_id = ?",
                (status, time.time(), sink_outputs_json, run_id),
            )

    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO node_executions "
                "(run_id, node_label, status, is_source, is_sink, input_json, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    node_label,
                    "running",
                    int(is_source),
                    int(is_sink),
                    input_json,
                    time.time(),
                ),
            )

    def complete_node_with_edges(
        self, run_id: str, node_label: str, output_json: str, edges: list[tuple[str, str]]
    ) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE node_executions SET status = ?, output_json = ?, finished_at = ? "
                "WHERE run_id = ? AND node_label = ?",
                ("completed", output_json, now, run_id, node_label),
            )
            c.executemany(
                "INSERT INTO edge_traversals (run_id, upstream_label, downstream_label, "
                "traversed_at) VALUES (?, ?, ?, ?)",
                [(run_id, up, down, now) for up, down in edges],
            )

    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE node_executions SET status = ?, error = ?, finished_at = ? "
                "WHERE run_id = ? AND node_label = ?",
                ("failed", error, now, run_id, node_label),
            )
            c.execute(
                "UPDATE dag_runs SET status = ?, finished_at = ?, sink_outputs_json = ? "
                "WHERE run_id = ?",
                ("failed", now, None, run_id),
            )

    # Point lookups: one SELECT each, in autocommit (see the module docstring)

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._select(_GET_RUN, (run_id,))
        return run_record(rows[0], float) if rows else None

    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]:
        return [node_record(r, float) for r in self._select(_GET_NODE_EXECUTIONS, (run_id,))]

    def get_node_output(self, run_id: str, node_label: str) -> str | None:
        rows = self._select(_GET_NODE_OUTPUT, (run_id, node_label))
        return rows[0][0] if rows else None

    def get_pending_nodes(self, run_id: str) -> list[str]:
        return [r[0] for r in self._select(_GET_PENDING_NODES, (run_id,))]

    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]:
        return [edge_record(r, float) for r in self._select(_GET_EDGE_TRAVERSALS, (run_id,))]

    # Inspection

    def inspect_run(self, run_id: str) -> DagRun | None:
        runs = self._load_trees("WHERE r.run_id = ?", (run_id,))
        return runs[0] if runs else None

    def get_recent_runs(self, limit: int = 20, status: str | None = None) -> list[DagRun]:
        if status:
            return self._load_trees(
                "WHERE r.status = ? ORDER BY r.started_at DESC LIMIT ?", (status, limit)
            )
        return self._load_trees("ORDER BY r.started_at DESC LIMIT ?", (limit,))

    def get_active_runs(self) -> list[DagRun]:
        return self.get_recent_runs(limit=100, status="running")

    def get_child_runs(self, parent_run_id: str) -> list[DagRun]:
        tree = _TREE.format(anchor="SELECT run_id FROM dag_runs WHERE parent_run_id = ?")
        with self._tx(write=False) as c:
            rows = c.execute(
                tree + f"SELECT {_RUN_COLS} FROM dag_runs r JOIN tree t ON r.run_id = t.run_id "
                "ORDER BY r.started_at",
                (parent_run_id,),
            ).fetchall()
            runs = {r[0]: run_model(r, _ts) for r in rows}
            _attach_nodes_and_edges(c, tree, (parent_run_id,), runs)
        attach_sub_dags(runs)
        return list(runs.values())

    def _load_trees(self, where: str, params: tuple[Any, ...]) -> list[DagRun]:
        with self._tx(write=False) as c:
            root_rows = c.execute(f"SELECT {_RUN_COLS} FROM dag_runs r {where}", params).fetchall()
            if not root_rows:
                return []
            roots = [run_model(r, _ts) for r in root_rows]
            runs = {r.run_id: r for r in roots}
            # The roots are at most `limit` ids: a bounded IN-list.
            ids = tuple(runs)
            tree = _TREE.format(
                anchor=f"SELECT run_id FROM dag_runs WHERE run_id IN ({','.join('?' * len(ids))})"
            )
            for r in c.execute(
                tree + f"SELECT {_RUN_COLS} FROM dag_runs r JOIN tree t ON r.run_id = t.run_id",
                ids,
            ):
                if r[0] not in runs:
                    runs[r[0]] = run_model(r, _ts)
            _attach_nodes_and_edges(c, tree, ids, runs)
        attach_sub_dags(runs)
        return roots

    def load_io(self, dag_run: DagRun, node_labels: Sequence[str] | None = None) -> None:
        with self._tx(write=False) as c:
            row = c.execute(
                "SELECT source_inputs_json, sink_outputs_json FROM dag_runs WHERE run_id = ?",
                (dag_run.run_id,),
            ).fetchone()
            if row:
                dag_run.io = IoPayload.model_construct(input_json=row[0], output_json=row[1])
            labels = list(node_labels) if node_labels is not None else list(dag_run.nodes)
            if labels:
                rows = c.execute(
                    "SELECT node_label, input_json, output_json FROM node_executions "
                    f"WHERE run_id = ? AND node_label IN ({','.join('?' * len(labels))})",
                    (dag_run.run_id, *labels),
                ).fetchall()
                for label, inp, out in rows:
                    node = dag_run.nodes.get(label)
                    if node is not None:
                        node.io = IoPayload.model_construct(input_json=inp, output_json=out)


def _attach_nodes_and_edges(
    c: sqlite3.Cursor, tree: str, params: tuple[Any, ...], runs: dict[str, DagRun]
) -> None:
    add_nodes(
        runs,
        c.execute(
            tree + "SELECT n.run_id, n.node_label, n.status, n.is_source, n.is_sink, "
            "n.started_at, n.finished_at, n.error "
            "FROM node_executions n JOIN tree t ON n.run_id = t.run_id",
            params,
        ),
        _ts,
    )
    add_edges(
        runs,
        c.execute(
            tree + "SELECT e.run_id, e.upstream_label, e.downstream_label, e.traversed_at "
            "FROM edge_traversals e JOIN tree t ON e.run_id = t.run_id ORDER BY e.traversed_at",
            params,
        ),
        _ts,
    )
