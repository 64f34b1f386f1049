"""How a command fails: one line on stderr and exit code 1, never with a
password in it; `--debug` (before the command) shows the traceback instead."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer

from dag_provenance.errors import ProvenanceError

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """A user-facing failure: its message is printed as is."""


class _Invocation:
    """How this invocation reports errors (set again before every command,
    since one process may run several, as the tests do)."""

    debug = False


_secrets: set[str] = set()


def start_invocation(*, debug: bool) -> None:
    """Before a command: tracebacks only with `debug`, and no secret known yet."""
    _Invocation.debug = debug
    _secrets.clear()


def hide(secret: str) -> None:
    """Print `secret` (a password) as `***` in any error message."""
    _secrets.add(secret)


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn any error escaping a command into one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as e:
            if _Invocation.debug:
                raise
            _fail(e)

    return wrapper


def _fail(e: BaseException) -> NoReturn:
    if isinstance(e, CliError | ProvenanceError):
        message = str(e)
    elif isinstance(e, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = f"{type(e).__name__}: {e} (--debug shows the traceback)"
    message = " ".join(message.split()) or type(e).__name__
    for secret in _secrets:
        message = message.replace(secret, "***")
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(1)
