"""`ProvenanceStore`: the surface every store offers, as a `typing.Protocol`.

`DagProvenance` and `NullProvenance` both satisfy it (mypy checks this in
`tests/unit/test_protocol.py`), so code that records provenance can accept
either, as lythonic's DagRunner accepts its store or its no-op twin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dag_provenance.events import Listener
from dag_provenance.models import DagRun, DagStats

if TYPE_CHECKING:
    from dag_provenance.maintenance import PruneResult

RunCursor = tuple[datetime, str]
"""Keyset position in `get_recent_runs`: (started_at, run_id) of the last run seen."""


@runtime_checkable
class ProvenanceStore(Protocol):
    """Records the provenance of DAG runs and answers questions about them."""

    # Writes

    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None: ...

    def update_run_status(self, run_id: str, status: str) -> None: ...

    def finish_run(
        self, run_id: str, status: str, sink_outputs_json: str | None = None
    ) -> None: ...

    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None: ...

    def record_node_skipped(self, run_id: str, node_label: str, output_json: str) -> None: ...

    def complete_node_with_edges(
        self, run_id: str, node_label: str, output_json: str, edges: list[tuple[str, str]]
    ) -> None: ...

    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None: ...

    # Plain reads

    def get_run(self, run_id: str) -> dict[str, Any] | None: ...

    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]: ...

    def get_node_output(self, run_id: str, node_label: str) -> str | None: ...

    def get_pending_nodes(self, run_id: str) -> list[str]: ...

    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]: ...

    # Inspection

    def inspect_run(self, run_id: str) -> DagRun | None: ...

    def changes_since(self, run_id: str, since: datetime) -> dict[str, DagRun]: ...

    def get_recent_runs(
        self,
        limit: int = 20,
        status: str | None = None,
        *,
        statuses: Iterable[str] | None = None,
        dag_nsref: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        after: RunCursor | None = None,
    ) -> list[DagRun]: ...

    def get_active_runs(self) -> list[DagRun]: ...

    def get_child_runs(self, parent_run_id: str) -> list[DagRun]: ...

    def dag_stats(
        self,
        dag_nsref: str,
        *,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
    ) -> DagStats: ...

    def load_io(self, dag_run: DagRun, node_labels: Sequence[str] | None = None) -> None: ...

    # Operating

    def prune(
        self,
        older_than: datetime,
        statuses: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> PruneResult: ...

    def batch(self) -> AbstractContextManager[Any]: ...

    def close(self) -> None: ...

    # Listening (see `events`)

    def add_listener(self, listener: Listener) -> None: ...

    def remove_listener(self, listener: Listener) -> None: ...
