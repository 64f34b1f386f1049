"""`dag-provenance`: the console script. Thin: parses, calls the library, prints.

- `app.py`: the typer apps, the options before the command, `main`
- `database.py`: which database a command works on, and opening it
- `errors.py`: how a command fails (one line on stderr, exit code 1)
- `render.py`: what the commands print (listings, run trees, JSON)
- `db.py`, `runs.py`, `demo.py`: the commands
- `stats.py`: `runs stats`, one DAG's runs per status and per-node figures
- `export.py`: `runs export`, run trees as OpenLineage events or W3C PROV
  (needs the `[lineage]` extra, imported only when the command runs)
- `serve.py`: `serve`, the read-only web viewer (needs the `[web]` extra,
  imported only when the command runs)
"""

# Imported for their side effect: each registers its commands on `app`.
from dag_provenance.cli import db, demo, export, runs, serve, stats  # noqa: F401
from dag_provenance.cli.app import app, main

__all__ = ["app", "main"]
