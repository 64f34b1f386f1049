"""Run and node statuses, as str enums that compare equal to their values."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


FINISHED_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
"""Statuses a run ends in: it has a finished_at and will not change again."""

ACTIVE_STATUSES = (RunStatus.RUNNING, RunStatus.PAUSED)
"""Statuses of a run that may still change (a paused run can be restarted)."""
