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
    Select,
    and_,
    bindparam,
    exists,
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
