"""The store's SQL: every statement the repository runs, built once from
SQLAlchemy Core expressions over the mapped tables, with bound parameters.

Pure: nothing here touches a database. Statements that differ by dialect or
by the filters a call uses are built by cached functions, once per
combination, and can be checked by compiling them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    CTE,
    BigInteger,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    extract,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.expression import BindParameter, ColumnElement

from dag_provenance.orm import dag_runs, edge_traversals, node_executions
from dag_provenance.status import NodeStatus
from dag_provenance.types import UTCDateTime

# Load lists of node labels past this size are filtered in Python, so no
# statement's parameter count grows with the caller's input.
MAX_IN_LIST = 500

_R = dag_runs.c
_N = node_executions.c
_E = edge_traversals.c

RUN_SUMMARY = (
    _R.run_id,
    _R.dag_nsref,
    _R.parent_run_id,
    _R.status,
    _R.started_at,
    _R.finished_at,
    _R.initiated_by,
)
NODE_SUMMARY = (
    _N.run_id,
    _N.node_label,
    _N.status,
    _N.is_source,
    _N.is_sink,
    _N.started_at,
    _N.finished_at,
    _N.error,
)

UPDATE_RUN_STATUS = (
    update(dag_runs).where(_R.run_id == bindparam("rid")).values(status=bindparam("status"))
)
FINISH_RUN = (
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
COMPLETE_NODE = _UPDATE_NODE.values(
    status=NodeStatus.COMPLETED.value,
    finished_at=bindparam("finished_at"),
    output_json=bindparam("output"),
    error=None,
)
FAIL_NODE = _UPDATE_NODE.values(
    status=NodeStatus.FAILED.value, finished_at=bindparam("finished_at"), error=bindparam("err")
)
# fail_node_and_finish_run: the run is failed only if the node exists, so the
# two statements can be sent together and the node's rowcount read after.
FINISH_RUN_IF_NODE = (
    update(dag_runs)
    .where(
        _R.run_id == bindparam("rid"),
        exists().where(_N.run_id == bindparam("rid"), _N.node_label == bindparam("label")),
    )
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        sink_outputs_json=None,
    )
)
INSERT_RUN = insert(dag_runs)
INSERT_EDGE = insert(edge_traversals)
# complete_node_with_edges, sent in one exchange (psycopg's pipeline): an edge
# is inserted only if its node exists, so nothing is written for a node that
# was never started (its UPDATE's rowcount, read after, says which).
INSERT_EDGE_IF_NODE = insert(edge_traversals).from_select(
    ["run_id", "upstream_label", "downstream_label", "traversed_at"],
    select(
        bindparam("run_id", type_=_E.run_id.type),
        bindparam("upstream_label", type_=_E.upstream_label.type),
        bindparam("downstream_label", type_=_E.downstream_label.type),
        bindparam("traversed_at", type_=_E.traversed_at.type),
    ).where(exists().where(_N.run_id == bindparam("run_id"), _N.node_label == bindparam("label"))),
)
RUN_EXISTS = select(_R.run_id).where(_R.run_id == bindparam("rid"))
LOAD_IO_RUN = select(
    null().label("node_label"),
    _R.source_inputs_json.label("input_json"),
    _R.sink_outputs_json.label("output_json"),
).where(_R.run_id == bindparam("rid"))
_IO_OF_NODES = select(_N.node_label, _N.input_json, _N.output_json).where(
    _N.run_id == bindparam("rid")
)
LOAD_IO_ALL = union_all(LOAD_IO_RUN, _IO_OF_NODES)
LOAD_IO_SOME = union_all(
    LOAD_IO_RUN, _IO_OF_NODES.where(_N.node_label.in_(bindparam("labels", expanding=True)))
)
GET_NODE_EXECUTIONS = (
    select(node_executions)
    .where(_N.run_id == bindparam("rid"))
    .order_by(_N.started_at, _N.node_label)
)


def _node_status_is(*statuses: NodeStatus) -> ColumnElement[bool]:
    """`status IN (...)` for a fixed set, written as ORs of equalities: no IN
    list to expand per call, and every engine plans it as the IN."""
    return or_(*(_N.status == status.value for status in statuses))


GET_NODE_OUTPUT = select(_N.output_json).where(
    _N.run_id == bindparam("rid"),
    _N.node_label == bindparam("label"),
    _node_status_is(NodeStatus.COMPLETED, NodeStatus.SKIPPED),
)
GET_PENDING_NODES = (
    select(_N.node_label)
    .where(
        _N.run_id == bindparam("rid"),
        _node_status_is(NodeStatus.PENDING, NodeStatus.RUNNING, NodeStatus.FAILED),
    )
    .order_by(_N.started_at, _N.node_label)
)
GET_EDGE_TRAVERSALS = (
    select(edge_traversals)
    .where(_E.run_id == bindparam("rid"))
    .order_by(_E.traversed_at, _E.upstream_label, _E.downstream_label)
)
GET_RUN = select(dag_runs).where(_R.run_id == bindparam("rid"))


@functools.cache
def node_upsert(dialect_name: str) -> Any:
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


class TreeStatements(NamedTuple):
    """Three statements loading a run tree: its runs, their nodes, their edges."""

    runs: Select[Any]
    nodes: Select[Any]
    edges: Select[Any]


def _tree_statements(
    anchor: Select[Any], lateral: bool, changed_since: bool = False
) -> TreeStatements:
    """With `changed_since`, only nodes started or finished after the `since`
    parameter, and edges traversed after it, are read (runs always are)."""
    tree = _tree_cte(anchor, lateral)
    node_filter: list[ColumnElement[bool]] = []
    edge_filter: list[ColumnElement[bool]] = []
    if changed_since:
        since: BindParameter[datetime] = bindparam("since")
        node_filter.append(or_(_N.started_at > since, _N.finished_at > since))
        edge_filter.append(_E.traversed_at > since)
    return TreeStatements(
        runs=_per_tree_run(tree, RUN_SUMMARY, (), ("started_at", "run_id"), lateral),
        nodes=_per_tree_run(tree, NODE_SUMMARY, node_filter, ("started_at", "node_label"), lateral),
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
def anchored_tree(anchor: str, lateral: bool, changed_since: bool = False) -> TreeStatements:
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
def recent_statements(params: frozenset[str], lateral: bool) -> tuple[Select[Any], TreeStatements]:
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


class StatsStatements(NamedTuple):
    """The three SELECTs of `dag_stats`, over the node executions of one
    DAG's runs in a window (each takes the parameters of `stats_statements`)."""

    runs_by_status: Select[Any]
    """(status, runs) per run status present."""
    nodes: Select[Any]
    """(node_label, completed, failed, p50_us, p95_us) per label recorded."""
    last_failures: Select[Any]
    """(node_label, run_id, finished_at, error) of each label's latest failure."""


