"""DagProvenance: the repository. The only place a database connection is used.

Each public method is one unit of work: one pooled connection, one
transaction, one commit (or a rollback that leaves the database as it was).
Inside `DagProvenance.batch()` the public calls of a thread share one
transaction. Statements are SQLAlchemy Core expressions over the mapped
tables, built once, with bound parameters.

Why a Connection and not an ORM Session per call: the store never loads ORM
objects (it returns dicts and Pydantic models), so the Session's identity
map and unit-of-work bookkeeping buy nothing, and on the write hot path they
cost a third of each call (measured: ~3,600 vs ~5,500 calls/s on a SQLite
file). The mapped tables stay the schema's single definition.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    CTE,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    exc,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.expression import BindParameter, ColumnElement, Executable

from dag_provenance import payload_limits, rows, validate
from dag_provenance.dberrors import translate, translated, translating
from dag_provenance.engine import WRITE_OPTION, DbTarget, shared_engines
from dag_provenance.errors import (
    BatchThreadError,
    DatabaseError,
    DuplicateEdgeError,
    DuplicateRunError,
    InvalidInputError,
    NodeNotFoundError,
    ProvenanceError,
    RunNotFoundError,
)
from dag_provenance.initiator import current_initiator
from dag_provenance.migrate import ensure_schema
from dag_provenance.models import (
    DagRun,
    IoPayload,
    attach_sub_dags,
)
from dag_provenance.orm import (
    DAG_NSREF_MAX,
    INITIATOR_MAX,
    NODE_LABEL_MAX,
    RUN_ID_MAX,
    dag_runs,
    edge_traversals,
    node_executions,
)
from dag_provenance.serialization import safe_json_dumps
from dag_provenance.status import NodeStatus, RunStatus

if TYPE_CHECKING:
    from dag_provenance.maintenance import PruneResult

RunCursor = tuple[datetime, str]
"""Keyset position in `get_recent_runs`: (started_at, run_id) of the last run seen."""


class _Batch:
    """An open `DagProvenance.batch()`: its connection, and the thread that owns it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.thread = threading.get_ident()
        self.is_open = True


_batches: ContextVar[Mapping[DagProvenance, _Batch]] = ContextVar(
    "dag_provenance_batches", default=MappingProxyType({})
)
"""The batches open in the current context, by store."""

# Load lists of node labels past this size are filtered in Python, so no
# statement's parameter count grows with the caller's input.
_MAX_IN_LIST = 500

_R = dag_runs.c
_N = node_executions.c
_E = edge_traversals.c

_RUN_SUMMARY = (
    _R.run_id,
    _R.dag_nsref,
    _R.parent_run_id,
    _R.status,
    _R.started_at,
    _R.finished_at,
    _R.initiated_by,
)
_NODE_SUMMARY = (
    _N.run_id,
    _N.node_label,
    _N.status,
    _N.is_source,
    _N.is_sink,
    _N.started_at,
    _N.finished_at,
    _N.error,
)

