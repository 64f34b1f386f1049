"""The `[lineage]` extra's packages, imported with an error that says how to
install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from dag_provenance.errors import ExtraNotInstalledError


def require(module: str, package: str) -> ModuleType:
    """Import `module` (of the PyPI `package`), or raise `ExtraNotInstalledError`
    naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExtraNotInstalledError(
            f"dag_provenance.lineage needs {package} ({e}): pip install 'dag-provenance[lineage]'"
        ) from e
