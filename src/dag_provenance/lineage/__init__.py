"""Recorded runs in the open lineage standards: OpenLineage run events (as an
export and live, from a store's listeners) and W3C PROV documents.

Needs the `[lineage]` extra (`pip install 'dag-provenance[lineage]'`):
openlineage-python for OpenLineage, prov (with rdflib, for PROV-O) for PROV.
The names below are imported on first use, so each standard needs only its
own library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dag_provenance.lineage.listener import OpenLineageListener
    from dag_provenance.lineage.openlineage import DEFAULT_NAMESPACE, to_openlineage
    from dag_provenance.lineage.prov import PROV_FORMATS, serialize_prov, to_prov
    from dag_provenance.lineage.tree import load_tree_io

_WHERE = {
    "DEFAULT_NAMESPACE": "openlineage",
    "OpenLineageListener": "listener",
    "load_tree_io": "tree",
    "to_openlineage": "openlineage",
    "PROV_FORMATS": "prov",
    "serialize_prov": "prov",
    "to_prov": "prov",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_NAMESPACE",
    "PROV_FORMATS",
    "OpenLineageListener",
    "load_tree_io",
    "serialize_prov",
    "to_openlineage",
    "to_prov",
]
