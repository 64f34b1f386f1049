"""`dag-provenance demo`: record a small real run tree and show it."""

from __future__ import annotations

from rich.markup import escape

from dag_provenance.cli.app import JsonOption, UrlOption, app
from dag_provenance.cli.database import named_run, open_store, shown, target_of
from dag_provenance.cli.errors import command
from dag_provenance.cli.render import out, print_json, run_tree
from dag_provenance.demo import record_demo


@app.command("demo")
@command
def demo(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Record a small real run tree (fan-out, a failing node, a sub-DAG, a replay) and show it."""
    with open_store(url, create=True) as provenance:
        runs = record_demo(provenance)
        failed = named_run(provenance, runs.failed_run_id)
        replay = named_run(provenance, runs.replay_run_id)
    if as_json:
        print_json(runs.model_dump(mode="json"))
        return
    console = out()
    console.print(
        f"Recorded the demo in {escape(shown(target_of(url)))}: run {failed.run_id} failed in "
        f"`publish`; its replay {replay.run_id} re-ran only `publish` and completed.\n"
    )
    console.print(run_tree(failed))
    console.print(run_tree(replay))
    console.print(
        "\nNext: [bold]dag-provenance runs list[/], "
        f"[bold]dag-provenance runs graph {failed.run_id} --out run.svg[/]"
    )
