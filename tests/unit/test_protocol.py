"""Both stores satisfy `ProvenanceStore`: mypy checks the assignments below
(a missing method or a changed signature fails `mypy --strict`), and the
runtime check covers the method names."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from dag_provenance import DagProvenance, NullProvenance, ProvenanceStore


def stores(tmp_path: Path) -> list[ProvenanceStore]:
    real: ProvenanceStore = DagProvenance(tmp_path / "p.db")
    null: ProvenanceStore = NullProvenance()
    return [real, null]


def test_both_stores_are_provenance_stores(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        assert isinstance(store, ProvenanceStore)
        store.close()


PROTOCOL_METHODS = sorted(
    name
    for name, _ in inspect.getmembers(ProvenanceStore, inspect.isfunction)
    if not name.startswith("_")
)


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_each_protocol_method_has_the_same_signature_on_both_stores(name: str) -> None:
    expected = inspect.signature(getattr(ProvenanceStore, name))
    for store in (DagProvenance, NullProvenance):
        actual = inspect.signature(getattr(store, name))
        assert list(actual.parameters) == list(expected.parameters), store.__name__
        assert [p.default for p in actual.parameters.values()] == [
            p.default for p in expected.parameters.values()
        ], store.__name__


def test_the_protocol_covers_every_public_method_of_the_store() -> None:
    public = {
        name
        for name, _ in inspect.getmembers(DagProvenance, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == set(PROTOCOL_METHODS)
