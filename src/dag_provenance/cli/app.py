"""The command line's shape: the typer apps, the options given before the
command (`--debug`, `--url`), the options the commands share, and `main`.

The commands register themselves on these apps (`db.py`, `runs.py`,
`stats.py`, `demo.py`, `export.py`, `serve.py`); `cli/__init__.py` imports them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dag_provenance.cli.database import DEFAULT_DATABASE, use_url_before_command
from dag_provenance.cli.errors import start_invocation
from dag_provenance.engine import URL_ENV

app = typer.Typer(
    name="dag-provenance",
    help="Inspect, migrate, prune and copy a dag-provenance store, or serve a web viewer of it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: schema migrations and copying.", no_args_is_help=True)
runs_app = typer.Typer(
    help="Recorded runs: list, show, watch, draw, stats, prune, export.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        # Parentheses, not brackets: the help is rich markup, which eats [...].
        help=f"Database: a SQLAlchemy URL or a SQLite file path "
        f"(default: ${URL_ENV}, else ./{DEFAULT_DATABASE})",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Full run ids and every column, one line per run however wide."),
]
RunIdArgument = Annotated[str, typer.Argument(help="The run: its id or a unique prefix of it.")]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help=f"Database for the command: a SQLAlchemy URL or a SQLite file path; "
            f"a --url after the command wins (default: ${URL_ENV}, else ./{DEFAULT_DATABASE})",
            show_default=False,
        ),
    ] = None,
) -> None:
    start_invocation(debug=debug)
    use_url_before_command(url)


def main() -> None:
    """The console script's entry point."""
    app()
