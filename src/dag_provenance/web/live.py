"""Following a run as it happens: its version, and its server-sent events.

A run tree's *version* is a digest of everything the viewer draws of it
(statuses, times, edges, sub-DAG runs): equal versions draw the same. Pages
carry the version they were drawn at; the event stream sends the current one
whenever it changes, and the page fetches its fragments again when the two
differ, so nothing written between drawing the page and opening the stream
is missed.

The stream polls `changes_since` (only what changed, one statement) every
`poll_s` seconds, brings its copy of the tree up to date with
`DagRun.apply_changes`, and sends

- `state` with `{"version", "status", "active"}`: when it opens, and each
  time the version changes;
- `end` with the same, once the run has finished (or was deleted: status
  `null`); then the stream closes;
- `error` with `{"detail"}` if the store refuses to answer (the stream
  closes; an unreachable database is only waited for).

A comment line keeps an idle connection open through proxies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from dag_provenance.async_repository import AsyncDagProvenance
from dag_provenance.errors import DatabaseUnavailableError, ProvenanceError
from dag_provenance.models import DagRun
from dag_provenance.status import FINISHED_STATUSES

log = logging.getLogger(__name__)

POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_STREAM_S = 3600.0
"""A stream ends after this long; the browser opens a new one by itself."""
RETRY_MS = 2000
CLOCK_OVERLAP = timedelta(seconds=1)
"""How far back each poll reads again: writers' clocks (which stamp the
rows) may differ a little, and a change stamped just before the last one seen
must not be missed. What is read twice changes nothing."""


def tree_version(run: DagRun) -> str:
    """A short digest of what the viewer draws of the run tree."""
    digest = hashlib.blake2b(digest_size=8)
    for each in sorted(run.walk(), key=lambda r: r.run_id):
        digest.update(repr((each.run_id, each.status, each.finished_at)).encode())
        for label in sorted(each.nodes):
            node = each.nodes[label]
            state = (
                label,
                node.status,
                node.started_at,
                node.finished_at,
                node.error,
                sorted(e.downstream_label for e in node.edges),
                sorted(node.sub_dags or ()),
            )
            digest.update(repr(state).encode())
    return digest.hexdigest()


def is_active(run: DagRun) -> bool:
    return run.status not in FINISHED_STATUSES


def latest_update(run: DagRun) -> datetime:
    """The most recent time recorded anywhere in the tree."""
    return max(each.latest_update() for each in run.walk())


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _state(run: DagRun | None, version: str | None) -> dict[str, object]:
    if run is None:
        return {"version": version, "status": None, "active": False}
    return {"version": version, "status": run.status, "active": is_active(run)}


async def run_events(
    store: AsyncDagProvenance,
    run: DagRun,
    *,
    poll_s: float = POLL_S,
) -> AsyncIterator[str]:
    """The server-sent events of `run` (as just read), until it finishes.

    (A client that goes away cancels the stream: Starlette's
    `StreamingResponse` listens for the disconnect.)"""
    version = tree_version(run)
    seen = latest_update(run)
    yield f"retry: {RETRY_MS}\n" + _event("state", _state(run, version))
    started = last_sent = time.monotonic()
    current: DagRun | None = run
    while current is not None and is_active(current):
        await asyncio.sleep(poll_s)
        now = time.monotonic()
        if now - started > MAX_STREAM_S:
            return
        try:
            changes = await store.changes_since(run.run_id, seen - CLOCK_OVERLAP)
        except DatabaseUnavailableError as e:
            # The store reconnects by itself: try again a little later.
            log.warning("following run %r: %s", run.run_id, e)
            await asyncio.sleep(poll_s * 4)
            continue
        except ProvenanceError as e:
            log.error("following run %r: %s", run.run_id, e)
            yield _event("error", {"detail": str(e)})
            return
        if not changes:  # deleted meanwhile
            current = None
            break
        run.apply_changes(changes)
        fresh = tree_version(run)
        seen = max(seen, latest_update(run))
        if fresh != version:
            version = fresh
            last_sent = now
            yield _event("state", _state(run, version))
        elif now - last_sent > KEEPALIVE_S:
            last_sent = now
            yield ": keep-alive\n\n"
    yield _event("end", _state(current, version if current is not None else None))


__all__ = ["is_active", "latest_update", "run_events", "tree_version"]
