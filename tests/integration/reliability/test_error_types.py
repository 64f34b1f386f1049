"""Every error the library raises is one of its own classes, keeps the
exception behind it as `__cause__`, and is documented in the README."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import exc

import dag_provenance.errors
from dag_provenance import (
    DagProvenance,
    DatabaseUnavailableError,
    DuplicateEdgeError,
    DuplicateRunError,
    InvalidInputError,
    ProvenanceError,
    RunNotFoundError,
)

pytestmark = pytest.mark.both_stores

README = Path(__file__).resolve().parents[3] / "README.md"

Call = Callable[[DagProvenance, str], object]

# Calls refused by the database itself (a constraint), not by the input checks.
REFUSED_BY_THE_DATABASE: dict[str, tuple[type[ProvenanceError], Call]] = {
    "duplicate run": (DuplicateRunError, lambda s, r: s.create_run(r, "ns", {})),
    "unknown parent": (
        RunNotFoundError,
        lambda s, r: s.create_run(r + "-child", "ns", {}, parent_run_id=r + "-missing"),
    ),
    "node of an unknown run": (
        RunNotFoundError,
        lambda s, r: s.record_node_start(r + "-missing", "a", "{}"),
    ),
    "skipped node of an unknown run": (
        RunNotFoundError,
        lambda s, r: s.record_node_skipped(r + "-missing", "a", "1"),
    ),
    "duplicate edge": (
        DuplicateEdgeError,
        lambda s, r: s.complete_node_with_edges(r, "a", "1", [("a", "b")]),
    ),
    "duplicate edge in one call": (
        DuplicateEdgeError,
        lambda s, r: s.complete_node_with_edges(r, "c", "1", [("c", "d"), ("c", "d")]),
    ),
}


@pytest.mark.parametrize("case", REFUSED_BY_THE_DATABASE, ids=str)
def test_an_error_from_the_database_is_the_librarys_with_the_drivers_error_as_cause(
    provenance: DagProvenance, case: str
) -> None:
    expected, call = REFUSED_BY_THE_DATABASE[case]
    run_id = f"chain-{uuid.uuid4().hex[:8]}"
    provenance.create_run(run_id, "ns", {})
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
    provenance.record_node_start(run_id, "c", "{}")

    with pytest.raises(ProvenanceError) as raised:
        call(provenance, run_id)

    assert type(raised.value) is expected
    assert isinstance(raised.value.__cause__, exc.DBAPIError), repr(raised.value.__cause__)
    assert raised.value.__cause__.orig is not None


def test_an_unreachable_database_is_the_librarys_error_with_the_drivers_error_as_cause(
    engine_name: str, empty_db_url: str
) -> None:
    target = (
        "postgresql+psycopg://postgres@127.0.0.1:1/none"
        if engine_name == "postgresql"
        else "mysql+pymysql://root@127.0.0.1:1/none"
        if engine_name == "mysql"
        else "/proc/no-such-folder/provenance.db"
    )
    with pytest.raises(DatabaseUnavailableError) as raised:
        DagProvenance(target)

    # the driver's error, or for a SQLite folder that cannot be made, the OSError
    assert isinstance(raised.value.__cause__, exc.DBAPIError | OSError)


def test_text_that_is_not_valid_utf8_is_refused_with_the_encoding_error_as_cause(
    provenance: DagProvenance,
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        provenance.create_run("lone \udc80 surrogate", "ns", {})

    assert isinstance(raised.value.__cause__, UnicodeEncodeError)


def library_errors() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(dag_provenance.errors, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == dag_provenance.errors.__name__
    ]


def test_every_error_class_derives_from_provenance_error_and_is_exported() -> None:
    errors = library_errors()

    assert ProvenanceError in errors
    assert all(issubclass(cls, ProvenanceError) for cls in errors)
    assert {cls.__name__ for cls in errors} <= set(dag_provenance.__all__)


def test_every_error_class_is_documented_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("### Errors") :]

    undocumented = [cls.__name__ for cls in library_errors() if f"`{cls.__name__}`" not in section]

    assert undocumented == []
