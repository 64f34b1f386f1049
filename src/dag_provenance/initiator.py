"""Who started a run: a context variable and a context manager to set it.

`create_run` falls back to the store's initiator variable (this module's
`run_initiator` unless the store was given another `ContextVar`, such as
lythonic's own) when no `initiator` is passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SCHEDULER = "scheduler"
"""`initiated_by` of runs fired by a trigger's schedule."""

run_initiator: ContextVar[str | None] = ContextVar("dag_provenance_run_initiator", default=None)
"""Who is starting runs in the current context."""


@contextmanager
def initiated_by(initiator: str | None) -> Iterator[None]:
    """Attribute runs started inside the block to `initiator` (`None` clears it)."""
    token = run_initiator.set(initiator)
    try:
        yield
    finally:
        run_initiator.reset(token)
