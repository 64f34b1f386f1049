"""Statement requests: what a unit of work's statements ask of an executor.

A work (`Work`) is a generator that yields these and receives the answers:
`First` a row or None, `All` a list of rows, `Execute` an `Outcome`, `Many`
nothing, `AllOf` a list of row lists. The sync and async runners (`runner`)
answer them with their executor, so code written as a work runs on both.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from dag_provenance.execution import Params

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class All:
    """Every row of a SELECT (a list of tuples)."""

    statement: Any
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class First:
    """The first row of a SELECT, or None."""

    statement: Any
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class Execute:
    """An INSERT/UPDATE/DELETE; answered with its `Outcome`."""

    statement: Any
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class Many:
    """A statement once per parameter set."""

    statement: Any
    rows: Sequence[Params]


@dataclass(frozen=True, slots=True)
class AllOf:
    """The rows of several SELECTs, sent together where the driver can."""

    queries: Sequence[tuple[Any, Params]]


StatementRequest: TypeAlias = All | First | Execute | Many | AllOf
STATEMENT_REQUESTS = (All, First, Execute, Many, AllOf)
Work: TypeAlias = Generator[StatementRequest, Any, T]
"""A unit's statements: requests out, their answers in, the unit's result returned."""


__all__ = [
    "STATEMENT_REQUESTS",
    "All",
    "AllOf",
    "Execute",
    "First",
    "Many",
    "StatementRequest",
    "Work",
]
