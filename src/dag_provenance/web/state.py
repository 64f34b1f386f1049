"""What one viewer application holds for its life (`app.state.viewer`):
the store, opened in the lifespan, and how it serves."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from dag_provenance.async_repository import AsyncDagProvenance
from dag_provenance.web.graphsvg import GraphRenderer


@dataclass
class Viewer:
    store: AsyncDagProvenance
    graphs: GraphRenderer
    database: str
    """The database as it may be shown (no password)."""
    page_size: int
    poll_s: float


def viewer(request: Request) -> Viewer:
    """The application's `Viewer` (a FastAPI dependency)."""
    state: Viewer = request.app.state.viewer
    return state


__all__ = ["Viewer", "viewer"]
