"""DagProvenance: the store's public API.

Each public method validates its input, then runs as one unit of work
(`unit_of_work`): one transaction that commits once or rolls back whole, on
a pooled connection of the store's own, inside an open `batch()`, or inside
the caller's transaction when the store was given a `Connection` or
`Session`. The SQL is prebuilt in `statements`, rows become models in `rows`,
and database errors become the library's in `dberrors`.

Why a Connection and not an ORM Session per call: the store never loads ORM
objects (it returns dicts and Pydantic models), so the Session's identity
map and unit-of-work bookkeeping buy nothing, and on the write hot path they
cost a third of each call (measured: ~3,600 vs ~5,500 calls/s on a SQLite
file). The mapped classes in `orm` stay the schema's single definition.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, exc
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from dag_provenance import maintenance, rows, statements, validate
from dag_provenance.dberrors import translate, translated, translating
from dag_provenance.engine import DbTarget, shared_engines
from dag_provenance.errors import (
    DatabaseError,
    DuplicateEdgeError,
    DuplicateRunError,
    InvalidInputError,
    NodeNotFoundError,
    ProvenanceError,
    RunNotFoundError,
)
from dag_provenance.execution import Executor, Outcome
from dag_provenance.initiator import current_initiator
from dag_provenance.maintenance import PruneResult
from dag_provenance.migrate import ensure_schema
from dag_provenance.models import DagRun, IoPayload, attach_sub_dags
from dag_provenance.orm import DAG_NSREF_MAX, INITIATOR_MAX, NODE_LABEL_MAX, RUN_ID_MAX
from dag_provenance.protocol import RunCursor
from dag_provenance.serialization import safe_json_dumps
from dag_provenance.status import NodeStatus, RunStatus
from dag_provenance.unit_of_work import CallerUnitOfWork, EngineUnitOfWork, UnitOfWork


def _now() -> datetime:
    return datetime.now(UTC)


class DagProvenance:
    """Records the provenance of DAG runs and answers questions about them.

    `db_path` is one of:

    - a SQLite file path (`Path` or plain string) or a SQLAlchemy URL string
      (`postgresql+psycopg://...`, `mysql+pymysql://...`): the store opens
      (and shares within the process) a configured engine of its own;
    - an `Engine`, used as given;
    - a `Connection` or ORM `Session` the caller owns: every call runs inside
      the caller's current transaction, under a savepoint, and the caller's
      commit or rollback decides (see `unit_of_work.CallerUnitOfWork`).

    By default the schema is brought to the newest revision on construction
    (through the engine, on a connection of its own); with `migrate=False` a
    database behind the code raises `SchemaOutOfDateError`. `initiator_var` is
    the one context variable `create_run` reads when no initiator is passed
    (by default it reads this library's `run_initiator` and, when lythonic is
    imported, lythonic's).
    """

    db_path: Path | None
    engine: Engine
    unit_of_work: UnitOfWork
    """How each call reaches the database; also used by `maintenance`."""

    def __init__(
        self,
        db_path: DbTarget | Connection | Session,
        *,
        migrate: bool = True,
        initiator_var: ContextVar[str | None] | None = None,
    ) -> None:
        self._engine_key: str | None = None
        if isinstance(db_path, Connection | Session):
            self.unit_of_work = CallerUnitOfWork(db_path)
        elif isinstance(db_path, Engine):
            self.unit_of_work = EngineUnitOfWork(db_path)
        else:
            with translated():
                engine, self._engine_key = shared_engines.acquire(db_path)
            threads = shared_engines.thread_connections(self._engine_key)
            self.unit_of_work = EngineUnitOfWork(engine, threads)
        self.engine = self.unit_of_work.engine
        self.db_path = self._sqlite_path()
        self._initiator_var = initiator_var
        dialect = self.engine.dialect.name
        self._upsert_node = statements.node_upsert(dialect)
        self._lateral = dialect == "postgresql"
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
        An Engine, Connection or Session passed in by the caller is left
        alone. Idempotent."""
        key, self._engine_key = self._engine_key, None
        if key is not None:
            shared_engines.release(key)

    def __enter__(self) -> DagProvenance:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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
        the outer batch. On a caller's Connection or Session a batch is a
        savepoint in the caller's transaction, committed only with it.
        """
        with self.unit_of_work.batch():
            yield self

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
        return maintenance.prune(self, older_than, statuses=statuses, dry_run=dry_run)

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
            self.unit_of_work.write(
                lambda ex: ex.execute(statements.INSERT_RUN, row),
                payloads=(("source_inputs", inputs),),
                single=True,
                on_replay=lambda: self._holds_run(row),
            )
        except exc.IntegrityError as e:
            if self._run_exists(run_id):
                raise DuplicateRunError(run_id) from e
            if parent_run_id is not None and not self._run_exists(parent_run_id):
                raise RunNotFoundError(parent_run_id, "parent run") from e
            raise translate(e) from e

    def _holds_run(self, row: dict[str, Any]) -> bool:
        """Whether the run in the database is exactly `row` (a replayed
        create_run meeting its own earlier commit)."""
        found = self._read_first(statements.GET_RUN, {"rid": row["run_id"]})
        if found is None:
            return False
        stored = dict(zip(statements.column_keys(statements.GET_RUN), found, strict=True))
        return all(stored[key] == value for key, value in row.items())

    @translating
    def update_run_status(self, run_id: str, status: str) -> None:
        """Set a run's status without setting finished_at."""
        params = {
            "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
            "status": validate.run_status(status),
        }
        done = self.unit_of_work.write(
            lambda ex: ex.execute(statements.UPDATE_RUN_STATUS, params), single=True
        )
        if done is not None and done.rowcount == 0:
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
        done = self.unit_of_work.write(
            lambda ex: ex.execute(statements.FINISH_RUN, params),
            payloads=(("sink_outputs_json", sink),),
            single=True,
        )
        if done is not None and done.rowcount == 0:
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
        try:
            # Replaces the whole row: replaying it after a lost connection is harmless.
            self.unit_of_work.write(
                lambda ex: ex.execute(self._upsert_node, row),
                payloads=(("input_json", input_json), ("output_json", output_json)),
                single=True,
            )
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
                "label": node_label,
                "upstream_label": up,
                "downstream_label": down,
                "traversed_at": params["finished_at"],
            }
            for up, down in pairs
        ]

        def work(ex: Executor) -> Outcome:
            completed = ex.execute(statements.COMPLETE_NODE, params)
            if not edge_rows:
                return completed
            if ex.deferred:
                # Pipelined: every statement goes in the unit's one exchange,
                # so each edge is inserted only if the node exists, and the
                # node's rowcount, read afterwards, says whether it did.
                ex.many(statements.INSERT_EDGE_IF_NODE, edge_rows)
            elif completed.rowcount:
                ex.many(statements.INSERT_EDGE, [_plain_edge(row) for row in edge_rows])
            return completed

        try:
            completed = self.unit_of_work.write(
                work,
                payloads=(("output_json", output),),
                single=not edge_rows,
                pipeline=True,
                on_replay=lambda: self._holds_completion(params, edge_rows),
            )
        except exc.IntegrityError as e:
            raise self._duplicate_edge(run_id, pairs) from e
        if completed is not None and completed.rowcount == 0:
            raise self._missing_node(run_id, node_label)

    def _holds_completion(self, params: dict[str, Any], edge_rows: list[dict[str, Any]]) -> bool:
        """Whether the node's completion and every edge are exactly this
        call's (a replayed complete_node_with_edges meeting its own commit)."""
        output = self._read_first(
            statements.GET_NODE_OUTPUT, {"rid": params["rid"], "label": params["label"]}
        )
        if output is None or output[0] != params["output"]:
            return False
        recorded = {
            (e["upstream_label"], e["downstream_label"]): e["traversed_at"]
            for e in self.get_edge_traversals(params["rid"])
        }
        when = params["finished_at"].timestamp()
        return all(
            recorded.get((r["upstream_label"], r["downstream_label"])) == when for r in edge_rows
        )

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
        run = {**node, "status": RunStatus.FAILED.value}

        def work(ex: Executor) -> Outcome:
            failed = ex.execute(statements.FAIL_NODE, node)
            ex.execute(statements.FINISH_RUN_IF_NODE, run)  # nothing if the node is missing
            return failed

        failed = self.unit_of_work.write(work, payloads=(("error", err),), pipeline=True)
        if failed is not None and failed.rowcount == 0:
            raise self._missing_node(run_id, node_label)

    def _read_first(self, statement: Any, params: dict[str, Any]) -> tuple[Any, ...] | None:
        return self.unit_of_work.read(lambda ex: ex.first(statement, params))

    def _run_exists(self, run_id: str) -> bool:
        return self._read_first(statements.RUN_EXISTS, {"rid": run_id}) is not None

    def _missing_node(self, run_id: str, node_label: str) -> ProvenanceError:
        if not self._run_exists(run_id):
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

    def _records(self, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        record = _recorder(statement)
        found = self.unit_of_work.read(lambda ex: ex.all(statement, params))
        return [record(row) for row in found]

    @translating
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """A run record by id, or None."""
        params = {"rid": validate.text("run_id", run_id)}
        row = self._read_first(statements.GET_RUN, params)
        return None if row is None else _recorder(statements.GET_RUN)(row)

    @translating
    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]:
        """Every node execution record of a run, in start order."""
        return self._records(
            statements.GET_NODE_EXECUTIONS, {"rid": validate.text("run_id", run_id)}
        )

    @translating
    def get_node_output(self, run_id: str, node_label: str) -> str | None:
        """The output JSON of a completed or skipped node, or None."""
        params = {
            "rid": validate.text("run_id", run_id),
            "label": validate.text("node_label", node_label),
        }
        row = self._read_first(statements.GET_NODE_OUTPUT, params)
        return None if row is None else row[0]

    @translating
    def get_pending_nodes(self, run_id: str) -> list[str]:
        """Labels of the run's nodes that are pending, running or failed."""
        params = {"rid": validate.text("run_id", run_id)}
        found = self.unit_of_work.read(lambda ex: ex.all(statements.GET_PENDING_NODES, params))
        return [row[0] for row in found]

    @translating
    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]:
        """Every edge traversal of a run, in traversal order."""
        return self._records(
            statements.GET_EDGE_TRAVERSALS, {"rid": validate.text("run_id", run_id)}
        )

    # Inspection (Pydantic models; payloads left to load_io)

    def _tree(
        self, tree: statements.TreeStatements, params: dict[str, Any], attach: bool = True
    ) -> dict[str, DagRun]:
        return self.unit_of_work.read(
            lambda ex: _load_tree(ex, tree, params, attach), snapshot=True
        )

    @translating
    def inspect_run(self, run_id: str) -> DagRun | None:
        """A full DagRun by id, with nested nodes, edges and sub-DAG runs."""
        params = {"rid": validate.text("run_id", run_id)}
        return self._tree(statements.anchored_tree("run", self._lateral), params).get(run_id)

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
        return self._tree(statements.anchored_tree("run", self._lateral, True), params, False)

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
        roots, tree = statements.recent_statements(frozenset(params), self._lateral)

        def work(ex: Executor) -> tuple[list[str], dict[str, DagRun]]:
            # The tree statements find their roots themselves: all four go together.
            found, by_id = _load_tree_with(ex, tree, params, True, roots)
            return [row[0] for row in found], by_id

        root_ids, by_id = self.unit_of_work.read(work, snapshot=True)
        return [by_id[rid] for rid in root_ids]

    def get_active_runs(self) -> list[DagRun]:
        """Runs currently running (at most 100, newest first, as the original)."""
        return self.get_recent_runs(limit=100, status=RunStatus.RUNNING.value)

    @translating
    def get_child_runs(self, parent_run_id: str) -> list[DagRun]:
        """Every descendant run of a run (children, grandchildren, ...), in start
        order, each built once, with its own nodes, edges and sub-DAG runs."""
        params = {"rid": validate.text("parent_run_id", parent_run_id)}
        return list(
            self._tree(statements.anchored_tree("children", self._lateral), params).values()
        )

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
        if wanted is None or len(wanted) > statements.MAX_IN_LIST:
            stmt = statements.LOAD_IO_ALL
        elif wanted:
            stmt = statements.LOAD_IO_SOME
            params["labels"] = sorted(wanted)
        else:
            stmt = statements.LOAD_IO_RUN
        payloads = self.unit_of_work.read(lambda ex: ex.all(stmt, params))
        for label, input_json, output_json in payloads:
            io = IoPayload(input_json=input_json, output_json=output_json)
            if label is None:
                dag_run.io = io
            elif wanted is None or label in wanted:
                node = dag_run.nodes.get(label)
                if node is not None:
                    node.io = io


