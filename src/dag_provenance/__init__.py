"""dag-provenance: the full provenance of DAG runs in a relational database.

A drop-in for `lythonic.compose.dag_provenance` on SQLAlchemy and Alembic.
"""

from dag_provenance.async_repository import AsyncDagProvenance
from dag_provenance.errors import (
    AmbiguousRunIdError,
    BatchThreadError,
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    DriverNotInstalledError,
    DuplicateEdgeError,
    DuplicateRunError,
    ExtraNotInstalledError,
    IdentifierTooLongError,
    InvalidInputError,
    InvalidStatusError,
    NodeNotFoundError,
    NotFoundError,
    PayloadTooLargeError,
    ProvenanceError,
    RunNotFoundError,
    SameStoreError,
    SchemaError,
    SchemaOutOfDateError,
    SchemaTooNewError,
    TargetNotEmptyError,
    UnrecognizedSchemaError,
)
from dag_provenance.graph import to_dot, to_mermaid
from dag_provenance.initiator import SCHEDULER, initiated_by, run_initiator
from dag_provenance.maintenance import CopyResult, PruneResult, copy_store, prune
from dag_provenance.migrate import MigrationStatus, migration_status
from dag_provenance.models import (
    DagRun,
    DagStats,
    EdgeTraversal,
    IoPayload,
    NodeExecution,
    NodeFailure,
    NodeStats,
)
from dag_provenance.null import AsyncNullProvenance, NullProvenance
from dag_provenance.protocol import ProvenanceStore, RunCursor
from dag_provenance.repository import DagProvenance
from dag_provenance.serialization import json_default, safe_json_dumps
from dag_provenance.status import NodeStatus, RunStatus

__all__ = [
    "SCHEDULER",
    "AmbiguousRunIdError",
    "AsyncDagProvenance",
    "AsyncNullProvenance",
    "BatchThreadError",
    "ConflictError",
    "CopyResult",
    "DagProvenance",
    "DagRun",
    "DagStats",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DriverNotInstalledError",
    "DuplicateEdgeError",
    "DuplicateRunError",
    "EdgeTraversal",
    "ExtraNotInstalledError",
    "IdentifierTooLongError",
    "InvalidInputError",
    "InvalidStatusError",
    "IoPayload",
    "MigrationStatus",
    "NodeExecution",
    "NodeFailure",
    "NodeNotFoundError",
    "NodeStats",
    "NodeStatus",
    "NotFoundError",
    "NullProvenance",
    "PayloadTooLargeError",
    "ProvenanceError",
    "ProvenanceStore",
    "PruneResult",
    "RunCursor",
    "RunNotFoundError",
    "RunStatus",
    "SameStoreError",
    "SchemaError",
    "SchemaOutOfDateError",
    "SchemaTooNewError",
    "TargetNotEmptyError",
    "UnrecognizedSchemaError",
    "copy_store",
    "initiated_by",
    "json_default",
    "migration_status",
    "prune",
    "run_initiator",
    "safe_json_dumps",
    "to_dot",
    "to_mermaid",
]
