"""The initiator context variable and its context manager."""

from __future__ import annotations

import contextvars
import threading

import pytest

from dag_provenance import SCHEDULER, initiated_by, run_initiator


def test_no_initiator_is_set_by_default() -> None:
    assert run_initiator.get() is None


def test_initiated_by_sets_the_initiator_inside_the_block_only() -> None:
    with initiated_by("usr_1"):
        assert run_initiator.get() == "usr_1"
    assert run_initiator.get() is None


def test_initiated_by_blocks_nest_and_none_clears_an_outer_initiator() -> None:
    with initiated_by("usr_outer"):
        with initiated_by(SCHEDULER):
            assert run_initiator.get() == "scheduler"
        with initiated_by(None):
            assert run_initiator.get() is None
        assert run_initiator.get() == "usr_outer"


def test_initiated_by_restores_the_outer_initiator_when_the_block_raises() -> None:
    with initiated_by("usr_outer"):
        with pytest.raises(RuntimeError), initiated_by("usr_inner"):
            raise RuntimeError("boom")
        assert run_initiator.get() == "usr_outer"


def test_a_thread_sees_the_initiator_only_when_given_a_copy_of_the_context() -> None:
    seen: dict[str, str | None] = {}

    def look(name: str) -> None:
        seen[name] = run_initiator.get()

    with initiated_by("usr_1"):
        plain = threading.Thread(target=look, args=("plain",))
        copied_context = contextvars.copy_context()
        copied = threading.Thread(target=copied_context.run, args=(look, "copied"))
        for t in (plain, copied):
            t.start()
            t.join()

    assert seen == {"plain": None, "copied": "usr_1"}
