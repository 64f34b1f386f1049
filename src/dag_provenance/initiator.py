"""Who started a run: a context variable, a context manager to set it, and
how the store reads it when `create_run` is given no initiator.

lythonic has its own `run_initiator` variable, which its DagRunner reads on
the event loop before it hops to an executor thread (where the task's context
is not visible), and which its `replay()` never passes at all. So that either
library's `initiated_by` attributes a run with no configuration:

- this module's `initiated_by` also sets lythonic's variable, when lythonic is
  already imported in the process (it is never imported just for this);
- `current_initiator()` reads lythonic's variable first when it has been set
  in the calling context (by either `initiated_by`, so it holds the innermost
  block of the two), and this module's otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar

SCHEDULER = "scheduler"
"""`initiated_by` of runs fired by a trigger's schedule."""

run_initiator: ContextVar[str | None] = ContextVar("dag_provenance_run_initiator", default=None)
"""Who is starting runs in the current context."""

LYTHONIC_MODULE = "lythonic.compose.dag_provenance"
"""The module whose `run_initiator` is kept in step with this one's."""

_UNSET = object()


def lythonic_run_initiator() -> ContextVar[str | None] | None:
    """lythonic's initiator variable if lythonic is imported in this process, else None."""
    variable = getattr(sys.modules.get(LYTHONIC_MODULE), "run_initiator", None)
    return variable if isinstance(variable, ContextVar) else None


def current_initiator() -> str | None:
    """Who is starting runs in the calling context, by either library's `initiated_by`.

    lythonic's variable wins when it has been set in this context: both
    context managers set it, so it holds whichever block is innermost. When
    it was never set here (lythonic not imported, or imported after the
    block began), this module's `run_initiator` answers.
    """
    lythonic = lythonic_run_initiator()
    if lythonic is not None:
        value = lythonic.get(_UNSET)
        if value is not _UNSET:
            return value  # type: ignore[return-value]  # set, so a str or None
    return run_initiator.get()


@contextmanager
def initiated_by(initiator: str | None) -> Iterator[None]:
    """Attribute runs started inside the block to `initiator` (`None` clears it).

    Also sets lythonic's own `run_initiator` when lythonic is imported, so its
    DagRunner, which reads only its own variable, records the same initiator.
    """
    with ExitStack() as undo:
        for variable in (run_initiator, lythonic_run_initiator()):
            if variable is not None:
                undo.callback(variable.reset, variable.set(initiator))
        yield
