"""How the viewer answers an error: the HTTP status of each of the
library's errors, and its message as JSON (`{"detail": ...}`, under `/api/`)
or as an HTML page (everywhere else)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from dag_provenance.errors import (
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    ProvenanceError,
    SchemaError,
    SchemaOutOfDateError,
    SchemaTooNewError,
)
from dag_provenance.web.templating import render

log = logging.getLogger(__name__)

_STATUSES: tuple[tuple[type[ProvenanceError], int], ...] = (
    (NotFoundError, 404),
    (InvalidInputError, 400),
    (SchemaError, 503),
    (DatabaseUnavailableError, 503),
)
_HINTS: tuple[tuple[type[ProvenanceError], str], ...] = (
    (
        SchemaOutOfDateError,
        "The viewer never migrates a database: upgrade it with `dag-provenance db upgrade "
        "--url ...` (or `alembic upgrade head`), then reload this page.",
    ),
    (SchemaTooNewError, "Upgrade dag-provenance where the viewer runs."),
    (DatabaseUnavailableError, "The viewer reconnects by itself: reload the page in a moment."),
)


def status_of(error: ProvenanceError) -> int:
    """The HTTP status that answers one of the library's errors."""
    return next((status for kind, status in _STATUSES if isinstance(error, kind)), 500)


def answer(request: Request, status: int, message: str, hint: str | None = None) -> Response:
    """The error as JSON under `/api/`, else as a page."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=status)
    page = render("error.html", status=status, message=message, hint=hint, database=None)
    return HTMLResponse(page, status_code=status)


async def _provenance_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ProvenanceError)
    status = status_of(error)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, error)
    hint = next((text for kind, text in _HINTS if isinstance(error, kind)), None)
    return answer(request, status, str(error), hint)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    response = answer(request, error.status_code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


def _where(location: tuple[object, ...]) -> str:
    kind = {"query": "query parameter", "path": "path parameter"}.get(str(location[0]), "")
    name = ".".join(str(part) for part in location[1:]) or str(location[0])
    return f"{kind} {name!r}".strip()


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in error.errors()]
    return answer(request, 422, "; ".join(problems) or "invalid request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProvenanceError, _provenance_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


__all__ = ["answer", "install_error_handlers", "status_of"]
