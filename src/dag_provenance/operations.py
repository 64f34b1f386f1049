"""The store's operations, written once for the sync and the async store.

Each public operation is a generator. It validates its input, then yields the
units of work it needs (`Read`, `Write`) and receives each one's result (or
its error, thrown in at the `yield`); a runner (`runner.run_sync` for
`DagProvenance`, `runner.run_async` for `AsyncDagProvenance`) runs each unit
on its store's unit of work. A unit's work is itself a generator of
statement requests (`All`, `First`, `Execute`, `Many`, `AllOf`) that an
executor answers.

So the SQL (`statements`), the checks (`validate`), how a refused write is
explained, and the row-to-model code (`rows`) exist once; the two stores
differ only in how a request reaches the database. The operations' first
parameter is named `self` because the stores expose them as their methods
(see `runner.sync_operation`); it is the store's `OperationContext`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from sqlalchemy import exc

from dag_provenance import rows, statements, validate
from dag_provenance.dberrors import translate
from dag_provenance.errors import (
    DatabaseError,
    DuplicateEdgeError,
    DuplicateRunError,
    InvalidInputError,
    NodeNotFoundError,
    ProvenanceError,
    RunNotFoundError,
)
from dag_provenance.events import (
    ChangeEvent,
    Listeners,
    NodeCompleted,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    RunCreated,
    RunFinished,
    RunStatusChanged,
)
from dag_provenance.execution import Outcome, Params
from dag_provenance.initiator import current_initiator
from dag_provenance.models import (
    DagRun,
    DagStats,
    IoPayload,
    attach_sub_dags,
)
from dag_provenance.orm import DAG_NSREF_MAX, INITIATOR_MAX, NODE_LABEL_MAX, RUN_ID_MAX
from dag_provenance.payload_limits import Payloads
from dag_provenance.protocol import RunCursor
from dag_provenance.requests import (
    All,
    AllOf,
    Execute,
    First,
    Many,
    StatementRequest,
    Work,
)
from dag_provenance.serialization import safe_json_dumps
from dag_provenance.status import NodeStatus, RunStatus

T = TypeVar("T")
R = TypeVar("R")


# --- what an operation asks of its store ----------------------------------------------


@dataclass(frozen=True)
class Read(Generic[T]):
    """A unit that reads: one statement request, or a work of several.
    `snapshot`: several statements that must see one state."""

    work: StatementRequest | Callable[[], Work[T]]
    snapshot: bool = False


@dataclass(frozen=True)
class Write(Generic[T]):
    """A unit that writes, committed when its result comes back.

    `work` is one statement request, or `work(deferred)` builds the unit's
    statements; `deferred` says they are queued
    (pipelined), so no outcome can be read before the unit ends. `single`:
    one statement, which may commit on its own. `pipeline`: the work reads no
    result, so its statements may go in one exchange. `on_replay`: for work
    that inserts, an operation telling whether the database holds exactly
    what this call wrote (a replay after a lost connection meeting its own
    earlier commit).
    """

    work: StatementRequest | Callable[[bool], Work[T]]
    payloads: Payloads = ()
    single: bool = False
    pipeline: bool = False
    on_replay: Callable[[], Operation[bool]] | None = None


Unit: TypeAlias = Read[Any] | Write[Any]
Operation: TypeAlias = Generator[Unit, Any, R]
"""A public operation: units out, their results in, the call's answer returned."""


class OperationContext(Protocol):
    """What the operations need to know about the store running them."""

    @property
    def dialect_name(self) -> str: ...

    def initiator(self) -> str | None:
        """Who the calling context says is starting runs."""
        ...

    @property
    def listening(self) -> bool:
        """Whether the store has listeners (writes then publish change events)."""
        ...

    def publish(self, *events: ChangeEvent) -> None:
        """Hand a committed write's events to the store's listeners (held
        until the batch or the caller's transaction commits, if one is open)."""
        ...