STATS_PERCENTILES = (50, 95)
"""The percentiles `StatsStatements.nodes` computes, in its column order
(`dag_stats` reads them as p50 and p95)."""

_STATS_FILTERS = frozenset({"nsref", "from_ts", "to_ts"})


@functools.cache
def stats_statements(dialect_name: str, params: frozenset[str]) -> StatsStatements:
    """The statements of `dag_stats` for one dialect and window, built once.

    `params` names the parameters given: `nsref` (always: runs whose
    dag_nsref is exactly it, so no sub-DAG run), and `from_ts` / `to_ts` for
    the window `from_ts <= started_at < to_ts`. Every statement can find
    those runs through the `(dag_nsref, started_at)` index and their nodes
    through the node primary key, which leads with run_id: the work grows
    with the DAG's runs in the window, not with the store.

    Percentiles are nearest-rank, over the durations (in whole
    microseconds, see `_duration_us`) of each label's finished executions:
    ROW_NUMBER() ranks the durations of a label, COUNT() OVER counts them
    (n), and p% is the smallest duration whose rank r has `r * 100 >= p *
    n`, i.e. `r >= ceil(p * n / 100)`, in integers (SQLite before 3.35 has
    no CEIL). Executions not finished rank after every duration.
    """
    if not params >= {"nsref"} or not params <= _STATS_FILTERS:
        raise ValueError(f"stats_statements takes nsref, from_ts, to_ts; got {sorted(params)}")
    in_window = [make() for name, make in _RECENT_FILTERS.items() if name in params]
    runs_by_status = (
        select(_R.status, func.count().label("runs")).where(*in_window).group_by(_R.status)
    )
    nodes_in_window = node_executions.join(dag_runs, _R.run_id == _N.run_id)
    finished = _node_status_is(NodeStatus.COMPLETED, NodeStatus.FAILED)
    timed = (
        select(
            _N.node_label,
            _N.status,
            case((finished, _duration_us(dialect_name, _N.started_at, _N.finished_at))).label("us"),
        )
        .select_from(nodes_in_window)
        .where(*in_window)
        .subquery("timed")
    )
    ranked = select(
        timed.c.node_label,
        timed.c.status,
        timed.c.us,
        func.row_number()
        .over(partition_by=timed.c.node_label, order_by=(timed.c.us.is_(None), timed.c.us))
        .label("nth"),
        func.count(timed.c.us).over(partition_by=timed.c.node_label).label("n_timed"),
    ).subquery("ranked")
    nodes = select(
        ranked.c.node_label,
        func.count(case((ranked.c.status == NodeStatus.COMPLETED.value, 1))).label("completed"),
        func.count(case((ranked.c.status == NodeStatus.FAILED.value, 1))).label("failed"),
        *(
            func.min(case((ranked.c.nth * 100 >= ranked.c.n_timed * p, ranked.c.us))).label(
                f"p{p}_us"
            )
            for p in STATS_PERCENTILES
        ),
    ).group_by(ranked.c.node_label)
    # The latest failure per label is ranked on the key columns alone; its
    # error (a traceback, maybe long) is read for the winners only.
    failures = (
        select(
            _N.run_id,
            _N.node_label,
            _N.finished_at,
            func.row_number()
            .over(partition_by=_N.node_label, order_by=(_N.finished_at.desc(), _N.run_id.desc()))
            .label("nth"),
        )
        .select_from(nodes_in_window)
        .where(*in_window, _N.status == NodeStatus.FAILED.value, _N.finished_at.is_not(None))
        .subquery("failures")
    )
    last_failures = (
        select(failures.c.node_label, failures.c.run_id, failures.c.finished_at, _N.error)
        .select_from(
            failures.join(
                node_executions,
                and_(_N.run_id == failures.c.run_id, _N.node_label == failures.c.node_label),
            )
        )
        .where(failures.c.nth == 1)
    )
    return StatsStatements(runs_by_status, nodes, last_failures)


