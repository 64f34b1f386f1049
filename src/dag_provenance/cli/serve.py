"""`dag-provenance serve`: the read-only web viewer (`dag_provenance.web`).

Safe by default: it listens on 127.0.0.1, and answers only requests whose
Host header names the loopback address it listens on. Listening on another
address needs a token (`--token`, or `$DAG_PROVENANCE_WEB_TOKEN`) that every
request must carry, or `--no-auth`, which says out loud that anyone who can
reach the port reads every recorded run.

The `[web]` extra is imported when the command runs, never before, so the
other commands work without it and this one says how to install it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from typing import Annotated
from urllib.parse import quote

import typer
from rich.markup import escape

from dag_provenance.cli.app import UrlOption, app
from dag_provenance.cli.database import refuse_missing_file, shown, target_of
from dag_provenance.cli.errors import CliError, command
from dag_provenance.cli.render import err, out
from dag_provenance.errors import ExtraNotInstalledError

TOKEN_ENV = "DAG_PROVENANCE_WEB_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SHORT_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _address(host: str, port: int, token: str | None) -> str:
    """The address to open in a browser (with the token, which the viewer
    then keeps in a cookie and removes from the address)."""
    shown_host = "127.0.0.1" if _is_unspecified(host) else host.strip("[]")
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    query = f"?token={quote(token, safe='')}" if token else ""
    return f"http://{shown_host}:{port}/{query}"


class _HiddenToken(logging.Filter):
    """Keeps the token out of the access log (the first visit carries it in
    its query string)."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._TOKEN.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


@app.command("serve")
@command
def serve(
    url: UrlOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Any but loopback needs --token (or --no-auth).",
        ),
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = DEFAULT_PORT,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help="Every request must carry this token: as `Authorization: Bearer TOKEN`, "
            "or in the cookie set by opening the printed address once.",
            show_default=False,
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve another address than loopback without a token: anyone who can "
            "reach it reads every run.",
        ),
    ] = False,
) -> None:
    """Serve a read-only web viewer of the runs in a browser (needs the web extra)."""
    if token and no_auth:
        raise CliError(f"--no-auth and a token (--token or ${TOKEN_ENV}) contradict each other")
    loopback = is_loopback(host)
    if not loopback and not token and not no_auth:
        raise CliError(
            f"--host {host} lets other machines reach the viewer: give --token TOKEN "
            f"(or ${TOKEN_ENV}) that every request must carry, or --no-auth to serve "
            "every run to anyone who can reach the port"
        )
    try:
        import uvicorn

        from dag_provenance.web import check_database, create_app
    except ModuleNotFoundError as e:  # uvicorn (the rest is checked by dag_provenance.web)
        raise ExtraNotInstalledError(
            f"dag-provenance serve needs {e.name}, which is not installed: "
            "pip install 'dag-provenance[web]'"
        ) from e
    target = target_of(url)
    database = shown(target)
    refuse_missing_file(target)
    asyncio.run(check_database(target))
    viewer = create_app(
        target,
        token=token or None,
        # Behind a name of your own (a proxy), listen elsewhere with a token.
        allowed_hosts=LOOPBACK_NAMES | {host.strip("[]")} if loopback else None,
    )
    if no_auth:
        err().print(
            "[bold yellow]warning:[/] --no-auth: the viewer has no authentication; "
            f"anyone who can reach {escape(host)}:{port} reads every recorded run"
        )
    elif token and len(token) < SHORT_TOKEN:
        err().print(
            f"[bold yellow]warning:[/] the token is short ({len(token)} characters): "
            "a random one of 16 or more is much harder to guess"
        )
    out().print(
        f"serving {escape(database)} at [bold]{escape(_address(host, port, token))}[/]",
        soft_wrap=True,
    )
    config = uvicorn.Config(
        viewer, host=host.strip("[]"), port=port, log_level="info", server_header=False
    )
    logging.getLogger("uvicorn.access").addFilter(_HiddenToken())
    uvicorn.Server(config).run()