_UPDATE_RUN_STATUS = (
    update(dag_runs).where(_R.run_id == bindparam("rid")).values(status=bindparam("status"))
)
_FINISH_RUN = (
    update(dag_runs)
    .where(_R.run_id == bindparam("rid"))
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        sink_outputs_json=bindparam("sink"),
    )
)
_UPDATE_NODE = update(node_executions).where(
    _N.run_id == bindparam("rid"), _N.node_label == bindparam("label")
)
_COMPLETE_NODE = _UPDATE_NODE.values(
    status=NodeStatus.COMPLETED.value,
    finished_at=bindparam("finished_at"),
    output_json=bindparam("output"),
    error=None,
)
_FAIL_NODE = _UPDATE_NODE.values(
    status=NodeStatus.FAILED.value, finished_at=bindparam("finished_at"), error=bindparam("err")
)
_INSERT_RUN = insert(dag_runs)
_INSERT_EDGE = insert(edge_traversals)
_RUN_EXISTS = select(_R.run_id).where(_R.run_id == bindparam("rid"))
_LOAD_IO_RUN = select(
    null().label("node_label"),
    _R.source_inputs_json.label("input_json"),
    _R.sink_outputs_json.label("output_json"),
).where(_R.run_id == bindparam("rid"))
_IO_OF_NODES = select(_N.node_label, _N.input_json, _N.output_json).where(
    _N.run_id == bindparam("rid")
)
_LOAD_IO_ALL = union_all(_LOAD_IO_RUN, _IO_OF_NODES)
_LOAD_IO_SOME = union_all(
    _LOAD_IO_RUN, _IO_OF_NODES.where(_N.node_label.in_(bindparam("labels", expanding=True)))
)
_GET_NODE_EXECUTIONS = (
    select(node_executions)
    .where(_N.run_id == bindparam("rid"))
    .order_by(_N.started_at, _N.node_label)
)
_GET_NODE_OUTPUT = select(_N.output_json).where(
    _N.run_id == bindparam("rid"),
    _N.node_label == bindparam("label"),
    _N.status.in_([NodeStatus.COMPLETED.value, NodeStatus.SKIPPED.value]),
)
_GET_PENDING_NODES = (
    select(_N.node_label)
    .where(
        _N.run_id == bindparam("rid"),
        _N.status.in_(
            [NodeStatus.PENDING.value, NodeStatus.RUNNING.value, NodeStatus.FAILED.value]
        ),
    )
    .order_by(_N.started_at, _N.node_label)
)
_GET_EDGE_TRAVERSALS = (
    select(edge_traversals)
    .where(_E.run_id == bindparam("rid"))
    .order_by(_E.traversed_at, _E.upstream_label, _E.downstream_label)
)
_GET_RUN = select(dag_runs).where(_R.run_id == bindparam("rid"))


def _now() -> datetime:
    return datetime.now(UTC)


@functools.cache
def _node_upsert(dialect_name: str) -> Any:
    """INSERT ... ON CONFLICT/DUPLICATE KEY that replaces a node's whole row,
    as the original's INSERT OR REPLACE does (a restarted node starts afresh)."""
    replaced = (
        "status",
        "is_source",
        "is_sink",
        "input_json",
        "output_json",
        "started_at",
        "finished_at",
        "error",
    )
    if dialect_name in ("mysql", "mariadb"):
        on_mysql = mysql.insert(node_executions)
        return on_mysql.on_duplicate_key_update({c: on_mysql.inserted[c] for c in replaced})
    if dialect_name == "postgresql":
        on_pg = postgresql.insert(node_executions)
        return on_pg.on_conflict_do_update(
            index_elements=[_N.run_id, _N.node_label], set_={c: on_pg.excluded[c] for c in replaced}
        )
    on_sqlite = sqlite.insert(node_executions)
    return on_sqlite.on_conflict_do_update(
        index_elements=[_N.run_id, _N.node_label], set_={c: on_sqlite.excluded[c] for c in replaced}
    )


def _tree_cte(anchor: Select[Any], lateral: bool) -> CTE:
    """The run ids of the anchor's runs and every run below them.

    Traversal: start from the anchor's run ids, then repeatedly add each run
    whose parent_run_id is already in the set. UNION (not UNION ALL) keeps
    each run once, so a parent_run_id cycle written by hand ends the
    recursion instead of looping forever.

    With `lateral` (PostgreSQL) each step looks the children up through a
    LATERAL subquery: PostgreSQL guesses the working set of a recursive step
    at ten times the anchor's rows and would otherwise hash-join it against a
    sequential scan of every run; the lateral form walks the parent_run_id
    index instead. SQLite and MariaDB already use the index (and MariaDB has
    no LATERAL). `_per_tree_run` does the same for the rows of each run.
    """
    tree = anchor.cte("run_tree", recursive=True)
    if lateral:
        # OFFSET 0 keeps PostgreSQL from flattening the subquery back into a join.
        children = (
            select(_R.run_id)
            .where(_R.parent_run_id == tree.c.run_id)
            .offset(literal_column("0"))
            .lateral("child")
        )
        step = select(children.c.run_id).select_from(tree.join(children, true()))
    else:
        step = select(_R.run_id).join(tree, _R.parent_run_id == tree.c.run_id)
    return tree.union(step)


