"""Raw-driver floors for the servers: the least this store's statements can
cost on PostgreSQL (psycopg 3) and MariaDB (PyMySQL).

A floor works on tables this store created (open `DagProvenance(url)` on the
database first): the same columns and types (timestamptz on PostgreSQL,
DATETIME(6) holding naive UTC on MariaDB, binary no-pad ids), the same
indexes. It sends hand-written SQL equivalent to the store's statements:

- writes: `create_run` INSERTs the run; `record_node_start` upserts the node
  (INSERT ... ON CONFLICT (run_id, node_label) DO UPDATE on PostgreSQL, ON
  DUPLICATE KEY UPDATE on MariaDB, replacing the whole row);
  `complete_node_with_edges` UPDATEs the node then INSERTs the edges in one
  executemany; `fail_node_and_finish_run` UPDATEs the node then the run;
  `finish_run` UPDATEs the run.
- point lookups: one SELECT each, with the store's filters and order.
- run trees (`inspect_run`, `get_recent_runs`, `get_active_runs`,
  `get_child_runs`): the store's recursive CTE (UNION, each run once), then
  three SELECTs over it: runs, nodes, edges (LATERAL per-run lookups on
  PostgreSQL, as the store); `get_recent_runs` first selects its roots.
- `load_io`: one UNION ALL of the run's and its nodes' payloads.

Transactions: one per public call, reads included, on one connection kept
open for the floor's life (loopback). The driver is in autocommit mode, so
it adds no transaction handling of its own; each call sends BEGIN, its
statements and COMMIT (ROLLBACK if one fails). Writes run at the server's
default isolation (READ COMMITTED on PostgreSQL, REPEATABLE READ on
MariaDB); reads at REPEATABLE READ, so their statements see one snapshot,
as the store's do.
None of the store's per-call work is done here: no pool checkout or pre-ping,
no isolation-level switching, no payload-size checks, no validation, no
rowcount checks. Answers are built as the SQLite floor builds them
(`floor_rows`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from lythonic.compose.dag_provenance import DagRun, IoPayload
from sqlalchemy.engine import make_url

from benchmarks.floor_rows import (
    EDGE_COLUMNS,
    NODE_COLUMNS,
    RUN_COLUMNS,
    ToDatetime,
    ToEpoch,
    add_edges,
    add_nodes,
    attach_sub_dags,
    edge_record,
    node_record,
    run_model,
    run_record,
)

_TREE_RUN_COLUMNS = (
    "run_id",
    "dag_nsref",
    "parent_run_id",
    "status",
    "started_at",
    "finished_at",
    "initiated_by",
)
_TREE_NODE_COLUMNS = (
    "run_id",
    "node_label",
    "status",
    "is_source",
    "is_sink",
    "started_at",
    "finished_at",
    "error",
)
_REPLACED_ON_RESTART = NODE_COLUMNS[2:]  # every column but the key


class _Cursor(Protocol):
    """What the floors use of a DB-API cursor (psycopg's and PyMySQL's)."""

    def execute(self, query: str, params: Sequence[Any] | None = None) -> object: ...
    def executemany(self, query: str, params_seq: Iterable[Sequence[Any]]) -> object: ...
    def fetchall(self) -> Sequence[tuple[Any, ...]]: ...


class _Tree(NamedTuple):
    """Three statements loading a run tree: its runs, their nodes, their edges."""

    runs: str
    nodes: str
    edges: str


class _Statements(NamedTuple):
    insert_run: str
    upsert_node: str
    complete_node: str
    insert_edge: str
    fail_node: str
    finish_run: str
    get_run: str
    get_node_executions: str
    get_node_output: str
    get_pending_nodes: str
    get_edge_traversals: str
    load_io: str
    recent_roots: str
    recent_roots_of_status: str
    tree_of_run: _Tree
    tree_of_children: _Tree
    tree_of_recent: _Tree
    tree_of_recent_of_status: _Tree


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def _tree(anchor: str, lateral: bool) -> _Tree:
    """The store's tree statements over the runs `anchor` selects and every run below them.

    With `lateral` (PostgreSQL) the recursive step and the per-run reads go
    through LATERAL subqueries fenced with OFFSET 0, as the store's do, so the
    planner walks the indexes instead of hash-joining full scans."""
    if lateral:
        step = (
            "SELECT c.run_id FROM run_tree t JOIN LATERAL (SELECT d.run_id FROM dag_runs d "
            "WHERE d.parent_run_id = t.run_id OFFSET 0) c ON true"
        )
    else:
        step = "SELECT d.run_id FROM dag_runs d JOIN run_tree t ON d.parent_run_id = t.run_id"
    cte = f"WITH RECURSIVE run_tree(run_id) AS ({anchor} UNION {step}) "

    def per_run(table: str, columns: Sequence[str], order: Sequence[str]) -> str:
        if lateral:
            return (
                f"SELECT {', '.join('p.' + c for c in columns)} FROM run_tree t JOIN LATERAL "
                f"(SELECT {', '.join(columns)} FROM {table} x WHERE x.run_id = t.run_id "
                f"OFFSET 0) p ON true ORDER BY {', '.join('p.' + c for c in order)}"
            )
        return (
            f"SELECT {', '.join('x.' + c for c in columns)} FROM {table} x "
            f"JOIN run_tree t ON x.run_id = t.run_id ORDER BY {', '.join('x.' + c for c in order)}"
        )

    return _Tree(
        runs=cte + per_run("dag_runs", _TREE_RUN_COLUMNS, ("started_at", "run_id")),
        nodes=cte + per_run("node_executions", _TREE_NODE_COLUMNS, ("started_at", "node_label")),
        edges=cte
        + per_run(
            "edge_traversals", EDGE_COLUMNS, ("traversed_at", "upstream_label", "downstream_label")
        ),
    )


def _statements(postgresql: bool) -> _Statements:
    if postgresql:
        replace = ", ".join(f"{c} = excluded.{c}" for c in _REPLACED_ON_RESTART)
        upsert = f"ON CONFLICT (run_id, node_label) DO UPDATE SET {replace}"
    else:
        upsert = "ON DUPLICATE KEY UPDATE " + ", ".join(
            f"{c} = VALUES({c})" for c in _REPLACED_ON_RESTART
        )
    newest = "ORDER BY started_at DESC, run_id DESC LIMIT %s"
    recent = f"SELECT run_id FROM dag_runs {newest}"
    recent_of_status = f"SELECT run_id FROM dag_runs WHERE status = %s {newest}"
    return _Statements(
        insert_run=(
            "INSERT INTO dag_runs (run_id, dag_nsref, parent_run_id, status, started_at, "
            f"source_inputs_json, initiated_by) VALUES ({_placeholders(7)})"
        ),
        upsert_node=(
            f"INSERT INTO node_executions ({', '.join(NODE_COLUMNS)}) "
            f"VALUES ({_placeholders(len(NODE_COLUMNS))}) {upsert}"
        ),
        complete_node=(
            "UPDATE node_executions SET status = %s, output_json = %s, finished_at = %s, "
            "error = NULL WHERE run_id = %s AND node_label = %s"
        ),
        insert_edge=(
            f"INSERT INTO edge_traversals ({', '.join(EDGE_COLUMNS)}) VALUES ({_placeholders(4)})"
        ),
        fail_node=(
            "UPDATE node_executions SET status = %s, finished_at = %s, error = %s "
            "WHERE run_id = %s AND node_label = %s"
        ),
        finish_run=(
            "UPDATE dag_runs SET status = %s, finished_at = %s, sink_outputs_json = %s "
            "WHERE run_id = %s"
        ),
        get_run=f"SELECT {', '.join(RUN_COLUMNS)} FROM dag_runs WHERE run_id = %s",
        get_node_executions=(
            f"SELECT {', '.join(NODE_COLUMNS)} FROM node_executions WHERE run_id = %s "
            "ORDER BY started_at, node_label"
        ),
        get_node_output=(
            "SELECT output_json FROM node_executions WHERE run_id = %s AND node_label = %s "
            "AND status IN ('completed', 'skipped')"
        ),
        get_pending_nodes=(
            "SELECT node_label FROM node_executions WHERE run_id = %s "
            "AND status IN ('pending', 'running', 'failed') ORDER BY started_at, node_label"
        ),
        get_edge_traversals=(
            f"SELECT {', '.join(EDGE_COLUMNS)} FROM edge_traversals WHERE run_id = %s "
            "ORDER BY traversed_at, upstream_label, downstream_label"
        ),
        load_io=(
            "SELECT NULL AS node_label, source_inputs_json AS input_json, "
            "sink_outputs_json AS output_json FROM dag_runs WHERE run_id = %s "
            "UNION ALL SELECT node_label, input_json, output_json FROM node_executions "
            "WHERE run_id = %s"
        ),
        recent_roots=recent,
        recent_roots_of_status=recent_of_status,
        tree_of_run=_tree("SELECT run_id FROM dag_runs WHERE run_id = %s", postgresql),
        tree_of_children=_tree("SELECT run_id FROM dag_runs WHERE parent_run_id = %s", postgresql),
        tree_of_recent=_tree(f"SELECT roots.run_id FROM ({recent}) roots", postgresql),
        tree_of_recent_of_status=_tree(
            f"SELECT roots.run_id FROM ({recent_of_status}) roots", postgresql
        ),
    )


class ServerFloor:
    """The store's public calls (the benchmark's subset) on one raw connection.

    Calls are serialised by a lock; each is one transaction on the connection.
    """

    name: str
    _begin_write = "BEGIN"
    _begin_read: str

    def __init__(
        self, cursor: _Cursor, statements: _Statements, ts: ToDatetime, epoch: ToEpoch
    ) -> None:
        self._cur = cursor
        self._sql = statements
        self._ts = ts
        self._epoch = epoch
        self._lock = threading.Lock()

    def close(self) -> None:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    @contextmanager
    def _tx(self, begin: str) -> Iterator[_Cursor]:
        with self._lock:
            cur = self._cur
            cur.execute(begin)
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _write(self) -> AbstractContextManager[_Cursor]:
        return self._tx(self._begin_write)

    def _read(self) -> AbstractContextManager[_Cursor]:
        return self._tx(self._begin_read)

    def _select(self, sql: str, params: Sequence[Any]) -> Sequence[tuple[Any, ...]]:
        with self._read() as c:
            c.execute(sql, params)
            return c.fetchall()

    # Writes

    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None:
        row = (
            run_id,
            dag_nsref,
            parent_run_id,
            "running",
            self._now(),
            json.dumps(source_inputs),
            initiator,
        )
        with self._write() as c:
            c.execute(self._sql.insert_run, row)

    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None:
        now = self._now()
        row = (run_id, node_label, "running", is_source, is_sink, input_json, None, now, None, None)
        with self._write() as c:
            c.execute(self._sql.upsert_node, row)

    def complete_node_with_edges(
        self, run_id: str, node_label: str, output_json: str, edges: list[tuple[str, str]]
    ) -> None:
        now = self._now()
        with self._write() as c:
            c.execute(self._sql.complete_node, ("completed", output_json, now, run_id, node_label))
            if edges:
                c.executemany(self._sql.insert_edge, [(run_id, up, dn, now) for up, dn in edges])

    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None:
        now = self._now()
        with self._write() as c:
            c.execute(self._sql.fail_node, ("failed", now, error, run_id, node_label))
            c.execute(self._sql.finish_run, ("failed", now, None, run_id))

    def finish_run(self, run_id: str, status: str, sink_outputs_json: str | None = None) -> None:
        with self._write() as c:
            c.execute(self._sql.finish_run, (status, self._now(), sink_outputs_json, run_id))

    # Point lookups

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._select(self._sql.get_run, (run_id,))
        return run_record(rows[0], self._epoch) if rows else None

    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._select(self._sql.get_node_executions, (run_id,))
        return [node_record(r, self._epoch) for r in rows]

    def get_node_output(self, run_id: str, node_label: str) -> str | None:
        rows = self._select(self._sql.get_node_output, (run_id, node_label))
        return rows[0][0] if rows else None

    def get_pending_nodes(self, run_id: str) -> list[str]:
        return [r[0] for r in self._select(self._sql.get_pending_nodes, (run_id,))]

    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._select(self._sql.get_edge_traversals, (run_id,))
        return [edge_record(r, self._epoch) for r in rows]

    # Run trees and payloads

    def inspect_run(self, run_id: str) -> DagRun | None:
        with self._read() as c:
            runs = self._load_tree(c, self._sql.tree_of_run, (run_id,))
        return runs.get(run_id)

    def get_recent_runs(self, limit: int = 20, status: str | None = None) -> list[DagRun]:
        params: tuple[Any, ...]
        if status:
            roots, tree = self._sql.recent_roots_of_status, self._sql.tree_of_recent_of_status
            params = (status, limit)
        else:
            roots, tree, params = self._sql.recent_roots, self._sql.tree_of_recent, (limit,)
        with self._read() as c:
            c.execute(roots, params)
            root_ids = [r[0] for r in c.fetchall()]
            if not root_ids:
                return []
            runs = self._load_tree(c, tree, params)
        return [runs[rid] for rid in root_ids]

    def get_active_runs(self) -> list[DagRun]:
        return self.get_recent_runs(limit=100, status="running")

    def get_child_runs(self, parent_run_id: str) -> list[DagRun]:
        with self._read() as c:
            runs = self._load_tree(c, self._sql.tree_of_children, (parent_run_id,))
        return list(runs.values())

    def load_io(self, dag_run: DagRun, node_labels: Sequence[str] | None = None) -> None:
        """All of the run's node payloads in one statement (the store's form when
        no labels are given, the only form the benchmark uses); `node_labels`
        filters in Python."""
        rows = self._select(self._sql.load_io, (dag_run.run_id, dag_run.run_id))
        wanted = None if node_labels is None else set(node_labels)
        for label, input_json, output_json in rows:
            io = IoPayload.model_construct(input_json=input_json, output_json=output_json)
            if label is None:
                dag_run.io = io
            elif wanted is None or label in wanted:
                node = dag_run.nodes.get(label)
                if node is not None:
                    node.io = io

    def _load_tree(self, c: _Cursor, tree: _Tree, params: Sequence[Any]) -> dict[str, DagRun]:
        c.execute(tree.runs, params)
        runs = {r[0]: run_model(r, self._ts) for r in c.fetchall()}
        if runs:
            c.execute(tree.nodes, params)
            add_nodes(runs, c.fetchall(), self._ts)
            c.execute(tree.edges, params)
            add_edges(runs, c.fetchall(), self._ts)
            attach_sub_dags(runs)
        return runs


def _as_given(value: datetime) -> datetime:
    return value


def _aware_epoch(value: datetime) -> float:
    return value.timestamp()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _naive_utc_epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


class PostgresFloor(ServerFloor):
    """psycopg 3, the session in UTC so timestamptz values arrive as aware UTC
    datetimes, ready to return."""

    name = "psycopg 3"
    _begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ"

    def __init__(self, url: str) -> None:
        import psycopg

        u = make_url(url)
        self._conn = psycopg.connect(
            host=u.host,
            port=u.port,
            user=u.username,
            password=u.password,
            dbname=u.database,
            autocommit=True,  # BEGIN and COMMIT are sent explicitly, per call
            options="-c TimeZone=UTC",
        )
        super().__init__(self._conn.cursor(), _statements(True), _as_given, _aware_epoch)

    def close(self) -> None:
        self._conn.close()

    def _now(self) -> datetime:
        return datetime.now(UTC)


class MariaDbFloor(ServerFloor):
    """PyMySQL; DATETIME(6) columns hold naive UTC, as the store writes them."""

    name = "PyMySQL"
    # The session's isolation is set to REPEATABLE READ once, at connect.
    _begin_read = "BEGIN"

    def __init__(self, url: str) -> None:
        import pymysql  # type: ignore[import-untyped]

        u = make_url(url)
        self._conn = pymysql.connect(
            host=u.host,
            port=u.port or 3306,
            user=u.username,
            password=u.password or "",
            database=u.database,
            charset="utf8mb4",
            autocommit=True,  # BEGIN and COMMIT are sent explicitly, per call
        )
        cursor = self._conn.cursor()
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        super().__init__(cursor, _statements(False), _utc, _naive_utc_epoch)

    def close(self) -> None:
        self._conn.close()

    def _now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


def open_server_floor(url: str) -> ServerFloor:
    """The floor for the server `url` (a SQLAlchemy URL) points at."""
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        return PostgresFloor(url)
    if backend in ("mysql", "mariadb"):
        return MariaDbFloor(url)
    raise ValueError(f"no raw-driver floor for {backend!r}")
