"""Store maintenance: prune old run trees, copy a store to another database.

Both work in bounded batches. Each batch is one short transaction through the
store's unit of work, built from SQLAlchemy Core statements whose parameter
count never exceeds the batch size (a few times it, for composite keys), so
neither ever holds a long lock nor trips an engine's parameter limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exc,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)

from dag_provenance import orm, payload_limits, validate
from dag_provenance.dberrors import translating
from dag_provenance.errors import (
    DatabaseError,
    InvalidInputError,
    PayloadTooLargeError,
    SameStoreError,
    TargetNotEmptyError,
)
from dag_provenance.execution import Executor
from dag_provenance.operations import Operation, OperationContext, Read, Write
from dag_provenance.requests import All, Execute, First, Work
from dag_provenance.runner import drive, run_sync
from dag_provenance.status import ACTIVE_STATUSES, FINISHED_STATUSES

if TYPE_CHECKING:
    from dag_provenance.repository import DagProvenance

dag_runs = orm.dag_runs
node_executions = orm.node_executions
edge_traversals = orm.edge_traversals

MAX_BATCH_SIZE = 10_000

_R = dag_runs.c
_N = node_executions.c
_E = edge_traversals.c


class Counts(BaseModel):
    """Row counts per table."""

    runs: int = 0
    node_executions: int = 0
    edge_traversals: int = 0

    @property
    def total(self) -> int:
        return self.runs + self.node_executions + self.edge_traversals


class PruneResult(Counts):
    """What `prune` deleted (or, with `dry_run`, would delete)."""

    dry_run: bool = False


class CopyResult(Counts):
    """Rows `copy_store` inserted into the target; `already_present` counts the
    source rows an earlier (interrupted) copy had already put there."""

    already_present: Counts = Counts()


PruneProgress = Callable[[PruneResult], None]
"""Called after each pruned batch with the running totals."""

CopyProgress = Callable[[str, int, int], None]
"""Called as `(phase, done, total)` after each copied batch; phases are
`runs`, `node_executions`, `edge_traversals`, then `parent links`."""


def _batch_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_BATCH_SIZE:
        raise InvalidInputError(
            f"batch_size must be an int from 1 to {MAX_BATCH_SIZE}, got {value!r}"
        )
    return value


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Prune


def _prunable_statuses(statuses: Iterable[str] | None) -> list[str]:
    if statuses is None:
        return [status.value for status in FINISHED_STATUSES]
    wanted = validate.run_statuses(statuses)
    active = sorted(set(wanted) & set(ACTIVE_STATUSES))
    if active:
        raise InvalidInputError(
            f"prune deletes finished runs only; {', '.join(active)} runs are never pruned"
        )
    if not wanted:
        raise InvalidInputError("statuses must name at least one finished status")
    return sorted(set(wanted))


def _prunable_roots(older_than: datetime, statuses: list[str]) -> list[ColumnElement[bool]]:
    """Top-level runs that finished with one of `statuses` and started before `older_than`."""
    return [
        _R.parent_run_id.is_(None),
        _R.status.in_(statuses),
        _R.started_at < older_than,
    ]


def _after(key: Sequence[Column[Any]], cursor: Sequence[Any]) -> ColumnElement[bool]:
    """Keyset condition `key > cursor` in the key's order, written out as
    ORs of equalities (every engine uses the index for this form)."""
    head, *rest = key
    if not rest:
        later: ColumnElement[bool] = head > cursor[0]
        return later
    return or_(head > cursor[0], and_(head == cursor[0], _after(rest, cursor[1:])))


def _at_or_before(key: Sequence[Column[Any]], cursor: Sequence[Any]) -> ColumnElement[bool]:
    """Keyset condition `key <= cursor`."""
    head, *rest = key
    if not rest:
        not_later: ColumnElement[bool] = head <= cursor[0]
        return not_later
    return or_(head < cursor[0], and_(head == cursor[0], _at_or_before(rest, cursor[1:])))


def _page_tree(page: list[ColumnElement[bool]]) -> Select[Any]:
    """Every run of the trees whose roots match `page`, as (run_id, root_id,
    depth, status).

    Traversal: start from the roots (depth 0), then repeatedly add each run
    whose parent is already in the set, one level deeper. A run reachable
    from a root with no parent has an ancestor chain ending at that root, so
    no cycle can be reached and UNION ALL terminates.
    """
    anchor = select(
        _R.run_id.label("run_id"),
        _R.run_id.label("root_id"),
        literal(0).label("depth"),
    ).where(*page)
    tree = anchor.cte("prune_tree", recursive=True)
    child = select(_R.run_id, tree.c.root_id, tree.c.depth + 1).join(
        tree, _R.parent_run_id == tree.c.run_id
    )
    tree = tree.union_all(child)
    return (
        select(tree.c.run_id, tree.c.root_id, tree.c.depth, _R.status)
        .join(dag_runs, _R.run_id == tree.c.run_id)
        .order_by(tree.c.depth.desc(), tree.c.run_id)
    )


@translating
@translating
def prune(
    store: DagProvenance,
    older_than: datetime,
    statuses: Iterable[str] | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: PruneProgress | None = None,
) -> PruneResult:
    """Delete finished run trees that started before `older_than`.

    Only whole trees go: a top-level run (no parent) whose status is one of
    `statuses` (default: completed, failed, cancelled) is deleted with all its
    descendant runs, node executions and edge traversals, and only when no
    run of its tree is running or paused. A sub-DAG run is never pruned apart
    from its tree. With `dry_run` nothing is deleted and the counts say what
    would be.

    Works through the roots `batch_size` at a time, oldest first, each batch
    its own transaction (its roots locked first, so a run restarted
    meanwhile is seen as running); every statement binds at most
    `batch_size` ids. `progress` is called with the running totals after
    each batch.
    """
    return run_sync(store, pruning(older_than, statuses, dry_run, batch_size, progress))


def prune_operation(
    self: OperationContext,
    older_than: datetime,
    statuses: Iterable[str] | None = None,
    dry_run: bool = False,
) -> Operation[PruneResult]:
    """Delete finished run trees started before `older_than` (each with its
    descendant runs, nodes and edges), in bounded batches; never a tree
    holding a running or paused run. Returns what was (or would be) deleted."""
    return (yield from pruning(older_than, statuses, dry_run))


def pruning(
    older_than: datetime,
    statuses: Iterable[str] | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: PruneProgress | None = None,
) -> Operation[PruneResult]:
    """`prune` as an operation (see `operations`), for either store."""
    older_than = validate.aware_datetime("older_than", older_than)
    wanted = _prunable_statuses(statuses)
    size = _batch_size(batch_size)
    totals = PruneResult(dry_run=dry_run)
    roots = _prunable_roots(older_than, wanted)
    key = (_R.started_at, _R.run_id)
    cursor: tuple[datetime, str] | None = None

    def one_page() -> Work[tuple[tuple[datetime, str], Counts] | None]:
        page_stmt = select(*key).where(*roots).order_by(*key).limit(size)
        if cursor is not None:
            page_stmt = page_stmt.where(_after(key, cursor))
        if not dry_run:
            page_stmt = page_stmt.with_for_update()
        page: list[tuple[Any, ...]] = yield All(page_stmt)
        if not page:
            return None
        last = (page[-1][0], page[-1][1])
        in_page = [*roots, _at_or_before(key, last)]
        if cursor is not None:
            in_page.append(_after(key, cursor))
        doomed = _finished_trees((yield All(_page_tree(in_page))))
        counted = yield from (_count if dry_run else _delete)(doomed, size)
        return last, counted

    while True:
        done = yield (Read(one_page, snapshot=True) if dry_run else Write(lambda _d: one_page()))
        if done is None:
            break
        cursor, batch = done
        totals = PruneResult(
            runs=totals.runs + batch.runs,
            node_executions=totals.node_executions + batch.node_executions,
            edge_traversals=totals.edge_traversals + batch.edge_traversals,
            dry_run=dry_run,
        )
        if progress is not None:
            progress(totals)
    return totals


def _finished_trees(tree_rows: Sequence[tuple[Any, ...]]) -> list[list[str]]:
    """Run ids of the trees none of whose runs is active, one list per depth,
    deepest first (rows of `_page_tree`)."""
    blocked = {root_id for _, root_id, _, status in tree_rows if status in ACTIVE_STATUSES}
    levels: dict[int, list[str]] = {}
    for run_id, root_id, depth, _ in tree_rows:
        if root_id not in blocked:
            levels.setdefault(depth, []).append(run_id)
    return [levels[depth] for depth in sorted(levels, reverse=True)]


def _count(levels: list[list[str]], size: int) -> Work[Counts]:
    run_ids = [run_id for level in levels for run_id in level]
    counts = Counts(runs=len(run_ids))
    for chunk in _chunks(run_ids, size):
        for table, counter in (
            (node_executions, "node_executions"),
            (edge_traversals, "edge_traversals"),
        ):
            row = yield First(
                select(func.count()).select_from(table).where(table.c.run_id.in_(chunk))
            )
            setattr(counts, counter, getattr(counts, counter) + (int(row[0]) if row else 0))
    return counts


def _all(statement: Select[Any], ex: Executor) -> list[tuple[Any, ...]]:
    return ex.all(statement)


def _many(statement: Any, rows: list[dict[str, Any]], ex: Executor) -> None:
    ex.many(statement, rows)


def _scalar(ex: Executor, statement: Select[Any], params: dict[str, Any] | None = None) -> int:
    row = ex.first(statement, params)
    return 0 if row is None else int(row[0])


def _delete(levels: list[list[str]], size: int) -> Work[Counts]:
    """Delete the runs with their nodes and edges, one depth at a time from
    the deepest, so children go before parents whether or not the foreign
    keys cascade (and no row is deleted by a cascade, uncounted)."""
    run_ids = [run_id for level in levels for run_id in level]
    counts = Counts()
    for chunk in _chunks(run_ids, size):
        edges = yield Execute(delete(edge_traversals).where(_E.run_id.in_(chunk)))
        counts.edge_traversals += edges.rowcount
        nodes = yield Execute(delete(node_executions).where(_N.run_id.in_(chunk)))
        counts.node_executions += nodes.rowcount
    try:
        for level in levels:
            for chunk in _chunks(level, size):
                runs = yield Execute(delete(dag_runs).where(_R.run_id.in_(chunk)))
                counts.runs += runs.rowcount
    except exc.IntegrityError as e:
        raise DatabaseError(
            "a run was added under a run being pruned; nothing of this batch was deleted"
        ) from e
    return counts


# Copy


@dataclass(frozen=True)
class _TableCopy:
    """How one table is paged and compared: its counter name and primary key."""

    name: str
    table: Table
    key: tuple[Column[Any], ...]

    def row(self, r: Sequence[Any]) -> dict[str, Any]:
        """A row of `page` or `lookup` (all the table's columns) by column name."""
        row = dict(zip(self.table.c.keys(), r, strict=True))
        for flag in ("is_source", "is_sink"):
            if flag in row:
                row[flag] = bool(row[flag])
        return row

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c.name] for c in self.key)

    def page(self, cursor: tuple[Any, ...] | None, size: int) -> Select[Any]:
        stmt = select(*self.table.c).order_by(*self.key).limit(size)
        return stmt if cursor is None else stmt.where(_after(self.key, cursor))

    def lookup(self, keys: list[tuple[Any, ...]]) -> Select[Any]:
        if len(self.key) == 1:
            return select(*self.table.c).where(self.key[0].in_([k[0] for k in keys]))
        return select(*self.table.c).where(tuple_(*self.key).in_(keys))