class DagProvenance:
    """Records the provenance of DAG runs and answers questions about them.

    `db_path` is a SQLite file path (`Path` or plain string), a SQLAlchemy
    URL string (`postgresql+psycopg://...`, `mysql+pymysql://...`) or an
    `Engine` used as given. By default the schema is brought to the newest
    revision on construction; with `migrate=False` a database behind the code
    raises `SchemaOutOfDateError`. `initiator_var` is the one context variable
    `create_run` reads when no initiator is passed (by default it reads this
    library's `run_initiator` and, when lythonic is imported, lythonic's).
    """

    db_path: Path | None
    engine: Engine

    def __init__(
        self,
        db_path: DbTarget,
        *,
        migrate: bool = True,
        initiator_var: ContextVar[str | None] | None = None,
    ) -> None:
        self._engine_key: str | None = None
        if isinstance(db_path, Engine):
            self.engine = db_path
        else:
            with translated():
                self.engine, self._engine_key = shared_engines.acquire(db_path)
        self.db_path = self._sqlite_path()
        self._initiator_var = initiator_var
        dialect = self.engine.dialect.name
        self._upsert_node = _node_upsert(dialect)
        self._lateral = dialect == "postgresql"
        # Writes ask SQLite for BEGIN IMMEDIATE; reads see one snapshot of the
        # database across their statements (a plain BEGIN on SQLite's WAL).
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read_engine = (
            self.engine
            if dialect == "sqlite"
            else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        try:
            key = self._engine_key
            if key is None or not shared_engines.schema_checked(key):
                with translated():
                    ensure_schema(self.engine, migrate=migrate)
                if key is not None:
                    shared_engines.mark_schema_checked(key)
        except BaseException:
            self.close()
            raise

    def _sqlite_path(self) -> Path | None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(str(url.database))
        return None

    def __repr__(self) -> str:
        return f"DagProvenance({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release this store's hold on its engine: when no open store of this
        process uses the database any more, its pooled connections are closed.
        An Engine passed in by the caller is left alone. Idempotent."""
        key, self._engine_key = self._engine_key, None
        if key is not None:
            shared_engines.release(key)

    def __enter__(self) -> DagProvenance:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Units of work

    @contextmanager
    def _unit(self, write: bool, payloads: payload_limits.Payloads = ()) -> Iterator[Connection]:
        """One connection, one transaction; inside `batch()`, the batch's instead.

        Inside a batch each call runs under a savepoint, so a refused call
        leaves the batch as it was before that call. `payloads` are checked
        against the connection's limit before any statement is sent.
        SQLAlchemy's errors pass through: the public methods translate them
        (`dberrors.translating`), after interpreting integrity errors.
        """
        batch = self._open_batch()
        if batch is not None:
            with batch.connection.begin_nested():
                if payloads:
                    payload_limits.check(batch.connection, payloads)
                yield batch.connection
            return
        engine = self._write_engine if write else self._read_engine
        with engine.connect() as conn, conn.begin():
            if payloads:
                payload_limits.check(conn, payloads)
            yield conn

    def _open_batch(self) -> _Batch | None:
        """The batch of this store open in the calling context, if any."""
        batch = _batches.get().get(self)
        if batch is None or not batch.is_open:
            return None
        if batch.thread != threading.get_ident():
            raise BatchThreadError(
                "this call is inside a batch() opened on another thread (the context was "
                "copied, as asyncio.to_thread does): a batch's connection is used only by "
                "the thread that opened it; call the store from that thread, or outside "
                "the batch"
            )
        return batch

    @contextmanager
    def batch(self) -> Iterator[DagProvenance]:
        """Group the calls made on this store in the block into one transaction:
        all of them commit when the block ends, or none do if it raises.

        The batch belongs to the execution context that opened it (a
        `ContextVar`): code in that context (and asyncio tasks created inside
        the block, which copy it) joins the batch; other tasks, and threads
        that do not carry the context, run their calls in transactions of
        their own, as if no batch were open. A call in a copy of the context on
        another thread (`asyncio.to_thread`) raises `BatchThreadError`. A call
        made after the block ended, from a task that copied the context while
        it was open, runs in a transaction of its own.

        A batch inside a batch is a savepoint of the outer one: if the inner
        block raises, only its calls are undone; otherwise they commit with
        the outer batch.
        """
        with translated():
            outer = self._open_batch()
            if outer is not None:
                with outer.connection.begin_nested():
                    yield self
                return
            with self._write_engine.connect() as conn, conn.begin():
                batch = _Batch(conn)
                token = _batches.set({**_batches.get(), self: batch})
                try:
                    yield self
                finally:
                    batch.is_open = False
                    _batches.reset(token)

    # Operating the store (see dag_provenance.maintenance and .migrate)

    def prune(
        self,
        older_than: datetime,
        statuses: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete finished run trees started before `older_than` (each with its
        descendant runs, nodes and edges), in bounded batches; never a tree
        holding a running or paused run. Returns what was (or would be) deleted."""
        from dag_provenance.maintenance import prune

        return prune(self, older_than, statuses=statuses, dry_run=dry_run)

    # Writes

    @translating
    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None:
        """Create a run with status 'running'.

        `initiator` defaults to who the calling context says is starting runs:
        the `initiator_var` the store was given, else whichever `initiated_by`
        (this library's or lythonic's) is innermost around the call. Context
        variables do not follow a call into an executor thread: read the
        initiator before the hop and pass it, as lythonic's DagRunner does.
        """
        if initiator is None:
            initiator = (
                current_initiator() if self._initiator_var is None else self._initiator_var.get()
            )
        inputs = validate.text(
            "source_inputs", safe_json_dumps(validate.mapping("source_inputs", source_inputs))
        )
        row = {
            "run_id": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "dag_nsref": validate.identifier("dag_nsref", dag_nsref, DAG_NSREF_MAX),
            "parent_run_id": validate.optional_identifier(
                "parent_run_id", parent_run_id, RUN_ID_MAX
            ),
            "status": RunStatus.RUNNING.value,
            "started_at": _now(),
            "source_inputs_json": inputs,
            "initiated_by": validate.optional_identifier("initiator", initiator, INITIATOR_MAX),
        }
        try:
            with self._unit(write=True, payloads=(("source_inputs", inputs),)) as s:
                s.execute(_INSERT_RUN, row)
        except exc.IntegrityError as e:
            if self._run_exists(run_id):
                raise DuplicateRunError(run_id) from e
            if parent_run_id is not None and not self._run_exists(parent_run_id):
                raise RunNotFoundError(parent_run_id, "parent run") from e
            raise translate(e) from e

    @translating
    def update_run_status(self, run_id: str, status: str) -> None:
        """Set a run's status without setting finished_at."""
        params = {
            "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "status": validate.run_status(status),
        }
        with self._unit(write=True) as s:
            if s.execute(_UPDATE_RUN_STATUS, params).rowcount == 0:
                raise RunNotFoundError(run_id)

    @translating
    def finish_run(self, run_id: str, status: str, sink_outputs_json: str | None = None) -> None:
        """Set a run's final status, finished_at and sink outputs."""
        sink = validate.payload("sink_outputs_json", sink_outputs_json)
        params = {
            "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "status": validate.run_status(status),
            "sink": sink,
            "finished_at": _now(),
        }
        with self._unit(write=True, payloads=(("sink_outputs_json", sink),)) as s:
            if s.execute(_FINISH_RUN, params).rowcount == 0:
                raise RunNotFoundError(run_id)

    @translating
    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None:
        """Record that a node started. A node started again (restart) starts afresh."""
        self._replace_node(
            run_id,
            node_label,
            status=NodeStatus.RUNNING.value,
            is_source=validate.flag("is_source", is_source),
            is_sink=validate.flag("is_sink", is_sink),
            input_json=validate.payload("input_json", input_json),
            output_json=None,
            finished=False,
        )

    @translating
    def record_node_skipped(self, run_id: str, node_label: str, output_json: str) -> None:
        """Record a node as skipped with a copied output (used in replay)."""
        self._replace_node(
            run_id,
            node_label,
            status=NodeStatus.SKIPPED.value,
            is_source=False,
            is_sink=False,
            input_json=None,
            output_json=validate.payload("output_json", output_json),
            finished=True,
        )

    def _replace_node(
        self,
        run_id: str,
        node_label: str,
        *,
        status: str,
        is_source: bool,
        is_sink: bool,
        input_json: str | None,
        output_json: str | None,
        finished: bool,
    ) -> None:
        now = _now()
        row = {
            "run_id": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "node_label": validate.identifier("node_label", node_label, NODE_LABEL_MAX),
            "status": status,
            "is_source": is_source,
            "is_sink": is_sink,
            "input_json": input_json,
            "output_json": output_json,
            "started_at": now,
            "finished_at": now if finished else None,
            "error": None,
        }
        payloads = (("input_json", input_json), ("output_json", output_json))
        try:
            with self._unit(write=True, payloads=payloads) as s:
                s.execute(self._upsert_node, row)
        except exc.IntegrityError as e:
            if not self._run_exists(run_id):
                raise RunNotFoundError(run_id) from e
            raise translate(e) from e

    @translating
    def complete_node_with_edges(
        self,
        run_id: str,
        node_label: str,
        output_json: str,
        edges: list[tuple[str, str]],
    ) -> None:
        """Record a node's completion and its outgoing edge traversals atomically."""
        output = validate.payload("output_json", output_json)
        params = {
            "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "label": validate.identifier("node_label", node_label, NODE_LABEL_MAX),
            "output": output,
            "finished_at": _now(),
        }
        pairs = validate.edges(edges, NODE_LABEL_MAX)
        edge_rows = [
            {
                "run_id": run_id,
                "upstream_label": up,
                "downstream_label": down,
                "traversed_at": params["finished_at"],
            }
            for up, down in pairs
        ]
        try:
            with self._unit(write=True, payloads=(("output_json", output),)) as s:
                if s.execute(_COMPLETE_NODE, params).rowcount == 0:
                    raise self._missing_node(s, run_id, node_label)
                if edge_rows:
                    s.execute(_INSERT_EDGE, edge_rows)
        except exc.IntegrityError as e:
            raise self._duplicate_edge(run_id, pairs) from e

    @translating
    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None:
        """Mark a node failed with `error` and its run failed, atomically."""
        now = _now()
        err = validate.text("error", error)
        node = {
            "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "label": validate.identifier("node_label", node_label, NODE_LABEL_MAX),
            "err": err,
            "finished_at": now,
        }
        run = {"rid": run_id, "status": RunStatus.FAILED.value, "sink": None, "finished_at": now}
        with self._unit(write=True, payloads=(("error", err),)) as s:
            if s.execute(_FAIL_NODE, node).rowcount == 0:
                raise self._missing_node(s, run_id, node_label)
            s.execute(_FINISH_RUN, run)

    def _run_exists(self, run_id: str) -> bool:
        with self._unit(write=False) as s:
            return s.execute(_RUN_EXISTS, {"rid": run_id}).first() is not None

    @staticmethod
    def _missing_node(s: Connection, run_id: str, node_label: str) -> ProvenanceError:
        if s.execute(_RUN_EXISTS, {"rid": run_id}).first() is None:
            return RunNotFoundError(run_id)
        return NodeNotFoundError(run_id, node_label)

    def _duplicate_edge(self, run_id: str, pairs: list[tuple[str, str]]) -> ProvenanceError:
        seen: set[tuple[str, str]] = set()
        for pair in pairs:
            if pair in seen:
                return DuplicateEdgeError(run_id, *pair)
            seen.add(pair)
        recorded = {
            (e["upstream_label"], e["downstream_label"]) for e in self.get_edge_traversals(run_id)
        }
        for pair in pairs:
            if pair in recorded:
                return DuplicateEdgeError(run_id, *pair)
        return DatabaseError(f"recording edges of run {run_id!r} violated a constraint")

    # Plain reads (dicts, epoch-float timestamps, as the original returns them)

    @translating
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """A run record by id, or None."""
        params = {"rid": validate.text("run_id", run_id)}
        with self._unit(write=False) as s:
            row = s.execute(_GET_RUN, params).first()
        return None if row is None else rows.record(row)

    @translating
    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]:
        """Every node execution record of a run, in start order."""
        params = {"rid": validate.text("run_id", run_id)}
        with self._unit(write=False) as s:
            return [rows.record(row) for row in s.execute(_GET_NODE_EXECUTIONS, params)]

    @translating
    def get_node_output(self, run_id: str, node_label: str) -> str | None:
        """The output JSON of a completed or skipped node, or None."""
        params = {
            "rid": validate.text("run_id", run_id),
            "label": validate.text("node_label", node_label),
        }
        with self._unit(write=False) as s:
            return s.execute(_GET_NODE_OUTPUT, params).scalar_one_or_none()

    @translating
    def get_pending_nodes(self, run_id: str) -> list[str]:
        """Labels of the run's nodes that are pending, running or failed."""
        params = {"rid": validate.text("run_id", run_id)}
        with self._unit(write=False) as s:
            return list(s.execute(_GET_PENDING_NODES, params).scalars())

    @translating
    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]:
        """Every edge traversal of a run, in traversal order."""
        params = {"rid": validate.text("run_id", run_id)}
        with self._unit(write=False) as s:
            return [rows.record(row) for row in s.execute(_GET_EDGE_TRAVERSALS, params)]

    # Inspection (Pydantic models; payloads left to load_io)

    @translating
    def inspect_run(self, run_id: str) -> DagRun | None:
        """A full DagRun by id, with nested nodes, edges and sub-DAG runs."""
        params = {"rid": validate.text("run_id", run_id)}
        with self._unit(write=False) as s:
            by_id = _load_tree(s, _anchored_tree("run", self._lateral), params)
        return by_id.get(run_id)

    @translating
    def changes_since(self, run_id: str, since: datetime) -> dict[str, DagRun]:
        """What changed in a run's tree after `since`, for live views.

        Every run of the tree (the run and its sub-DAG runs, by run_id) with
        only the nodes started or finished after `since` and the edges
        traversed after it; sub_dags are left unattached. Pass the result to
        `DagRun.apply_changes` of the tree shown last, with `since` its
        `latest_update()`. Empty if the run does not exist.
        """
        params: dict[str, Any] = {
            "rid": validate.text("run_id", run_id),
            "since": validate.aware_datetime("since", since),
        }
        with self._unit(write=False) as s:
            return _load_tree(s, _anchored_tree("run", self._lateral, True), params, attach=False)

    @translating
    def get_recent_runs(
        self,
        limit: int = 20,
        status: str | None = None,
        *,
        statuses: Iterable[str] | None = None,
        dag_nsref: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        after: RunCursor | None = None,
    ) -> list[DagRun]:
        """Runs, newest first (started_at, then run_id, descending), with full
        node and edge data and their sub-DAG runs.

        Filters: one `status` or several `statuses`, `dag_nsref`, and a start
        window `started_after <= started_at < started_before`. Paging: pass the
        `(started_at, run_id)` of the last run of a page as `after` to get the
        next; pages stay stable while new runs are written.
        """
        if status is not None and statuses is not None:
            raise InvalidInputError("give status or statuses, not both")
        params: dict[str, Any] = {"lim": validate.limit(limit)}
        if status:  # the original treats an empty status as no filter
            params["status"] = validate.run_status(status)
        if statuses is not None:
            params["statuses"] = validate.run_statuses(statuses)
        if dag_nsref is not None:
            params["nsref"] = validate.text("dag_nsref", dag_nsref)
        if started_after is not None:
            params["from_ts"] = validate.aware_datetime("started_after", started_after)
        if started_before is not None:
            params["to_ts"] = validate.aware_datetime("started_before", started_before)
        if after is not None:
            params["cursor_ts"], params["cursor_id"] = _cursor(after)
        if params.get("statuses") == [] or params["lim"] == 0:
            return []
        roots, tree = _recent_statements(frozenset(params), self._lateral)
        with self._unit(write=False) as s:
            root_ids = [row[0] for row in s.execute(roots, params)]
            if not root_ids:
                return []
            by_id = _load_tree(s, tree, params)
        return [by_id[rid] for rid in root_ids]

    def get_active_runs(self) -> list[DagRun]:
        """Runs currently running (at most 100, newest first, as the original)."""
        return self.get_recent_runs(limit=100, status=RunStatus.RUNNING.value)

    @translating
    def get_child_runs(self, parent_run_id: str) -> list[DagRun]:
        """Every descendant run of a run (children, grandchildren, ...), in start
        order, each built once, with its own nodes, edges and sub-DAG runs."""
        params = {"rid": validate.text("parent_run_id", parent_run_id)}
        with self._unit(write=False) as s:
            by_id = _load_tree(s, _anchored_tree("children", self._lateral), params)
        return list(by_id.values())

    @translating
    def load_io(self, dag_run: DagRun, node_labels: Sequence[str] | None = None) -> None:
        """Fill `io` on `dag_run` (source inputs / sink outputs) and on its nodes
        (input / output JSON), only those in `node_labels` if given, in one
        statement. Does not recurse into sub-DAG runs."""
        if not isinstance(dag_run, DagRun):
            raise InvalidInputError(f"dag_run must be a DagRun, got {type(dag_run).__name__}")
        if isinstance(node_labels, str):
            raise InvalidInputError("node_labels must be a sequence of labels, not one str")
        wanted = None if node_labels is None else set(node_labels)
        params: dict[str, Any] = {"rid": dag_run.run_id}
        stmt: Executable
        if wanted is None or len(wanted) > _MAX_IN_LIST:
            stmt = _LOAD_IO_ALL
        elif wanted:
            stmt = _LOAD_IO_SOME
            params["labels"] = sorted(wanted)
        else:
            stmt = _LOAD_IO_RUN
        with self._unit(write=False) as s:
            payloads = s.execute(stmt, params).all()
        for label, input_json, output_json in payloads:
            io = IoPayload(input_json=input_json, output_json=output_json)
            if label is None:
                dag_run.io = io
            elif wanted is None or label in wanted:
                node = dag_run.nodes.get(label)
                if node is not None:
                    node.io = io


