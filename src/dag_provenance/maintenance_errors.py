"""Errors raised by the maintenance operations (`prune`, `copy_store`).

Kept apart from `errors.py` until they are folded into the main hierarchy;
both classes are `ProvenanceError`s, so callers catching the base class see them.
"""

from __future__ import annotations

from dag_provenance.errors import ConflictError, InvalidInputError


class TargetNotEmptyError(ConflictError):
    """`copy_store` found a row in the target that is absent from the source or
    differs from it: the target is not empty (nor a partial copy of this source)."""


class SameStoreError(InvalidInputError):
    """`copy_store` was asked to copy a database onto itself."""
