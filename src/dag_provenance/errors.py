"""The library's exceptions: every error the public API and the command line
raise for a database, input or schema problem is one of these, with the
exception behind it chained as `__cause__` (see `dberrors`)."""

from __future__ import annotations

from collections.abc import Sequence


class ProvenanceError(Exception):
    """Base class of every error the library raises."""


class InvalidInputError(ProvenanceError, ValueError):
    """An argument is malformed: wrong type, forbidden character, bad value."""


class InvalidStatusError(InvalidInputError):
    """A status is not one of the allowed values (the message lists them)."""


class IdentifierTooLongError(InvalidInputError):
    """An id, label or nsref is longer than its column; it was not stored."""


class PayloadTooLargeError(InvalidInputError):
    """A payload (JSON text, an error) is larger than the database accepts in one
    statement (MariaDB's max_allowed_packet, PostgreSQL's 1 GB, SQLite's
    SQLITE_LIMIT_LENGTH); the message names the limit and how to raise it.
    Nothing was written."""

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None):
        super().__init__(message)
        self.size = size
        self.limit = limit


class AmbiguousRunIdError(InvalidInputError):
    """A run id prefix starts several run ids and is none of them exactly."""

    def __init__(self, prefix: str, matches: Sequence[str], count: int) -> None:
        listed = ", ".join(repr(m) for m in matches)
        more = f" and {count - len(matches)} more" if count > len(matches) else ""
        super().__init__(
            f"run id {prefix!r} is ambiguous: {count} runs start with it "
            f"({listed}{more}); give more of the id"
        )
        self.prefix = prefix
        self.matches = list(matches)
        self.count = count


class NotFoundError(ProvenanceError, LookupError):
    """A write named a run or node that does not exist."""


class RunNotFoundError(NotFoundError):
    """A write named a run id that is not in the store."""

    def __init__(self, run_id: str, what: str = "run") -> None:
        super().__init__(f"{what} {run_id!r} does not exist")
        self.run_id = run_id


class NodeNotFoundError(NotFoundError):
    """A write named a node that was never started in its run."""

    def __init__(self, run_id: str, node_label: str) -> None:
        super().__init__(f"node {node_label!r} was never started in run {run_id!r}")
        self.run_id = run_id
        self.node_label = node_label


class ConflictError(ProvenanceError):
    """A write would overwrite a record that must stay as it is."""


class DuplicateRunError(ConflictError):
    """`create_run` was given a run id that already exists."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists")
        self.run_id = run_id


class DuplicateEdgeError(ConflictError):
    """An edge traversal was recorded twice for the same run."""

    def __init__(self, run_id: str, upstream: str, downstream: str) -> None:
        super().__init__(
            f"edge {upstream!r} -> {downstream!r} was already traversed in run {run_id!r}"
        )
        self.run_id = run_id


class TargetNotEmptyError(ConflictError):
    """`copy_store` found a row in the target that is absent from the source or
    differs from it: the target is not empty (nor a partial copy of this source)."""


class SameStoreError(InvalidInputError):
    """`copy_store` was asked to copy a database onto itself."""


class BatchThreadError(ProvenanceError, RuntimeError):
    """A call was made inside a `batch()` opened on another thread (its context
    was copied there, as `asyncio.to_thread` does): a batch's connection is
    used only by the thread that opened it."""


class SchemaError(ProvenanceError):
    """The database schema is not the one this version of the library expects."""


class SchemaOutOfDateError(SchemaError):
    """The database is behind the code and the store was opened with migrate=False."""


class SchemaTooNewError(SchemaError):
    """The database was migrated by a newer dag-provenance than this one."""


class UnrecognizedSchemaError(SchemaError):
    """The database has provenance tables this library cannot identify."""


class DatabaseError(ProvenanceError):
    """The database refused or failed an operation (see the chained cause)."""


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached (down, refused, or timed out)."""


class DriverNotInstalledError(DatabaseError):
    """The URL names a database driver that is not installed (the message
    names the extra to install, e.g. `dag-provenance[postgresql]`)."""


class ExtraNotInstalledError(ProvenanceError, ImportError):
    """A feature needs a package of an optional extra that is not installed
    (the message names the extra, e.g. `dag-provenance[lineage]`)."""
