"""Payloads for a whole run tree, for the exports that describe them."""

from __future__ import annotations

from dag_provenance.models import DagRun
from dag_provenance.protocol import ProvenanceStore


def load_tree_io(store: ProvenanceStore, dag_run: DagRun) -> DagRun:
    """Fill `io` on every run of `dag_run`'s tree and on their nodes
    (`load_io` fills one run), and return `dag_run`: what `to_prov` needs to
    describe the recorded inputs and outputs as entities with digests."""
    for run in dag_run.walk():
        store.load_io(run)
    return dag_run
