"""Run ids as people read and type them: short unique prefixes, as git abbreviates commits.

Two promises, both over every run id in the store:

- `resolve_run_id(store, ref)` names one run: the run whose id is exactly `ref`
  if there is one (even when `ref` also starts longer ids), else the only run
  whose id starts with `ref`. No such run raises `RunNotFoundError`; several
  raise `AmbiguousRunIdError`, which names a few of them and how many there are.
- `short_run_ids(store, run_ids)` gives each id its shortest prefix of at least
  `SHORT_ID_MIN_LENGTH` characters that starts no other run id in the store; an
  id that short or shorter, or one that starts another id, is given whole. Fed
  back to `resolve_run_id`, a short id names its run for as long as no run
  whose id also starts with it is created (git's short ids age the same way).

Prefixes are compared exactly on every engine: case counts, and `%`, `_` and
every other character stand for themselves.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select

from dag_provenance import validate
from dag_provenance.dberrors import translating
from dag_provenance.errors import AmbiguousRunIdError, InvalidInputError, RunNotFoundError
from dag_provenance.execution import Executor
from dag_provenance.orm import dag_runs

if TYPE_CHECKING:
    from dag_provenance.repository import DagProvenance

SHORT_ID_MIN_LENGTH = 8
"""No short id is shorter than this (a UUID's first group), so the short ids
of a listing mostly line up, and stay unique as the store grows."""

AMBIGUOUS_IDS_SHOWN = 5

# Engines whose run id index sorts ids by code point, so that the ids starting
# with a prefix are one range of it: SQLite compares text as UTF-8 bytes (its
# BINARY collation), MariaDB/MySQL ids use utf8mb4_nopad_bin (types.Identifier).
# PostgreSQL sorts by the database's collation, where they need not be.
_SORTED_BY_CODE_POINT = frozenset({"sqlite", "mysql", "mariadb"})

_LIKE_ESCAPE = "/"

_R = dag_runs.c
_EXACT = select(_R.run_id).where(_R.run_id == bindparam("ref"))


@translating
def resolve_run_id(store: DagProvenance, ref: str) -> str:
    """The id of the run `ref` names: an exact id, else a unique prefix of one.

    Raises `RunNotFoundError` when no run id is or starts with `ref` (an empty
    `ref` names no run), `AmbiguousRunIdError` when several start with it.
    """
    ref = validate.text("run_id", ref)
    dialect_name = store.engine.dialect.name

    # The store's own read unit: one snapshot, inside the caller's batch if any.
    def work(ex: Executor) -> tuple[bool, list[tuple[Any, ...]]]:
        if ex.first(_EXACT, {"ref": ref}) is not None:
            return True, []
        if not ref:
            return False, []
        return False, ex.all(_matching(dialect_name, _has_upper(ref)), _prefix_params(ref))

    exact, rows = store.unit_of_work.read(work, snapshot=True)
    if exact:
        return ref
    if not rows:
        raise RunNotFoundError(ref)
    count = int(rows[0][1])
    if count > 1:
        raise AmbiguousRunIdError(ref, [str(row[0]) for row in rows], count)
    return str(rows[0][0])


@translating
def short_run_ids(
    store: DagProvenance, run_ids: Iterable[str], min_length: int = SHORT_ID_MIN_LENGTH
) -> dict[str, str]:
    """Each of `run_ids` -> its shortest prefix of at least `min_length`
    characters that starts no other run id in the store (the module's rule).

    One read of the ids starting with each distinct `min_length`-character
    prefix: an index range on SQLite and MariaDB, usually just the id itself.
    """
    if min_length < 1:
        raise InvalidInputError(f"min_length must be at least 1, got {min_length}")
    wanted = {validate.text("run_id", rid) for rid in run_ids}
    heads = sorted({rid[:min_length] for rid in wanted if len(rid) > min_length})
    dialect_name = store.engine.dialect.name
    sharing: dict[str, list[str]] = {}
    if heads:

        def work(ex: Executor) -> None:
            for head in heads:
                stmt = _starting_with(dialect_name, _has_upper(head))
                sharing[head] = [row[0] for row in ex.all(stmt, _prefix_params(head))]

        store.unit_of_work.read(work, snapshot=len(heads) > 1)
    return {
        rid: _shortest_unique_prefix(rid, sharing.get(rid[:min_length], ()), min_length)
        for rid in wanted
    }


# Statements, built once per engine kind with bound parameters only


@functools.cache
def _starting_with(dialect_name: str, has_upper: bool) -> Select[Any]:
    """Every run id that starts with the prefix in `_prefix_params`."""
    return select(_R.run_id).where(_prefix_match(dialect_name, has_upper))


@functools.cache
def _matching(dialect_name: str, has_upper: bool) -> Select[Any]:
    """The first few run ids that start with the prefix, and how many do."""
    return (
        select(_R.run_id, func.count().over())
        .where(_prefix_match(dialect_name, has_upper))
        .order_by(_R.run_id)
        .limit(AMBIGUOUS_IDS_SHOWN)
    )


def _prefix_match(dialect_name: str, has_upper: bool) -> ColumnElement[bool]:
    """Run ids that start with `:prefix`, exactly.

    LIKE `:pattern` (the prefix with `%`, `_` and the escape character escaped,
    as `startswith(..., autoescape=True)` does) and equal leading characters:
    SQLite's LIKE folds ASCII case, the equality is exact on every engine. On
    engines whose index sorts ids by code point, the range of ids from the
    prefix up to `:upper` too, so the index finds them (SQLite's LIKE cannot
    use it; MariaDB's could, but the range is as cheap and as exact).
    """
    exact = and_(
        _R.run_id.like(bindparam("pattern"), escape=_LIKE_ESCAPE),
        func.substr(_R.run_id, 1, bindparam("length")) == bindparam("prefix"),
    )
    if dialect_name not in _SORTED_BY_CODE_POINT:
        return exact
    bounds = [_R.run_id >= bindparam("prefix")]
    if has_upper:
        bounds.append(_R.run_id < bindparam("upper"))
    return and_(*bounds, exact)


def _prefix_params(prefix: str) -> dict[str, Any]:
    escaped = "".join(_LIKE_ESCAPE + c if c in f"%_{_LIKE_ESCAPE}" else c for c in prefix)
    return {
        "prefix": prefix,
        "pattern": escaped + "%",
        "length": len(prefix),
        "upper": _after_every_extension(prefix),
    }


def _has_upper(prefix: str) -> bool:
    return _after_every_extension(prefix) is not None


def _after_every_extension(prefix: str) -> str | None:
    """The least string above, in code point order, every string that starts
    with `prefix`; None if none is (the prefix is all U+10FFFF)."""
    while prefix:
        last = ord(prefix[-1])
        if last < sys.maxunicode:
            # Surrogates are not characters: the one after U+D7FF is U+E000.
            following = 0xE000 if last == 0xD7FF else last + 1
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


# The rule


def _shortest_unique_prefix(run_id: str, others: Iterable[str], min_length: int) -> str:
    """The shortest prefix of `run_id`, at least `min_length` long, that starts
    none of `others` (the whole id if every prefix starts one of them)."""
    shared = max((_common_prefix_length(run_id, o) for o in others if o != run_id), default=0)
    return run_id[: max(min_length, shared + 1)]


def _common_prefix_length(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
