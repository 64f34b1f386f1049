"""`create_app`: the viewer as a FastAPI application, for `dag-provenance
serve` and for tests (and for mounting in an application of your own).

It reads through one `AsyncDagProvenance`, opened in the lifespan with
`migrate=False`: a viewer never changes the schema. A database behind (or
ahead of) the code is reported, not fatal: the viewer starts, logs it, and
answers every page with the error and what to do (503), until the database
is upgraded. `check_database` is the same check as one call, for a command
line that would rather say so in one line before it serves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.staticfiles import StaticFiles

from dag_provenance.async_repository import AsyncDagProvenance
from dag_provenance.errors import InvalidInputError, ProvenanceError
from dag_provenance.web.api import router as api_router
from dag_provenance.web.errors import install_error_handlers
from dag_provenance.web.graphsvg import GraphRenderer
from dag_provenance.web.live import POLL_S
from dag_provenance.web.pages import router as pages_router
from dag_provenance.web.params import MAX_PAGE_SIZE, PAGE_SIZE
from dag_provenance.web.security import TOKEN_PATTERN, ViewerMiddleware
from dag_provenance.web.state import Viewer

log = logging.getLogger(__name__)

OPENAPI_URL = "/api/openapi.json"


def create_app(
    url: str | os.PathLike[str],
    *,
    token: str | None = None,
    allowed_hosts: Collection[str] | None = None,
    page_size: int = PAGE_SIZE,
    poll_interval: float = POLL_S,
    graphviz: bool | None = None,
) -> FastAPI:
    """The read-only web viewer of the store at `url` (a SQLite path or a
    database URL, as `AsyncDagProvenance` takes).

    `token`: every request must carry it (`Authorization: Bearer TOKEN`, or
    the cookie a visit to `/?token=TOKEN` sets). `allowed_hosts`: the host
    names it is reached by (any when None); a loopback viewer should list
    its own, so that no other site can reach it by rebinding a DNS name.
    `page_size`: runs on a page of the list. `poll_interval`: seconds
    between the reads of a followed run. `graphviz`: draw graphs with
    Graphviz's `dot` when installed (None), or never (False).
    """
    if token is not None and not TOKEN_PATTERN.fullmatch(token):
        raise InvalidInputError(
            "token must be printable ASCII without spaces, quotes, commas, semicolons or "
            "backslashes (make one with `python -c 'import secrets; "
            "print(secrets.token_urlsafe())'`)"
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    if not poll_interval > 0:
        raise InvalidInputError("poll_interval must be a positive number of seconds")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = AsyncDagProvenance(url, migrate=False)
        try:
            try:
                await store.__aenter__()
            except ProvenanceError as e:
                # Served anyway: each page says what is wrong until it is fixed.
                log.error("the viewer's database is not usable yet: %s", e)
            app.state.viewer = Viewer(
                store=store,
                graphs=GraphRenderer(graphviz),
                database=_shown(store),
                page_size=page_size,
                poll_s=poll_interval,
            )
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="dag-provenance viewer",
        summary="Read-only views of recorded DAG runs.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the viewer loads nothing
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        middleware=[Middleware(ViewerMiddleware, token=token, allowed_hosts=allowed_hosts)],
    )
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(packages=[("dag_provenance.web", "static")]), name="static")
    return app


def _shown(store: AsyncDagProvenance) -> str:
    """The database as the pages may show it: its file, or its URL without password."""
    file = store.db_path
    return str(file) if file is not None else store.engine.url.render_as_string(True)


async def check_database(url: str | os.PathLike[str]) -> None:
    """Raise the library's error if the viewer could not read the database
    at `url` (unreachable, no schema, a schema behind or ahead of the code)."""
    store = AsyncDagProvenance(url, migrate=False)
    try:
        # Not `async with`: when the check raises there, the engine (and the
        # connection the check used) would be left to the garbage collector.
        await store.__aenter__()
    finally:
        await store.close()


__all__ = ["OPENAPI_URL", "check_database", "create_app"]