def _cursor(after: object) -> tuple[datetime, str]:
    if not (isinstance(after, tuple) and len(after) == 2):
        raise InvalidInputError("after must be a (started_at, run_id) tuple of the last run seen")
    return (
        validate.aware_datetime("after started_at", after[0]),
        validate.text("after run_id", after[1]),
    )


class _TreeStatements(NamedTuple):
    """Three statements loading a run tree: its runs, their nodes, their edges."""

    runs: Select[Any]
    nodes: Select[Any]
    edges: Select[Any]


def _tree_statements(
    anchor: Select[Any], lateral: bool, changed_since: bool = False
) -> _TreeStatements:
    """With `changed_since`, only nodes started or finished after the `since`
    parameter, and edges traversed after it, are read (runs always are)."""
    tree = _tree_cte(anchor, lateral)
    node_filter: list[ColumnElement[bool]] = []
    edge_filter: list[ColumnElement[bool]] = []
    if changed_since:
        since: BindParameter[datetime] = bindparam("since")
        node_filter.append(or_(_N.started_at > since, _N.finished_at > since))
        edge_filter.append(_E.traversed_at > since)
    return _TreeStatements(
        runs=_per_tree_run(tree, _RUN_SUMMARY, (), ("started_at", "run_id"), lateral),
        nodes=_per_tree_run(
            tree, _NODE_SUMMARY, node_filter, ("started_at", "node_label"), lateral
        ),
        edges=_per_tree_run(
            tree,
            (_E.run_id, _E.upstream_label, _E.downstream_label, _E.traversed_at),
            edge_filter,
            ("traversed_at", "upstream_label", "downstream_label"),
            lateral,
        ),
    )


