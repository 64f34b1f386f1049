"""The initiator context variable and its context manager."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
import types

import pytest

from dag_provenance import SCHEDULER, initiated_by, run_initiator
from dag_provenance.initiator import LYTHONIC_MODULE, current_initiator


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


@pytest.fixture
def fake_lythonic(monkeypatch: pytest.MonkeyPatch) -> contextvars.ContextVar[str | None]:
    """A stand-in for lythonic's module and its own initiator variable."""
    module = types.ModuleType(LYTHONIC_MODULE)
    variable: contextvars.ContextVar[str | None] = contextvars.ContextVar(
        "run_initiator", default=None
    )
    module.run_initiator = variable  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, LYTHONIC_MODULE, module)
    return variable


def test_initiated_by_also_sets_lythonic_s_variable_when_lythonic_is_imported(
    fake_lythonic: contextvars.ContextVar[str | None],
) -> None:
    with initiated_by("usr_1"):
        assert fake_lythonic.get() == "usr_1"
        with initiated_by(None):
            assert fake_lythonic.get() is None
        assert fake_lythonic.get() == "usr_1"
    assert fake_lythonic.get() is None


def test_current_initiator_reads_lythonic_s_variable_set_by_lythonic_alone(
    fake_lythonic: contextvars.ContextVar[str | None],
) -> None:
    token = fake_lythonic.set("carol")
    try:
        assert current_initiator() == "carol"
    finally:
        fake_lythonic.reset(token)
    assert current_initiator() is None


def test_current_initiator_falls_back_to_ours_when_lythonic_came_after_the_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, LYTHONIC_MODULE, raising=False)
    with initiated_by("usr_early"):
        late = types.ModuleType(LYTHONIC_MODULE)
        late.run_initiator = contextvars.ContextVar("run_initiator", default=None)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, LYTHONIC_MODULE, late)
        assert current_initiator() == "usr_early"


def test_using_the_initiator_never_imports_lythonic() -> None:
    script = (
        "import sys\n"
        "from dag_provenance import initiated_by\n"
        "from dag_provenance.initiator import current_initiator\n"
        "with initiated_by('usr_1'):\n"
        "    assert current_initiator() == 'usr_1'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lythonic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
