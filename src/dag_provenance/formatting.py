"""What the run pictures (`graph.py`), the command line and the web viewer
show alike: status icons, short human-readable text for durations, errors
and payloads, and the order a run's nodes are shown in."""

from __future__ import annotations

from datetime import UTC, datetime

from dag_provenance.models import NodeExecution
from dag_provenance.status import NodeStatus, RunStatus

STATUS_ICONS: dict[str, str] = {
    RunStatus.COMPLETED: "✔",
    RunStatus.FAILED: "✘",
    RunStatus.RUNNING: "▶",
    RunStatus.PAUSED: "⏸",
    RunStatus.CANCELLED: "⊘",
    NodeStatus.PENDING: "…",
    NodeStatus.SKIPPED: "↷",
}


def duration(started_at: datetime | None, finished_at: datetime | None) -> str:
    """`1.23s`, `450ms`, `3m05s`, `2h01m`; empty when either end is missing."""
    if started_at is None or finished_at is None:
        return ""
    return seconds_text((finished_at - started_at).total_seconds())


def seconds_text(seconds: float) -> str:
    if seconds < 0:
        return "0ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def shorten(text: str, width: int = 80) -> str:
    """`text` on one line (whitespace runs folded) and at most `width` characters."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def error_line(error: str | None, width: int = 80) -> str:
    """The line of an error that says what went wrong: for a Python traceback,
    its last line (`ValueError: boom`); otherwise the first non-empty line."""
    if not error:
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    pick = lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
    return shorten(pick, width)


def start_order(node: NodeExecution) -> tuple[bool, datetime, str]:
    """Sort key: nodes in the order they started, then those that never did;
    ties by label."""
    started = node.started_at or datetime.max.replace(tzinfo=UTC)
    return (node.started_at is None, started, node.node_label)