def _per_tree_run(
    tree: CTE,
    columns: Sequence[ColumnElement[Any]],
    conditions: Sequence[ColumnElement[bool]],
    order_by: Sequence[str],
    lateral: bool,
) -> Select[Any]:
    """`columns` (of one table, led by its run_id) for every run of `tree`.

    With `lateral` (PostgreSQL), rows are looked up run by run through a
    LATERAL subquery, fenced with OFFSET 0: PostgreSQL cannot estimate a
    recursive CTE's size (it guesses hundreds or thousands of rows for a
    20-run tree) and would hash-join it against a full scan of the table.
    """
    run_id = columns[0]
    if not lateral:
        selected = select(*columns).join(tree, run_id == tree.c.run_id).where(*conditions)
        return selected.order_by(*(selected.selected_columns[name] for name in order_by))
    per_run = (
        select(*columns)
        .where(run_id == tree.c.run_id, *conditions)
        .offset(literal_column("0"))
        .lateral("per_run")
    )
    return (
        select(*per_run.c)
        .select_from(tree.join(per_run, true()))
        .order_by(*(per_run.c[name] for name in order_by))
    )


_TREE_ANCHORS = {
    # inspect_run: the run itself, and below it.
    "run": select(_R.run_id).where(_R.run_id == bindparam("rid")),
    # get_child_runs: the run's children, and below them.
    "children": select(_R.run_id).where(_R.parent_run_id == bindparam("rid")),
}