def _duration_us(
    dialect_name: str, started: ColumnElement[datetime], finished: ColumnElement[datetime]
) -> ColumnElement[int]:
    """`finished - started` in whole microseconds, exact on every engine
    (NULL if either is NULL). Integers rank and compare exactly; the store
    turns them into seconds."""
    if dialect_name == "postgresql":
        # EXTRACT(EPOCH FROM interval) is an exact numeric (PostgreSQL 14+).
        return cast(extract("epoch", finished - started) * 1_000_000, BigInteger)
    if dialect_name in ("mysql", "mariadb"):
        return type_coerce(
            func.timestampdiff(literal_column("MICROSECOND"), started, finished), BigInteger
        )
    # SQLite: julianday() is a double, off by up to ~50 µs at today's dates;
    # the text itself ("YYYY-MM-DD HH:MM:SS.ffffff", UTC) gives the exact value.
    return _sqlite_epoch_us(finished) - _sqlite_epoch_us(started)


def _sqlite_epoch_us(column: ColumnElement[datetime]) -> ColumnElement[int]:
    """A SQLite `UTCDateTime` as microseconds since the epoch: the whole
    seconds parsed by strftime('%s') from the text without its fraction (so
    nothing is rounded), plus the fraction's digits (padded: "…SS" or
    "…SS.5" read as 0 and 500000 µs)."""
    stored = type_coerce(column, String())
    seconds = cast(func.strftime(literal("%s"), func.substr(stored, 1, 19)), Integer)
    fraction = cast(func.substr(stored.concat(literal("000000")), 21, 6), Integer)
    return type_coerce(seconds * 1_000_000 + fraction, BigInteger)


@functools.cache
def column_keys(statement: Select[Any]) -> tuple[str, ...]:
    """The keys of a SELECT's columns, as the original's dicts name them."""
    return tuple(str(column.key) for column in statement.selected_columns)


@functools.cache
def timestamp_columns(statement: Select[Any]) -> tuple[int, ...]:
    """The positions of a SELECT's timestamp columns."""
    return tuple(
        i
        for i, column in enumerate(statement.selected_columns)
        if getattr(column.type, "python_type", None) is datetime
        or isinstance(column.type, UTCDateTime)
    )
