"""A process pool driven by the worker's event loop itself, without threads.

``ProcessPoolExecutor`` hands each call over through two threads of the parent: a feeder
that pickles calls into a queue all children share, and a manager that waits for results
and wakes the loop through its self-pipe. Each job then costs a handful of thread
wake-ups and GIL hand-offs in the worker, on the very cores the children compute on.
Here each child has a pipe of its own; the loop writes a call into it and reads the
result when the pipe turns readable (``loop.add_reader``), so a job is one write and one
wake-up. Every child keeps up to :data:`CALLS_PER_CHILD` calls queued, so it starts the
next as soon as it has sent a result, without waiting for the loop.

A child that dies breaks the pool for good, as with ``ProcessPoolExecutor``: every call
waiting on it fails with ``BrokenProcessPool``, which the :class:`CpuRunner` answers by
starting a new pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")

CALLS_PER_CHILD = 2
"""Calls handed to one child at a time: the one it runs and the next, so it never waits for
the loop between two, while a call waits behind at most one other in a busy child."""

JOIN_TIMEOUT_S = 5.0


def serve_calls(calls: Connection) -> None:
    """A child's life: run each call received, send back its value or its error, in order,
    until the pipe closes (the pool shut down, or the worker died)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
    while True:
        try:
            call = calls.recv()
        except (EOFError, OSError):
            return
        if call is None:
            return
        function, args = call
        try:
            outcome: tuple[bool, Any] = (True, function(*args))
        except BaseException as exc:  # as ProcessPoolExecutor does: the caller gets it
            outcome = (False, exc)
        try:
            calls.send(outcome)
        except (OSError, ValueError):
            return
        except Exception as exc:  # an unpicklable value or error: say what it was
            calls.send((False, RuntimeError(f"result could not be sent back: {exc!r}")))


@dataclass
class Child:
    process: BaseProcess
    calls: Connection
    waiting: deque[asyncio.Future[Any]] = field(default_factory=deque)


class LoopProcessPool:
    """``size`` spawned children fed by the running event loop (see the module's docstring).

    Children start at the first :meth:`run`, on the loop that will read their results.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.children: list[Child] = []
        self.queued: deque[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]] = (
            deque()
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.broken = False
        self.closed = False

    def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        for _ in range(self.size):
            mine, theirs = context.Pipe(duplex=True)
            process = context.Process(target=serve_calls, args=(theirs,), daemon=True)
            process.start()
            theirs.close()  # the child's end lives in the child alone, so its death reads as EOF
            child = Child(process, mine)
            self.children.append(child)
            self.loop.add_reader(mine.fileno(), self._results, child)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a child; its value, or its error raised here."""
        if self.broken:
            raise BrokenProcessPool("a child of this pool died")
        if self.closed:
            raise RuntimeError("the pool is shut down")
        if self.loop is None:
            self._start()
        assert self.loop is not None
        future: asyncio.Future[T] = self.loop.create_future()
        self.queued.append((future, function, args))
        self._hand_out()
        return await future

    def _hand_out(self) -> None:
        """Give queued calls to the children with the fewest calls, up to CALLS_PER_CHILD."""
        while self.queued:
            child = min(self.children, key=lambda c: len(c.waiting))
            if len(child.waiting) >= CALLS_PER_CHILD:
                return
            future, function, args = self.queued.popleft()
            if future.cancelled():
                continue
            try:
                child.calls.send((function, args))
            except (OSError, ValueError):  # the child is gone: the pool is broken
                child.waiting.append(future)
                self._break()
                return
            except Exception as exc:  # the call itself cannot be pickled
                future.set_exception(exc)
                continue
            child.waiting.append(future)

    def _results(self, child: Child) -> None:
        """The child's pipe is readable: a result, or EOF when the child died."""
        try:
            while child.calls.poll():
                ok, value = child.calls.recv()
                future = child.waiting.popleft()
                if future.cancelled():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (EOFError, OSError):
            self._break()
            return
        self._hand_out()

    def _break(self) -> None:
        self.broken = True
        error = BrokenProcessPool("a child of this pool died; its calls did not finish")
        for child in self.children:
            while child.waiting:
                future = child.waiting.popleft()
                if not future.done():
                    future.set_exception(error)
        while self.queued:
            future = self.queued.popleft()[0]
            if not future.done():
                future.set_exception(error)
        self.shutdown(wait=False)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = True) -> None:
        """Stop the children: after their current call with ``wait``, at once without.

        Every call not finished yet is cancelled here (``cancel_futures`` is always true:
        nothing would read its result once the pool is gone)."""
        if self.closed:
            return
        self.closed = True
        while self.queued:
            self.queued.popleft()[0].cancel()
        for child in self.children:
            while child.waiting:
                child.waiting.popleft().cancel()
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(child.calls.fileno())
            if wait:
                with contextlib.suppress(OSError, ValueError):
                    child.calls.send(None)
            else:
                child.process.terminate()
        for child in self.children:
            child.process.join(JOIN_TIMEOUT_S if wait else 1.0)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1.0)
            child.calls.close()