@functools.cache
def _anchored_tree(anchor: str, lateral: bool, changed_since: bool = False) -> _TreeStatements:
    return _tree_statements(_TREE_ANCHORS[anchor], lateral, changed_since)


_RECENT_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "status": lambda: _R.status == bindparam("status"),
    "statuses": lambda: _R.status.in_(bindparam("statuses", expanding=True)),
    "nsref": lambda: _R.dag_nsref == bindparam("nsref"),
    "from_ts": lambda: _R.started_at >= bindparam("from_ts"),
    "to_ts": lambda: _R.started_at < bindparam("to_ts"),
    "cursor_ts": lambda: or_(
        _R.started_at < bindparam("cursor_ts"),
        and_(_R.started_at == bindparam("cursor_ts"), _R.run_id < bindparam("cursor_id")),
    ),
}


@functools.cache
def _recent_statements(
    params: frozenset[str], lateral: bool
) -> tuple[Select[Any], _TreeStatements]:
    """The newest-first root query for one combination of filters, and the
    statements loading those roots' trees; built once per combination."""
    roots = (
        select(_R.run_id)
        .where(*(make() for name, make in _RECENT_FILTERS.items() if name in params))
        .order_by(_R.started_at.desc(), _R.run_id.desc())
        .limit(bindparam("lim"))
    )
    seed = roots.subquery("roots")
    return roots, _tree_statements(select(seed.c.run_id), lateral)


