"""Running the operations (`operations`) on a store: the only code that
differs between the sync and the async store, and it is small.

An operation yields units of work; the runner runs each on the store's unit
of work and sends back its result, or throws its error in. A unit's work
yields statement requests; the driver answers each with the executor. The
sync and async versions are the same loops, one with `await`.

`sync_operation` / `async_operation` turn an operation into a store method
with the operation's own signature and docstring, its errors translated to
the library's (`dberrors`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from dag_provenance.dberrors import translated
from dag_provenance.execution import Executor
from dag_provenance.operations import Operation, OperationContext, Unit, Write
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


def drive(work: Work[T], executor: Executor) -> T:
    """Run a unit's work on `executor`; a statement's error is thrown into
    the work at its `yield`."""
    try:
        request = next(work)
        while True:
            try:
                answered = answer(executor, request)
            except Exception as e:
                request = work.throw(e)
            else:
                request = work.send(answered)
    except StopIteration as done:
        result: T = done.value
        return result


def sync_work(unit: Unit) -> Callable[[Executor], Any]:
    """A unit's work (one statement request, or a factory of a `Work`) as a
    function of the executor, for the sync unit of work."""
    if isinstance(unit.work, STATEMENT_REQUESTS):
        return functools.partial(_answer_one, unit.work)
    if isinstance(unit, Write):
        return functools.partial(_drive_write, unit.work)
    return functools.partial(_drive_read, unit.work)


def _answer_one(request: StatementRequest, executor: Executor) -> Any:
    return _ANSWERS[type(request)](executor, request)


def _drive_read(make: Callable[[], Work[Any]], executor: Executor) -> Any:
    return drive(make(), executor)


def _drive_write(make: Callable[[bool], Work[Any]], executor: Executor) -> Any:
    return drive(make(executor.deferred), executor)


class SyncUnits(Protocol):
    """A store that runs units of work synchronously."""

    def _run_unit(self, unit: Unit) -> Any: ...


def run_sync(store: SyncUnits, operation: Operation[R]) -> R:
    """Run `operation`'s units one after the other on `store`."""
    try:
        unit = next(operation)
        while True:
            try:
                result = store._run_unit(unit)
            except Exception as e:
                unit = operation.throw(e)
            else:
                unit = operation.send(result)
    except StopIteration as done:
        answered: R = done.value
        return answered


def sync_operation(
    operation: Callable[Concatenate[OperationContext, P], Operation[R]],
) -> Callable[Concatenate[Any, P], R]:
    """`operation` as a method of a sync store: one with `_context` (its
    `OperationContext`) and `_run_unit` (the runner's seam into its unit of
    work)."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return run_sync(self, operation(self._context, *args, **kwargs))

    _present_as_method(method, operation)
    return method


def _present_as_method(method: Any, operation: Callable[..., Any]) -> None:
    """Give `method` the operation's name, docstring and signature, as a
    method shows them: `self` unannotated, returning what the operation's
    `Operation[...]` answers."""
    functools.update_wrapper(method, operation)
    signature = inspect.signature(operation)
    first, *rest = signature.parameters.values()
    answered = str(signature.return_annotation)
    if answered.startswith("Operation[") and answered.endswith("]"):
        answered = answered[len("Operation[") : -1]
    method.__signature__ = signature.replace(
        parameters=[first.replace(annotation=inspect.Parameter.empty), *rest],
        return_annotation=answered,
    )


# --- async ------------------------------------------------------------------------------


async def drive_async(work: Work[T], executor: Any) -> T:
    """Run a unit's work on an async executor (its methods are coroutines)."""
    try:
        request = next(work)
        while True:
            try:
                answered = await answer(executor, request)
            except Exception as e:
                request = work.throw(e)
            else:
                request = work.send(answered)
    except StopIteration as done:
        result: T = done.value
        return result


def async_work(unit: Unit) -> Callable[[Any], Awaitable[Any]]:
    """`sync_work`'s twin: a unit's work as a coroutine function of an async executor."""
    if isinstance(unit.work, STATEMENT_REQUESTS):
        return functools.partial(_answer_one_async, unit.work)
    if isinstance(unit, Write):
        return functools.partial(_drive_write_async, unit.work)
    return functools.partial(_drive_read_async, unit.work)


async def _answer_one_async(request: StatementRequest, executor: Any) -> Any:
    return await _ANSWERS[type(request)](executor, request)


async def _drive_read_async(make: Callable[[], Work[Any]], executor: Any) -> Any:
    return await drive_async(make(), executor)


async def _drive_write_async(make: Callable[[bool], Work[Any]], executor: Any) -> Any:
    return await drive_async(make(executor.deferred), executor)


class AsyncUnits(Protocol):
    """A store that runs units of work as coroutines."""

    def _run_unit(self, unit: Unit) -> Awaitable[Any]: ...


async def run_async(store: AsyncUnits, operation: Operation[R]) -> R:
    """Run `operation`'s units one after the other on `store`, awaiting each."""
    try:
        unit = next(operation)
        while True:
            try:
                result = await store._run_unit(unit)
            except Exception as e:
                unit = operation.throw(e)
            else:
                unit = operation.send(result)
    except StopIteration as done:
        answered: R = done.value
        return answered


def async_operation(
    operation: Callable[Concatenate[OperationContext, P], Operation[R]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """`operation` as a coroutine method of an async store."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return await run_async(self, operation(self._context, *args, **kwargs))

    _present_as_method(method, operation)
    return method


__all__ = [
    "answer",
    "async_operation",
    "async_work",
    "drive",
    "drive_async",
    "run_async",
    "run_sync",
    "sync_operation",
]
