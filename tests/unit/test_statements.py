"""The store's prebuilt statements compile on every dialect, bind every value
as a parameter, and take each engine's own form where they differ. Pure: no
database is opened."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from dag_provenance import statements

DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
    "mysql": mysql.dialect(),
}
FIXED = {
    name: value
    for name, value in vars(statements).items()
    if name.isupper() and isinstance(value, ClauseElement)
}
RECENT_FILTERS = ["status", "statuses", "nsref", "from_ts", "to_ts", "cursor_ts"]


def compiled(statement: Any, dialect: str) -> str:
    return str(statement.compile(dialect=DIALECTS[dialect]))


def tree_statements(dialect: str) -> dict[str, Any]:
    lateral = dialect == "postgresql"
    trees: dict[str, Any] = {
        f"{anchor}{'-changes' if changes else ''}": statements.anchored_tree(
            anchor, lateral, changes
        )
        for anchor, changes in itertools.product(("run", "children"), (False, True))
    }
    for size in range(len(RECENT_FILTERS) + 1):
        for combo in itertools.combinations(RECENT_FILTERS, size):
            roots, tree = statements.recent_statements(frozenset(combo), lateral)
            trees["recent:" + ",".join(combo)] = tree
            trees["recent roots:" + ",".join(combo)] = roots
    flat: dict[str, Any] = {}
    for name, item in trees.items():
        if isinstance(item, statements.TreeStatements):
            flat.update({f"{name}.{part}": getattr(item, part) for part in item._fields})
        else:
            flat[name] = item
    return flat


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_statement_compiles_with_its_values_bound_as_parameters(dialect: str) -> None:
    everything = {**FIXED, **tree_statements(dialect), "upsert": statements.node_upsert(dialect)}
    assert len(everything) > 100
    for name, statement in everything.items():
        sql = compiled(statement, dialect)
        # Values come in through bound parameters; only the statuses allowed
        # by the schema and the OFFSET 0 fence are written into the SQL.
        assert "'" not in sql.replace("'completed'", "").replace("'skipped'", "").replace(
            "'pending'", ""
        ).replace("'running'", "").replace("'failed'", ""), name


def test_the_node_upsert_takes_each_engine_s_form() -> None:
    assert "ON CONFLICT (run_id, node_label) DO UPDATE" in compiled(
        statements.node_upsert("sqlite"), "sqlite"
    )
    assert "ON CONFLICT (run_id, node_label) DO UPDATE" in compiled(
        statements.node_upsert("postgresql"), "postgresql"
    )
    assert "ON DUPLICATE KEY UPDATE" in compiled(statements.node_upsert("mysql"), "mysql")


def test_run_trees_use_lateral_lookups_on_postgresql_only() -> None:
    for dialect in DIALECTS:
        sql = compiled(statements.anchored_tree("run", dialect == "postgresql").nodes, dialect)
        assert "WITH RECURSIVE" in sql
        assert ("LATERAL" in sql) == (dialect == "postgresql"), dialect


def test_tree_statements_are_built_once_per_combination() -> None:
    assert statements.anchored_tree("run", False) is statements.anchored_tree("run", False)
    a = statements.recent_statements(frozenset({"status", "lim"}), True)
    assert a is statements.recent_statements(frozenset({"lim", "status"}), True)
