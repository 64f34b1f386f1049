"""Database failures as the library's own errors: the one place where an
exception from SQLAlchemy, a driver or Alembic becomes a `ProvenanceError`.

The repository, the migrations and maintenance all go through `translated()`
(or the `translating` decorator on their public functions), so no caller ever
sees a raw `sqlalchemy.exc.OperationalError`. The exception translated is
chained as `__cause__`; for a database error it is SQLAlchemy's `DBAPIError`,
whose own `__cause__` (and `.orig`) is the driver's exception.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import ParamSpec, TypeVar

from sqlalchemy import exc

from dag_provenance.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    PayloadTooLargeError,
    ProvenanceError,
    SchemaError,
)

P = ParamSpec("P")
R = TypeVar("R")

# Driver error codes meaning "the statement was larger than the server accepts".
_MYSQL_PACKET_TOO_LARGE = frozenset(
    {1153, 1301}
)  # ER_NET_PACKET_TOO_LARGE, ER_WARN_ALLOWED_PACKET_OVERFLOWED
_SQLITE_TOO_BIG = "string or blob too big"
# SQLite's OperationalError messages that mean the file cannot be used now.
_SQLITE_UNAVAILABLE = (
    "locked",
    "busy",
    "unable to open",
    "disk i/o",
    "disk is full",
    "readonly database",
    "read-only",
    "not a database",
    "malformed",
)


def translate(e: BaseException) -> ProvenanceError:
    """The library's error for `e` (the caller chains `e` as its cause)."""
    if isinstance(e, exc.DBAPIError):
        return _database_error(e)
    if isinstance(e, exc.ArgumentError | exc.NoSuchModuleError):
        return InvalidInputError(f"invalid database target: {first_line(e)}")
    if _is_alembic_command_error(e):
        return SchemaError(f"migration failed: {first_line(e)}")
    return DatabaseError(f"database error: {first_line(e)}")


def _database_error(e: exc.DBAPIError) -> ProvenanceError:
    if too_large_message(e) is not None:
        return PayloadTooLargeError(
            f"the database refused a value as too large ({first_line(e)}); "
            "nothing of this call was written"
        )
    if _unavailable(e):
        return DatabaseUnavailableError(f"database unavailable: {first_line(e)}")
    return DatabaseError(f"database error: {first_line(e)}")


def _unavailable(e: exc.DBAPIError) -> bool:
    """Whether `e` says the database could not be reached or used for now.

    The server drivers raise OperationalError for lost or refused
    connections, shutdowns, timeouts, lock waits and resource limits. SQLite's
    driver raises it for those too (a locked or unopenable file, a full disk)
    but also for mistakes in a statement or schema ("index ... already
    exists", "no such table"), which are not an outage.
    """
    if e.connection_invalidated or isinstance(e, exc.InterfaceError):
        return True
    if not isinstance(e, exc.OperationalError):
        return False
    if e.orig is None or type(e.orig).__module__.split(".")[0] != "sqlite3":
        return True
    message = str(e.orig).lower()
    return any(sign in message for sign in _SQLITE_UNAVAILABLE)


def too_large_message(e: exc.DBAPIError) -> str | None:
    """The driver's message if `e` says a value or statement was too large."""
    orig = e.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_PACKET_TOO_LARGE:
        return str(orig)
    if _SQLITE_TOO_BIG in str(orig):
        return str(orig)
    return None


def _is_alembic_command_error(e: BaseException) -> bool:
    # Alembic is imported lazily: if it is not loaded, `e` cannot be its error.
    alembic_exc = sys.modules.get("alembic.util.exc")
    command_error = getattr(alembic_exc, "CommandError", None)
    return command_error is not None and isinstance(e, command_error)


def _translatable(e: BaseException) -> bool:
    return isinstance(e, exc.SQLAlchemyError) or _is_alembic_command_error(e)


class _Translated:
    """The context manager `translated()` returns (a class: it wraps every
    public call, so it stays cheaper than a generator-based one)."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:  # never swallows: re-raises translated, or lets `e` propagate
        if isinstance(e, Exception) and not isinstance(e, ProvenanceError) and _translatable(e):
            raise translate(e) from e


_TRANSLATED = _Translated()


def translated() -> AbstractContextManager[None]:
    """Raise SQLAlchemy's, the drivers' and Alembic's errors in the block as
    the library's, with the original chained as `__cause__`."""
    return _TRANSLATED


def translating(func: Callable[P, R]) -> Callable[P, R]:
    """`func`, with the errors it raises translated as `translated()` does."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _TRANSLATED:
            return func(*args, **kwargs)

    return wrapper


def first_line(e: BaseException) -> str:
    """The first line of the driver's message (or of `e`'s), or its class name."""
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
