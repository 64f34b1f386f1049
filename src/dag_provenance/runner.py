"""Running the operations (`operations`) on a store, sync or async.

An operation yields units of work; the runner runs each on the store's unit
of work and sends back its result, or throws its error in. A unit's work
yields statement requests; the executor answers each. One loop (`_loop`)
does both, for both stores: for the async store it awaits each answer.

`StoreMethod` makes an operation a method of every store: a plain method of
a `SyncStore`, a coroutine method of an `AsyncStore` (see `methods`).
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from dag_provenance.dberrors import translated
from dag_provenance.execution import Executor
from dag_provenance.operations import Operation, OperationContext, Read, Unit, Write
from dag_provenance.requests import (
    STATEMENT_REQUESTS,
    All,
    AllOf,
    Execute,
    First,
    Many,
    StatementRequest,
    Work,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Q = TypeVar("Q")
F = TypeVar("F", bound=Callable[..., Any])


_ANSWERS: dict[type, Callable[[Any, Any], Any]] = {
    First: lambda ex, r: ex.first(r.statement, r.params),
    All: lambda ex, r: ex.all(r.statement, r.params),
    Execute: lambda ex, r: ex.execute(r.statement, r.params),
    Many: lambda ex, r: ex.many(r.statement, r.rows),
    AllOf: lambda ex, r: ex.all_of(r.queries),
}


def answer(executor: Executor, request: StatementRequest) -> Any:
    """The executor's answer to one statement request (for an async
    executor, the coroutine that gives it)."""
    return _ANSWERS[type(request)](executor, request)


def _loop(
    steps: Generator[Q, Any, T], step: Callable[[Q], Any], awaiting: bool
) -> Generator[Any, Any, T]:
    """The one loop both stores run: each request `steps` yields goes to
    `step`, and its answer is sent back (or its error thrown in at the
    `yield`) until `steps` returns.

    With `awaiting`, each answer is an awaitable, awaited here: the loop is
    then a coroutine (`types.coroutine` below marks it so), for the async
    store to await. Without, nothing is awaited, the loop never suspends,
    and `_finished` runs it to its end at once, for the sync store."""
    value: Any = None
    send = steps.send
    while True:
        try:
            request = send(value)
        except StopIteration as done:
            result: T = done.value
            return result
        try:
            value = step(request)
            if awaiting:
                value = yield from value.__await__()
        except Exception as e:
            value, send = e, steps.throw
        else:
            send = steps.send


# Marks `_loop`'s generators as awaitable (in place: the sync uses are the same
# function, and never await).
_awaited_loop: Callable[[Generator[Q, Any, T], Callable[[Q], Any], bool], Awaitable[T]]
_awaited_loop = types.coroutine(_loop)


def _finished(loop: Generator[Any, Any, T]) -> T:
    try:
        loop.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    raise AssertionError("a sync store's step was awaited")  # pragma: no cover


def drive(work: Work[T], executor: Executor) -> T:
    """Run a unit's work on `executor`; a statement's error is thrown into
    the work at its `yield`."""
    return _finished(_loop(work, functools.partial(answer, executor), False))


def drive_async(work: Work[T], executor: Any) -> Awaitable[T]:
    """`drive` on an async executor (whose methods are coroutines), awaitable."""
    return _awaited_loop(work, functools.partial(answer, executor), True)


def unit_work(unit: Unit, awaiting: bool = False) -> Callable[[Any], Any]:
    """A unit's work (one statement request, or a factory of a `Work`) as a
    function of the executor that gives the unit's result; with `awaiting`,
    an awaitable of it (for the async unit of work)."""
    if isinstance(unit.work, STATEMENT_REQUESTS):
        return functools.partial(answer, request=unit.work)
    return functools.partial(_drive_unit, unit, drive_async if awaiting else drive)


def _drive_unit(unit: Unit, run: Callable[[Work[Any], Any], Any], executor: Any) -> Any:
    make: Any = unit.work
    return run(make(executor.deferred) if isinstance(unit, Write) else make(), executor)


def run_sync(store: Any, operation: Operation[R]) -> R:
    """Run `operation`'s units one after the other on `store` (its `_run_unit`)."""
    return _finished(_loop(operation, store._run_unit, False))