def _load_tree(
    s: Connection, statements: _TreeStatements, params: dict[str, Any], attach: bool = True
) -> dict[str, DagRun]:
    """Every run of the tree, in start order and each built once, with its
    nodes and edges and its sub-DAG runs hung under their composite nodes.
    Three statements, whatever the tree's depth or breadth."""
    runs = rows.runs_from_rows(s.execute(statements.runs, params).all())
    if runs:
        rows.add_nodes(runs, s.execute(statements.nodes, params).all())
        rows.add_edges(runs, s.execute(statements.edges, params).all())
        if attach:
            attach_sub_dags(runs.values())
    return runs


class NullProvenance:
    """No-op provenance: discards writes, returns None/empty on reads."""

    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None:
        pass

    def update_run_status(self, run_id: str, status: str) -> None:
        pass

    def finish_run(self, run_id: str, status: str, sink_outputs_json: str | None = None) -> None:
        pass

    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None:
        pass

    def record_node_skipped(self, run_id: str, node_label: str, output_json: str) -> None:
        pass

    def complete_node_with_edges(
        self, run_id: str, node_label: str, output_json: str, edges: list[tuple[str, str]]
    ) -> None:
        pass

    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None:
        pass

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return None

    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]:
        return []

    def get_node_output(self, run_id: str, node_label: str) -> str | None:
        return None

    def get_pending_nodes(self, run_id: str) -> list[str]:
        return []

    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]:
        return []

    def inspect_run(self, run_id: str) -> DagRun | None:
        return None

    def changes_since(self, run_id: str, since: datetime) -> dict[str, DagRun]:
        return {}

    def prune(
        self,
        older_than: datetime,
        statuses: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        from dag_provenance.maintenance import PruneResult

        return PruneResult(dry_run=dry_run)

    def load_io(self, dag_run: DagRun, node_labels: Sequence[str] | None = None) -> None:
        pass

    def get_recent_runs(
        self, limit: int = 20, status: str | None = None, **filters: Any
    ) -> list[DagRun]:
        return []

    def get_active_runs(self) -> list[DagRun]:
        return []

    def get_child_runs(self, parent_run_id: str) -> list[DagRun]:
        return []

    @contextmanager
    def batch(self) -> Iterator[NullProvenance]:
        yield self

    def close(self) -> None:
        pass


__all__ = ["DagProvenance", "NullProvenance", "RunCursor"]