_RUNS = _TableCopy("runs", dag_runs, (_R.run_id,))
_NODES = _TableCopy("node_executions", node_executions, (_N.run_id, _N.node_label))
_EDGES = _TableCopy(
    "edge_traversals", edge_traversals, (_E.run_id, _E.upstream_label, _E.downstream_label)
)
_TABLES = (_RUNS, _NODES, _EDGES)

_LINK_PARENT = (
    update(dag_runs)
    .where(_R.run_id == bindparam("rid"), _R.parent_run_id.is_(None))
    .values(parent_run_id=bindparam("parent"))
)


def _same_row(spec: _TableCopy, source: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether a target row is the source row as copied. A run copied but not
    yet linked to its parent (an interrupted copy) counts as the same."""
    if spec is _RUNS and target["parent_run_id"] is None:
        target = {**target, "parent_run_id": source["parent_run_id"]}
    return source == target


def _describe(spec: _TableCopy, key: tuple[Any, ...]) -> str:
    names = {"runs": "run", "node_executions": "node execution", "edge_traversals": "edge"}
    return f"{names[spec.name]} {' / '.join(repr(k) for k in key)}"


def _url(store: DagProvenance) -> str:
    return store.engine.url.render_as_string(hide_password=True)


@translating
def copy_store(
    source: DagProvenance,
    target: DagProvenance,
    batch_size: int = 1000,
    progress: CopyProgress | None = None,
) -> CopyResult:
    """Copy every run, node execution and edge traversal of `source` into
    `target`, preserving every value.

    The target must be empty, or hold only rows an earlier, interrupted copy
    of this source put there (identical to the source's): then those are
    skipped and the copy finishes where it stopped. Any other row makes it
    refuse with `TargetNotEmptyError` before writing anything.

    Tables are read in primary-key order, `batch_size` rows per transaction
    on each side. Runs are inserted without their parent and linked to it in
    a last pass, so no engine ever sees a child before its parent. Copy a
    store nobody is writing to: rows changed during the copy are not seen.
    """
    size = _batch_size(batch_size)
    if source is target or _same_database(source, target):
        raise SameStoreError(f"source and target are the same database ({_url(source)})")
    totals = {spec.name: _count_rows(source, spec) for spec in _TABLES}
    for spec in _TABLES:
        _check_target_table(source, target, spec, size)
    copied: dict[str, int] = {}
    present: dict[str, int] = {}
    for spec in _TABLES:
        copied[spec.name], present[spec.name] = _copy_table(
            source, target, spec, size, totals[spec.name], progress
        )
    _link_parents(source, target, size, progress)
    return CopyResult(**copied, already_present=Counts(**present))


def _same_database(source: DagProvenance, target: DagProvenance) -> bool:
    a, b = source.engine.url, target.engine.url
    return a.render_as_string(hide_password=False) == b.render_as_string(hide_password=False)


def _count_rows(store: DagProvenance, spec: _TableCopy) -> int:
    return store.unit_of_work.read(
        lambda ex: _scalar(ex, select(func.count()).select_from(spec.table))
    )


def _pages(store: DagProvenance, spec: _TableCopy, size: int) -> Iterator[list[dict[str, Any]]]:
    """The table's rows in key order, one short read transaction per page."""
    cursor: tuple[Any, ...] | None = None
    while True:
        page = spec.page(cursor, size)
        rows = [spec.row(r) for r in store.unit_of_work.read(partial(_all, page))]
        if not rows:
            return
        yield rows
        cursor = spec.key_of(rows[-1])


def _lookup(
    ex: Executor, *, spec: _TableCopy, keys: list[tuple[Any, ...]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    found = (spec.row(r) for r in ex.all(spec.lookup(keys)))
    return {spec.key_of(row): row for row in found}


def _check_target_table(
    source: DagProvenance, target: DagProvenance, spec: _TableCopy, size: int
) -> None:
    """Refuse if the target holds a row of `spec`'s table that the source does
    not hold identically."""
    for page in _pages(target, spec, size):
        keys = [spec.key_of(row) for row in page]
        originals = source.unit_of_work.read(partial(_lookup, spec=spec, keys=keys))
        for key, row in zip(keys, page, strict=True):
            original = originals.get(key)
            if original is None or not _same_row(spec, original, row):
                what = "is not in" if original is None else "differs from the one in"
                raise TargetNotEmptyError(
                    f"the target {_url(target)} is not empty: its {_describe(spec, key)} "
                    f"{what} the source; copy into an empty database"
                )


def _copy_table(
    source: DagProvenance,
    target: DagProvenance,
    spec: _TableCopy,
    size: int,
    total: int,
    progress: CopyProgress | None,
) -> tuple[int, int]:
    """Insert the source rows the target lacks; returns (inserted, already present)."""
    inserted = present = 0
    for page in _pages(source, spec, size):
        keys = [spec.key_of(row) for row in page]
        try:
            missing = _insert_missing(target, spec, keys, page)
        except exc.IntegrityError as e:
            raise TargetNotEmptyError(
                f"the target {_url(target)} changed during the copy: a {spec.name} row "
                "was written there by someone else"
            ) from e
        inserted += len(missing)
        present += len(page) - len(missing)
        if progress is not None:
            progress(spec.name, inserted + present, total)
    return inserted, present


def _insert_missing(
    target: DagProvenance, spec: _TableCopy, keys: list[tuple[Any, ...]], page: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert the page's rows the target lacks (runs without their parent);
    returns them. Refuses if the target holds a row differing from the source."""

    def work(ex: Executor) -> list[dict[str, Any]]:
        existing = _lookup(ex, spec=spec, keys=keys)
        missing = []
        for key, row in zip(keys, page, strict=True):
            copy = existing.get(key)
            if copy is None:
                missing.append({**row, "parent_run_id": None} if spec is _RUNS else row)
            elif not _same_row(spec, row, copy):
                raise TargetNotEmptyError(
                    f"the target {_url(target)} changed during the copy: its "
                    f"{_describe(spec, key)} differs from the source"
                )
        for row in missing:
            _check_row_fits(ex, spec, row)
        if missing:
            ex.many(insert(spec.table), missing)
        return missing

    return target.unit_of_work.write(work) or []


_PAYLOAD_COLUMNS = ("source_inputs_json", "sink_outputs_json", "input_json", "output_json", "error")


def _check_row_fits(ex: Executor, spec: _TableCopy, row: dict[str, Any]) -> None:
    """Refuse a row whose payloads the target cannot take in one statement."""
    try:
        drive(payload_limits.checking(ex, [(c, row[c]) for c in _PAYLOAD_COLUMNS if c in row]), ex)
    except PayloadTooLargeError as e:
        raise PayloadTooLargeError(
            f"cannot copy {_describe(spec, spec.key_of(row))}: {e}", size=e.size, limit=e.limit
        ) from e


def _link_parents(
    source: DagProvenance, target: DagProvenance, size: int, progress: CopyProgress | None
) -> None:
    """Set each copied run's parent_run_id, now that every run is in the target."""
    linked = select(func.count()).select_from(dag_runs).where(_R.parent_run_id.is_not(None))
    total = source.unit_of_work.read(lambda ex: _scalar(ex, linked))
    done = 0
    cursor: str | None = None
    while True:
        stmt = (
            select(_R.run_id, _R.parent_run_id)
            .where(_R.parent_run_id.is_not(None))
            .order_by(_R.run_id)
            .limit(size)
        )
        if cursor is not None:
            stmt = stmt.where(_R.run_id > cursor)
        found = source.unit_of_work.read(partial(_all, stmt))
        links = [{"rid": run_id, "parent": parent} for run_id, parent in found]
        if not links:
            return
        target.unit_of_work.write(partial(_many, _LINK_PARENT, links))
        cursor = links[-1]["rid"]
        done += len(links)
        if progress is not None:
            progress("parent links", done, total)


__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "CopyProgress",
    "CopyResult",
    "Counts",
    "PruneProgress",
    "PruneResult",
    "SameStoreError",
    "TargetNotEmptyError",
    "copy_store",
    "prune",
]