class Publisher(Protocol):
    """Where a store's events go: its unit of work holds them for an open
    batch or caller transaction, and `deliver`s them once committed."""

    def publish(
        self, events: Sequence[ChangeEvent], deliver: Callable[[Sequence[ChangeEvent]], None]
    ) -> None: ...


class StoreContext:
    """The `OperationContext` of a store: its dialect, its initiator variable,
    and its listeners (with the unit of work that decides when they hear)."""

    def __init__(
        self,
        dialect_name: str,
        initiator_var: ContextVar[str | None] | None,
        listeners: Listeners | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self._dialect_name = dialect_name
        self._initiator_var = initiator_var
        self.listeners = listeners if listeners is not None else Listeners()
        self._publisher = publisher

    @property
    def dialect_name(self) -> str:
        return self._dialect_name

    @property
    def listening(self) -> bool:
        return self.listeners.active

    def publish(self, *events: ChangeEvent) -> None:
        if self._publisher is None:
            self.listeners.deliver(events)
        else:
            self._publisher.publish(events, self.listeners.deliver)

    def initiator(self) -> str | None:
        """The store's `initiator_var`, else either library's `initiated_by`."""
        variable = self._initiator_var
        return current_initiator() if variable is None else variable.get()


def _now() -> datetime:
    return datetime.now(UTC)


# --- small works ----------------------------------------------------------------------


def _read_first(statement: Any, params: Params) -> Operation[tuple[Any, ...] | None]:
    row: tuple[Any, ...] | None = yield Read(First(statement, params))
    return row


def _run_exists(run_id: str) -> Operation[bool]:
    return (yield from _read_first(statements.RUN_EXISTS, {"rid": run_id})) is not None


def _missing_node(run_id: str, node_label: str) -> Operation[ProvenanceError]:
    if not (yield from _run_exists(run_id)):
        return RunNotFoundError(run_id)
    return NodeNotFoundError(run_id, node_label)


# --- writes ---------------------------------------------------------------------------


def create_run(
    self: OperationContext,
    run_id: str,
    dag_nsref: str,
    source_inputs: dict[str, Any],
    parent_run_id: str | None = None,
    initiator: str | None = None,
) -> Operation[None]:
    """Create a run with status 'running'.

    `initiator` defaults to who the calling context says is starting runs:
    the `initiator_var` the store was given, else whichever `initiated_by`
    (this library's or lythonic's) is innermost around the call. Context
    variables do not follow a call into an executor thread: read the
    initiator before the hop and pass it, as lythonic's DagRunner does.
    """
    if initiator is None:
        initiator = self.initiator()
    inputs = validate.text(
        "source_inputs", safe_json_dumps(validate.mapping("source_inputs", source_inputs))
    )
    rid = validate.identifier("run_id", run_id, RUN_ID_MAX)
    nsref = validate.identifier("dag_nsref", dag_nsref, DAG_NSREF_MAX)
    parent = validate.optional_identifier("parent_run_id", parent_run_id, RUN_ID_MAX)
    initiated_by = validate.optional_identifier("initiator", initiator, INITIATOR_MAX)
    started_at = _now()
    row = {
        "run_id": rid,
        "dag_nsref": nsref,
        "parent_run_id": parent,
        "status": RunStatus.RUNNING.value,
        "started_at": started_at,
        "source_inputs_json": inputs,
        "initiated_by": initiated_by,
    }
    try:
        yield Write(
            Execute(statements.INSERT_RUN, row),
            payloads=(("source_inputs", inputs),),
            single=True,
            on_replay=lambda: _holds_run(row),
        )
    except exc.IntegrityError as e:
        if (yield from _run_exists(run_id)):
            raise DuplicateRunError(run_id) from e
        if parent_run_id is not None and not (yield from _run_exists(parent_run_id)):
            raise RunNotFoundError(parent_run_id, "parent run") from e
        raise translate(e) from e
    if self.listening:
        self.publish(RunCreated(rid, nsref, parent, initiated_by, started_at))


def _holds_run(row: dict[str, Any]) -> Operation[bool]:
    """Whether the run in the database is exactly `row`."""
    found = yield from _read_first(statements.GET_RUN, {"rid": row["run_id"]})
    if found is None:
        return False
    stored = dict(zip(statements.column_keys(statements.GET_RUN), found, strict=True))
    return all(stored[key] == value for key, value in row.items())


def update_run_status(self: OperationContext, run_id: str, status: str) -> Operation[None]:
    """Set a run's status without setting finished_at."""
    params = {
        "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
        "status": validate.run_status(status),
    }
    done: Outcome | None = yield Write(Execute(statements.UPDATE_RUN_STATUS, params), single=True)
    if done is not None and done.rowcount == 0:
        raise RunNotFoundError(run_id)
    if self.listening:
        self.publish(RunStatusChanged(run_id, params["status"], _now()))


def finish_run(
    self: OperationContext, run_id: str, status: str, sink_outputs_json: str | None = None
) -> Operation[None]:
    """Set a run's final status, finished_at and sink outputs."""
    sink = validate.payload("sink_outputs_json", sink_outputs_json)
    final_status, finished_at = validate.run_status(status), _now()
    params = {
        "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
        "status": final_status,
        "sink": sink,
        "finished_at": finished_at,
    }
    done: Outcome | None = yield Write(
        Execute(statements.FINISH_RUN, params),
        payloads=(("sink_outputs_json", sink),),
        single=True,
    )
    if done is not None and done.rowcount == 0:
        raise RunNotFoundError(run_id)
    if self.listening:
        self.publish(RunFinished(run_id, final_status, finished_at))


def record_node_start(
    self: OperationContext,
    run_id: str,
    node_label: str,
    input_json: str,
    is_source: bool = False,
    is_sink: bool = False,
) -> Operation[None]:
    """Record that a node started. A node started again (restart) starts afresh."""
    yield from _replace_node(
        self,
        run_id,
        node_label,
        status=NodeStatus.RUNNING.value,
        is_source=validate.flag("is_source", is_source),
        is_sink=validate.flag("is_sink", is_sink),
        input_json=validate.payload("input_json", input_json),
        output_json=None,
        finished=False,
    )


def record_node_skipped(
    self: OperationContext, run_id: str, node_label: str, output_json: str
) -> Operation[None]:
    """Record a node as skipped with a copied output (used in replay)."""
    yield from _replace_node(
        self,
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
    self: OperationContext,
    run_id: str,
    node_label: str,
    *,
    status: str,
    is_source: bool,
    is_sink: bool,
    input_json: str | None,
    output_json: str | None,
    finished: bool,
) -> Operation[None]:
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
    upsert = statements.node_upsert(self.dialect_name)
    try:
        # Replaces the whole row: replaying it after a lost connection is harmless.
        yield Write(
            Execute(upsert, row),
            payloads=(("input_json", input_json), ("output_json", output_json)),
            single=True,
        )
    except exc.IntegrityError as e:
        if not (yield from _run_exists(run_id)):
            raise RunNotFoundError(run_id) from e
        raise translate(e) from e
    if self.listening:
        if finished:
            self.publish(NodeSkipped(run_id, node_label, now))
        else:
            self.publish(NodeStarted(run_id, node_label, is_source, is_sink, now))


def complete_node_with_edges(
    self: OperationContext,
    run_id: str,
    node_label: str,
    output_json: str,
    edges: list[tuple[str, str]],
) -> Operation[None]:
    """Record a node's completion and its outgoing edge traversals atomically."""
    output = validate.payload("output_json", output_json)
    now = _now()
    params = {
        "rid": validate.identifier("run_id", run_id, RUN_ID_MAX),
        "label": validate.identifier("node_label", node_label, NODE_LABEL_MAX),
        "output": output,
        "finished_at": now,
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

    def work(deferred: bool) -> Work[Outcome]:
        completed: Outcome = yield Execute(statements.COMPLETE_NODE, params)
        if not edge_rows:
            return completed
        if deferred:
            # Pipelined: every statement goes in the unit's one exchange, so
            # each edge is inserted only if the node exists, and the node's
            # rowcount, read afterwards, says whether it did.
            yield Many(
                statements.INSERT_EDGE_IF_NODE, [{**row, "label": node_label} for row in edge_rows]
            )
        elif completed.rowcount:
            yield Many(statements.INSERT_EDGE, edge_rows)
        return completed

    try:
        completed: Outcome | None = yield Write(
            work,
            payloads=(("output_json", output),),
            single=not edge_rows,
            pipeline=True,
            on_replay=lambda: _holds_completion(params, edge_rows),
        )
    except exc.IntegrityError as e:
        raise (yield from _duplicate_edge(run_id, pairs)) from e
    if completed is not None and completed.rowcount == 0:
        raise (yield from _missing_node(run_id, node_label))
    if self.listening:
        self.publish(NodeCompleted(run_id, node_label, now, tuple(pairs)))


def _holds_completion(params: dict[str, Any], edge_rows: list[dict[str, Any]]) -> Operation[bool]:
    """Whether the node's completion and every edge are exactly this call's."""
    output = yield from _read_first(
        statements.GET_NODE_OUTPUT, {"rid": params["rid"], "label": params["label"]}
    )
    if output is None or output[0] != params["output"]:
        return False
    recorded = {
        (e["upstream_label"], e["downstream_label"]): e["traversed_at"]
        for e in (yield from get_edge_traversals(_NO_CONTEXT, params["rid"]))
    }
    when = params["finished_at"].timestamp()
    return all(
        recorded.get((r["upstream_label"], r["downstream_label"])) == when for r in edge_rows
    )


def _duplicate_edge(run_id: str, pairs: list[tuple[str, str]]) -> Operation[ProvenanceError]:
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        if pair in seen:
            return DuplicateEdgeError(run_id, *pair)
        seen.add(pair)
    recorded = {
        (e["upstream_label"], e["downstream_label"])
        for e in (yield from get_edge_traversals(_NO_CONTEXT, run_id))
    }
    for pair in pairs:
        if pair in recorded:
            return DuplicateEdgeError(run_id, *pair)
    return DatabaseError(f"recording edges of run {run_id!r} violated a constraint")


def fail_node_and_finish_run(
    self: OperationContext, run_id: str, node_label: str, error: str
) -> Operation[None]:
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

    def work(_deferred: bool) -> Work[Outcome]:
        failed: Outcome = yield Execute(statements.FAIL_NODE, node)
        yield Execute(statements.FINISH_RUN_IF_NODE, run)  # nothing if the node is missing
        return failed

    failed: Outcome | None = yield Write(work, payloads=(("error", err),), pipeline=True)
    if failed is not None and failed.rowcount == 0:
        raise (yield from _missing_node(run_id, node_label))
    if self.listening:
        self.publish(
            NodeFailed(run_id, node_label, err, now),
            RunFinished(run_id, RunStatus.FAILED.value, now, node_label, err),
        )


# --- plain reads (dicts, epoch-float timestamps, as the original returns them) --------


@functools.cache
def _recorder(statement: Any) -> rows.Recorder:
    return rows.Recorder(statements.column_keys(statement), statements.timestamp_columns(statement))


def _records(statement: Any, params: Params) -> Operation[list[dict[str, Any]]]:
    record = _recorder(statement)
    found: list[tuple[Any, ...]] = yield Read(All(statement, params))
    return [record(row) for row in found]


def get_run(self: OperationContext, run_id: str) -> Operation[dict[str, Any] | None]:
    """A run record by id, or None."""
    row = yield from _read_first(statements.GET_RUN, {"rid": validate.text("run_id", run_id)})
    return None if row is None else _recorder(statements.GET_RUN)(row)


def get_node_executions(self: OperationContext, run_id: str) -> Operation[list[dict[str, Any]]]:
    """Every node execution record of a run, in start order."""
    return (
        yield from _records(
            statements.GET_NODE_EXECUTIONS, {"rid": validate.text("run_id", run_id)}
        )
    )


def get_node_output(self: OperationContext, run_id: str, node_label: str) -> Operation[str | None]:
    """The output JSON of a completed or skipped node, or None."""
    params = {
        "rid": validate.text("run_id", run_id),
        "label": validate.text("node_label", node_label),
    }
    row = yield from _read_first(statements.GET_NODE_OUTPUT, params)
    return None if row is None else row[0]


def get_pending_nodes(self: OperationContext, run_id: str) -> Operation[list[str]]:
    """Labels of the run's nodes that are pending, running or failed."""
    params = {"rid": validate.text("run_id", run_id)}
    found: list[tuple[Any, ...]] = yield Read(All(statements.GET_PENDING_NODES, params))
    return [row[0] for row in found]


def get_edge_traversals(self: OperationContext, run_id: str) -> Operation[list[dict[str, Any]]]:
    """Every edge traversal of a run, in traversal order."""
    return (
        yield from _records(
            statements.GET_EDGE_TRAVERSALS, {"rid": validate.text("run_id", run_id)}
        )
    )


# --- inspection (Pydantic models; payloads left to load_io) --------------------------


def _load_tree(
    tree: statements.TreeStatements, params: Params, attach: bool = True, roots: Any = None
) -> Work[tuple[list[tuple[Any, ...]], dict[str, DagRun]]]:
    """Every run of the tree, in start order and each built once, with its
    nodes and edges and its sub-DAG runs hung under their composite nodes;
    and first the rows of `roots` (a SELECT sent with them), if given.
    Three statements (four with `roots`) whatever the tree's depth or
    breadth, sent together where the driver can."""
    queries = [(tree.runs, params), (tree.nodes, params), (tree.edges, params)]
    if roots is not None:
        queries.insert(0, (roots, params))
    results: list[list[tuple[Any, ...]]] = yield AllOf(queries)
    root_rows = results.pop(0) if roots is not None else []
    run_rows, node_rows, edge_rows = results
    runs = rows.runs_from_rows(run_rows)
    if runs:
        rows.add_nodes(runs, node_rows)
        rows.add_edges(runs, edge_rows)
        if attach:
            attach_sub_dags(runs.values())
    return root_rows, runs


def _tree(
    tree: statements.TreeStatements, params: Params, attach: bool = True
) -> Operation[dict[str, DagRun]]:
    found: tuple[Any, dict[str, DagRun]] = yield Read(
        lambda: _load_tree(tree, params, attach), snapshot=True
    )
    return found[1]


def _lateral(self: OperationContext) -> bool:
    return self.dialect_name == "postgresql"


def inspect_run(self: OperationContext, run_id: str) -> Operation[DagRun | None]:
    """A full DagRun by id, with nested nodes, edges and sub-DAG runs."""
    params = {"rid": validate.text("run_id", run_id)}
    by_id = yield from _tree(statements.anchored_tree("run", _lateral(self)), params)
    return by_id.get(run_id)


def changes_since(
    self: OperationContext, run_id: str, since: datetime
) -> Operation[dict[str, DagRun]]:
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
    return (yield from _tree(statements.anchored_tree("run", _lateral(self), True), params, False))


def get_recent_runs(
    self: OperationContext,
    limit: int = 20,
    status: str | None = None,
    *,
    statuses: Iterable[str] | None = None,
    dag_nsref: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    after: RunCursor | None = None,
) -> Operation[list[DagRun]]:
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
    roots, tree = statements.recent_statements(frozenset(params), _lateral(self))
    # The tree statements find their roots themselves: all four go together.
    found, by_id = yield Read(lambda: _load_tree(tree, params, True, roots), snapshot=True)
    return [by_id[row[0]] for row in found]


def get_active_runs(self: OperationContext) -> Operation[list[DagRun]]:
    """Runs currently running (at most 100, newest first, as the original)."""
    return (yield from get_recent_runs(self, limit=100, status=RunStatus.RUNNING.value))


def get_child_runs(self: OperationContext, parent_run_id: str) -> Operation[list[DagRun]]:
    """Every descendant run of a run (children, grandchildren, ...), in start
    order, each built once, with its own nodes, edges and sub-DAG runs."""
    params = {"rid": validate.text("parent_run_id", parent_run_id)}
    by_id = yield from _tree(statements.anchored_tree("children", _lateral(self)), params)
    return list(by_id.values())


def dag_stats(
    self: OperationContext,
    dag_nsref: str,
    *,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
) -> Operation[DagStats]:
    """Statistics of a DAG's runs started in `started_after <= started_at <
    started_before` (either bound may be left open): runs per status, and
    per node label the finished executions, failures, failure rate, p50 and
    p95 durations and latest failure (`DagStats` and `NodeStats` say exactly
    what each figure counts).

    Only runs whose dag_nsref is exactly `dag_nsref` count: sub-DAG runs
    (nsref `<dag_nsref>/<key>`) and their nodes are left out. Computed in
    the database, in three statements reading one snapshot; a DAG with no
    run in the window gives zero counts and no nodes.
    """
    params: dict[str, Any] = {"nsref": validate.text("dag_nsref", dag_nsref)}
    if started_after is not None:
        params["from_ts"] = validate.aware_datetime("started_after", started_after)
    if started_before is not None:
        params["to_ts"] = validate.aware_datetime("started_before", started_before)
    queries = statements.stats_statements(self.dialect_name, frozenset(params))
    found: list[list[tuple[Any, ...]]] = yield Read(
        AllOf([(query, params) for query in queries]), snapshot=True
    )
    return rows.dag_stats(params["nsref"], started_after, started_before, *found)


def load_io(
    self: OperationContext, dag_run: DagRun, node_labels: Sequence[str] | None = None
) -> Operation[None]:
    """Fill `io` on `dag_run` (source inputs / sink outputs) and on its nodes
    (input / output JSON), only those in `node_labels` if given, in one
    statement. Does not recurse into sub-DAG runs."""
    if not isinstance(dag_run, DagRun):
        raise InvalidInputError(f"dag_run must be a DagRun, got {type(dag_run).__name__}")
    if isinstance(node_labels, str):
        raise InvalidInputError("node_labels must be a sequence of labels, not one str")
    wanted = None if node_labels is None else set(node_labels)
    params: dict[str, Any] = {"rid": dag_run.run_id}
    statement: Any
    if wanted is None or len(wanted) > statements.MAX_IN_LIST:
        statement = statements.LOAD_IO_ALL
    elif wanted:
        statement = statements.LOAD_IO_SOME
        params["labels"] = sorted(wanted)
    else:
        statement = statements.LOAD_IO_RUN
    payloads: list[tuple[Any, ...]] = yield Read(All(statement, params))
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


class _NoContext:
    """For operations that need nothing of the store (plain reads run inside
    other operations)."""

    @property
    def dialect_name(self) -> str:
        raise AssertionError("this operation needs no dialect")

    def initiator(self) -> str | None:
        raise AssertionError("this operation needs no initiator")

    @property
    def listening(self) -> bool:
        return False

    def publish(self, *events: ChangeEvent) -> None:
        raise AssertionError("this operation writes nothing")


_NO_CONTEXT = _NoContext()
