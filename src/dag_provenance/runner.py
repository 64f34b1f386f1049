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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from dag_provenance.dberrors import translated
from dag_provenance.execution import Executor
from dag_provenance.operations import (
    All,
    AllOf,
    Execute,
    First,
    Many,
    Operation,
    OperationContext,
    StatementRequest,
    Unit,
    Work,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def answer(executor: Executor, request: StatementRequest) -> Any:
    """The executor's answer to one statement request."""
    match request:
        case First(statement, params):
            return executor.first(statement, params)
        case All(statement, params):
            return executor.all(statement, params)
        case Execute(statement, params):
            return executor.execute(statement, params)
        case Many(statement, rows):
            return executor.many(statement, rows)
        case AllOf(queries):
            return executor.all_of(queries)
    raise TypeError(f"not a statement request: {request!r}")


def drive(work: Work[T], executor: Executor) -> T:
    """Run a unit's work on `executor`."""
    try:
        request = next(work)
        while True:
            request = work.send(answer(executor, request))
    except StopIteration as done:
        result: T = done.value
        return result


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

    functools.update_wrapper(method, operation)  # name, docstring, signature
    return method


# --- async ------------------------------------------------------------------------------


async def drive_async(work: Work[T], executor: Any) -> T:
    """Run a unit's work on an async executor (its methods are coroutines)."""
    try:
        request = next(work)
        while True:
            request = work.send(await answer(executor, request))
    except StopIteration as done:
        result: T = done.value
        return result


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

    functools.update_wrapper(method, operation)  # name, docstring, signature
    return method


__all__ = [
    "answer",
    "async_operation",
    "drive",
    "drive_async",
    "run_async",
    "run_sync",
    "sync_operation",
]