def _plain_edge(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "label"}


@functools.cache
def _recorder(statement: Any) -> rows.Recorder:
    return rows.Recorder(statements.column_keys(statement), statements.timestamp_columns(statement))


def _cursor(after: object) -> tuple[datetime, str]:
    if not (isinstance(after, tuple) and len(after) == 2):
        raise InvalidInputError("after must be a (started_at, run_id) tuple of the last run seen")
    return (
        validate.aware_datetime("after started_at", after[0]),
        validate.text("after run_id", after[1]),
    )


def _load_tree(
    ex: Executor, tree: statements.TreeStatements, params: dict[str, Any], attach: bool = True
) -> dict[str, DagRun]:
    """Every run of the tree, in start order and each built once, with its
    nodes and edges and its sub-DAG runs hung under their composite nodes.
    Three statements, whatever the tree's depth or breadth, sent together
    where the driver can."""
    return _load_tree_with(ex, tree, params, attach, None)[1]


def _load_tree_with(
    ex: Executor,
    tree: statements.TreeStatements,
    params: dict[str, Any],
    attach: bool,
    roots: Any,
) -> tuple[list[tuple[Any, ...]], dict[str, DagRun]]:
    """`_load_tree`, and first the rows of `roots` (a SELECT sent with them)."""
    queries = [(tree.runs, params), (tree.nodes, params), (tree.edges, params)]
    if roots is not None:
        queries.insert(0, (roots, params))
    results = ex.all_of(queries)
    root_rows = results.pop(0) if roots is not None else []
    run_rows, node_rows, edge_rows = results
    runs = rows.runs_from_rows(run_rows)
    if runs:
        rows.add_nodes(runs, node_rows)
        rows.add_edges(runs, edge_rows)
        if attach:
            attach_sub_dags(runs.values())
    return root_rows, runs


__all__ = ["DagProvenance", "RunCursor"]
