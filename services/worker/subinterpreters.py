"""A pool of subinterpreters, each with its own GIL, for the ``interpreters`` worker mode.

CPython 3.14 ships ``concurrent.futures.InterpreterPoolExecutor``; on 3.12 and 3.13 PEP 734's
backport (``interpreters-pep-734`` on PyPI) provides the same class over the interpreter's
private ``_interpreters`` module. Elsewhere the mode cannot run, and the worker says so in
one line at start-up instead of failing its first job.
"""

from __future__ import annotations

import platform
import sys
from concurrent.futures import Executor

BACKPORT = "interpreters-pep-734"


class ModeUnavailable(RuntimeError):
    """The worker mode cannot run under this interpreter; the message says what would."""


def interpreter_pool_class() -> type[Executor]:
    """The InterpreterPoolExecutor of this interpreter, or :class:`ModeUnavailable`."""
    try:
        from concurrent.futures import (  # type: ignore[attr-defined,unused-ignore]
            InterpreterPoolExecutor,
        )
    except ImportError:
        pass
    else:
        pool: type[Executor] = InterpreterPoolExecutor
        return pool
    version = platform.python_version()
    if sys.version_info < (3, 12):
        raise ModeUnavailable(
            f"worker mode 'interpreters' needs Python 3.12+ (subinterpreters with their own "
            f"GIL); this worker runs {version}: build one with `make python-ft`, then "
            "`make up RUNTIME=ft-gil MODE=interpreters`"
        )
    try:
        from interpreters_backport.concurrent.futures import (  # type: ignore[import-not-found,unused-ignore]
            InterpreterPoolExecutor as BackportPool,
        )
    except ImportError as exc:
        raise ModeUnavailable(
            f"worker mode 'interpreters' on Python {version} needs the {BACKPORT} package "
            f"(pip install {BACKPORT}): {exc}"
        ) from None
    backport: type[Executor] = BackportPool
    return backport


def interpreter_pool(size: int) -> Executor:
    """``size`` threads, each running its steps in a subinterpreter of its own.

    A step's function and arguments cross by pickle, so the function must be a top-level
    one of an importable module (as for a process pool).
    """
    return interpreter_pool_class()(size, thread_name_prefix="interp")  # type: ignore[call-arg]
