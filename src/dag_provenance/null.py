"""`NullProvenance`: the store that records nothing, for runners that want
the provenance calls without a database (as lythonic's own `NullProvenance`).
It satisfies `protocol.ProvenanceStore` like `DagProvenance`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from dag_provenance.maintenance import PruneResult
from dag_provenance.models import DagRun
from dag_provenance.protocol import RunCursor


class NullProvenance:
    """No-op provenance: discards writes, returns None/empty on reads."""

    def create_run(
        self,
        run_id: str,
        dag_nsref: str,
        source_inputs: dict[str, Any],
        parent_run_id: str | None = None,
        initiator: str | None = None,
    ) -> None:
        pass

    def update_run_status(self, run_id: str, status: str) -> None:
        pass

    def finish_run(self, run_id: str, status: str, sink_outputs_json: str | None = None) -> None:
        pass

    def record_node_start(
        self,
        run_id: str,
        node_label: str,
        input_json: str,
        is_source: bool = False,
        is_sink: bool = False,
    ) -> None:
        pass

    def record_node_skipped(self, run_id: str, node_label: str, output_json: str) -> None:
        pass

    def complete_node_with_edges(
        self, run_id: str, node_label: str, output_json: str, edges: list[tuple[str, str]]
    ) -> None:
        pass

    def fail_node_and_finish_run(self, run_id: str, node_label: str, error: str) -> None:
        pass

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return None

    def get_node_executions(self, run_id: str) -> list[dict[str, Any]]:
        return []

    def get_node_output(self, run_id: str, node_label: str) -> str | None:
        return None

    def get_pending_nodes(self, run_id: str) -> list[str]:
        return []

    def get_edge_traversals(self, run_id: str) -> list[dict[str, Any]]:
        return []

    def inspect_run(self, run_id: str) -> DagRun | None:
        return None

    def changes_since(self, run_id: str, since: datetime) -> dict[str, DagRun]:
        return {}

    def prune(
        self,
        older_than: datetime,
        statuses: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        return PruneResult(dry_run=dry_run)

    def load_io(self, dag_run: DagRun, node_labels: Sequence[str] | None = None) -> None:
        pass

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
    ) -> list[DagRun]:
        return []

    def get_active_runs(self) -> list[DagRun]:
        return []

    def get_child_runs(self, parent_run_id: str) -> list[DagRun]:
        return []

    @contextmanager
    def batch(self) -> Iterator[NullProvenance]:
        yield self

    def close(self) -> None:
        pass


__all__ = ["NullProvenance"]
