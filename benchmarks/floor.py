"""The raw-sqlite3 floor: the least a SQLite provenance store can cost.

One persistent connection in WAL mode with synchronous=NORMAL, one commit per
public call, the same API subset as the original lythonic store and the same
write SQL (INSERT OR REPLACE, REAL epoch timestamps, the original's DDL) plus
indexes on parent_run_id and started_at so reads are fair.

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
    EdgeTraversal,
    IoPayload,
    NodeExecution,
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


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _ts_or_none(epoch: float | None) -> datetime | None:
    return None if epoch is None else _ts(epoch)


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
            runs = {r[0]: _run(r) for r in rows}
            _attach_nodes_and_edges(c, tree, (parent_run_id,), runs)
        _attach_sub_dags(runs)
        return list(runs.values())

    def _load_trees(self, where: str, params: tuple[Any, ...]) -> list[DagRun]:
        with self._tx(write=False) as c:
            root_rows = c.execute(f"SELECT {_RUN_COLS} FROM dag_runs r {where}", params).fetchall()
            if not root_rows:
                return []
            roots = [_run(r) for r in root_rows]
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
                    runs[r[0]] = _run(r)
            _attach_nodes_and_edges(c, tree, ids, runs)
        _attach_sub_dags(runs)
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


def _run(r: tuple[Any, ...]) -> DagRun:
    return DagRun.model_construct(
        run_id=r[0],
        dag_nsref=r[1],
        parent_run_id=r[2],
        status=r[3],
        started_at=_ts(r[4]),
        finished_at=_ts_or_none(r[5]),
        initiated_by=r[6],
        nodes={},
        io=None,
    )


def _attach_nodes_and_edges(
    c: sqlite3.Cursor, tree: str, params: tuple[Any, ...], runs: dict[str, DagRun]
) -> None:
    for r in c.execute(
        tree + "SELECT n.run_id, n.node_label, n.status, n.is_source, n.is_sink, "
        "n.started_at, n.finished_at, n.error "
        "FROM node_executions n JOIN tree t ON n.run_id = t.run_id",
        params,
    ):
        run = runs.get(r[0])
        if run is not None:
            run.nodes[r[1]] = NodeExecution.model_construct(
                node_label=r[1],
                status=r[2],
                is_source=bool(r[3]),
                is_sink=bool(r[4]),
                started_at=_ts_or_none(r[5]),
                finished_at=_ts_or_none(r[6]),
                error=r[7],
                edges=[],
                sub_dags=None,
                io=None,
            )
    for r in c.execute(
        tree + "SELECT e.run_id, e.upstream_label, e.downstream_label, e.traversed_at "
        "FROM edge_traversals e JOIN tree t ON e.run_id = t.run_id ORDER BY e.traversed_at",
        params,
    ):
        run = runs.get(r[0])
        node = run.nodes.get(r[1]) if run is not None else None
        if node is not None:
            node.edges.append(
                EdgeTraversal.model_construct(downstream_label=r[2], traversed_at=_ts(r[3]))
            )


def _attach_sub_dags(runs: dict[str, DagRun]) -> None:
    for child in runs.values():
        parent = runs.get(child.parent_run_id or "")
        if parent is None or not child.dag_nsref.startswith(parent.dag_nsref + "/"):
            continue
        key = child.dag_nsref[len(parent.dag_nsref) + 1 :]
        bracket = key.find("[")
        node = parent.nodes.get(key[:bracket] if bracket >= 0 else key)
        if node is not None:
            if node.sub_dags is None:
                node.sub_dags = {}
            node.sub_dags[key] = child
