"""dag-provenance: the full provenance of DAG runs in a relational database.

A drop-in for `lythonic.compose.dag_provenance` on SQLAlchemy and Alembic.
"""

from dag_provenance.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    DuplicateEdgeError,
    DuplicateRunError,
    IdentifierTooLongError,
    InvalidInputError,
    InvalidStatusError,
    NodeNotFoundError,
    NotFoundError,
    ProvenanceError,
    RunNotFoundError,
    SchemaError,
    SchemaOutOfDateError,
    SchemaTooNewError,
    UnrecognizedSchemaError,
)
from dag_provenance.initiator import SCHEDULER, initiated_by, run_initiator
from dag_provenance.models import DagRun, EdgeTraversal, IoPayload, NodeExecution
from dag_provenance.repository import DagProvenance, NullProvenance, RunCursor
from dag_provenance.serialization import json_default, safe_json_dumps
from dag_provenance.status import NodeStatus, RunStatus

__all__ = [
    "SCHEDULER",
    "ConflictError",
    "DagProvenance",
    "DagRun",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DuplicateEdgeError",
    "DuplicateRunError",
    "EdgeTraversal",
    "IdentifierTooLongError",
    "InvalidInputError",
    "InvalidStatusError",
    "IoPayload",
    "NodeExecution",
    "NodeNotFoundError",
    "NodeStatus",
    "NotFoundError",
    "NullProvenance",
    "ProvenanceError",
    "RunCursor",
    "RunNotFoundError",
    "RunStatus",
    "SchemaError",
    "SchemaOutOfDateError",
    "SchemaTooNewError",
    "UnrecognizedSchemaError",
    "initiated_by",
    "json_default",
    "run_initiator",
    "safe_json_dumps",
]
