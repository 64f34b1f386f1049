"""A small, read-only web viewer of recorded runs: `dag-provenance serve`.

`create_app(url, token=...)` is the viewer as a FastAPI application (pages,
the JSON API under `/api` and its OpenAPI document). Needs the `[web]`
extra: `pip install 'dag-provenance[web]'`.

- `app.py`: `create_app` (the lifespan, the store, the middleware) and `check_database`
- `security.py`: security headers, the Host check and the token, on every request
- `urls.py`: the addresses of runs and DAGs (ids as one path segment, or `?id=`)
- `params.py`: request parameters: ids, run filters, the keyset cursor, moments
- `reads.py`: what the viewer reads from the store, one call per page or answer
- `api.py`, `schemas.py`: the JSON API and the shapes it answers with
- `pages.py`, `templating.py`, `templates/`: the HTML pages and their fragments
- `timeline.py`, `graphsvg.py`: the run's timeline and its graph
- `live.py`: a run tree's version and its server-sent events
- `payloads.py`: payloads as shown (pretty-printed, cut to a preview)
- `errors.py`: the HTTP status and the page or JSON of each error
- `state.py`: what one application holds for its life
- `static/`: the script and the style sheet (the only ones the pages load)
"""

from __future__ import annotations

from dag_provenance.errors import ExtraNotInstalledError

try:
    from dag_provenance.web.app import check_database, create_app
except ModuleNotFoundError as e:  # a package of the extra (fastapi, jinja2, ...)
    if (e.name or "").partition(".")[0] == "dag_provenance":
        raise
    raise ExtraNotInstalledError(
        f"the web viewer needs {e.name}, which is not installed: pip install 'dag-provenance[web]'"
    ) from e

__all__ = ["check_database", "create_app"]