def run_async(store: Any, operation: Operation[R]) -> Awaitable[R]:
    """`run_sync` for a store whose `_run_unit` is a coroutine, awaitable."""
    return _awaited_loop(operation, store._run_unit, True)


def submit(store: Any, unit_of_work: Any, unit: Unit, awaiting: bool = False) -> Any:
    """Run one unit of an operation of `store` on its unit of work: its
    result (with `awaiting`, an awaitable of it)."""
    work = unit_work(unit, awaiting)
    if isinstance(unit, Read):
        return unit_of_work.read(work, snapshot=unit.snapshot)
    replay = unit.on_replay
    if replay is not None:
        again = run_async if awaiting else run_sync
        on_replay: Callable[[], Any] | None = lambda: again(store, replay())  # noqa: E731
    else:
        on_replay = None
    return unit_of_work.write(
        work,
        payloads=unit.payloads,
        single=unit.single,
        pipeline=unit.pipeline,
        on_replay=on_replay,
    )


# --- operations as store methods -------------------------------------------------------


class SyncStore:
    """A store whose methods return their answers (`DagProvenance`,
    `NullProvenance`): its `StoreMethod`s become plain methods."""

    _context: OperationContext

    def _run_unit(self, unit: Unit) -> Any:
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _bind(cls, asynchronous=False)


class AsyncStore:
    """A store whose methods are coroutines (`AsyncDagProvenance`,
    `AsyncNullProvenance`): its `StoreMethod`s become coroutine methods."""

    _context: OperationContext

    async def _run_unit(self, unit: Unit) -> Any:
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _bind(cls, asynchronous=True)


class StoreMethod(Generic[P, R]):
    """An operation as a method of every store: declared once (see
    `methods`), it is a plain method on a `SyncStore` and a coroutine method
    on an `AsyncStore`, each with the operation's name, docstring and
    signature, its errors translated to the library's (`dberrors`)."""

    def __init__(self, operation: Callable[Concatenate[OperationContext, P], Operation[R]]):
        def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with translated():
                return run_sync(self, operation(self._context, *args, **kwargs))

        async def coroutine(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with translated():
                return await run_async(self, operation(self._context, *args, **kwargs))

        self.sync = _present_as_method(method, operation)
        self.asynchronous = _present_as_method(coroutine, operation)

    @overload
    def __get__(self, store: None, owner: type) -> StoreMethod[P, R]: ...
    @overload
    def __get__(
        self, store: AsyncStore, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, store: SyncStore, owner: type | None = None) -> Callable[P, R]: ...
    def __get__(self, store: object, owner: type | None = None) -> Any:
        # Only until the class is made: `SyncStore`/`AsyncStore` then bind the
        # method itself (see `_bind`), so calls pay no descriptor.
        if store is None:
            return self
        chosen = self.asynchronous if isinstance(store, AsyncStore) else self.sync
        return chosen.__get__(store, owner)


def _bind(cls: type, *, asynchronous: bool) -> None:
    for name in dir(cls):
        declared = inspect.getattr_static(cls, name)
        if isinstance(declared, StoreMethod):
            setattr(cls, name, declared.asynchronous if asynchronous else declared.sync)


def _present_as_method(method: F, operation: Callable[..., Any]) -> F:
    """Give `method` the operation's name, docstring and signature, as a
    method shows them: `self` unannotated, returning what the operation's
    `Operation[...]` answers."""
    functools.update_wrapper(method, operation)
    signature = inspect.signature(operation)
    first, *rest = signature.parameters.values()
    answered = str(signature.return_annotation)
    if answered.startswith("Operation[") and answered.endswith("]"):
        answered = answered[len("Operation[") : -1]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[first.replace(annotation=inspect.Parameter.empty), *rest],
        return_annotation=answered,
    )
    return method


__all__ = [
    "AsyncStore",
    "StoreMethod",
    "SyncStore",
    "answer",
    "drive",
    "drive_async",
    "run_async",
    "run_sync",
    "submit",
    "unit_work",
]
