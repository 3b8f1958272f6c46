"""The ``io`` step's Redis touches, sent together: one pipeline per turn of the event loop.

Every job still makes its own ``SET`` and waits for its own reply before its result is
published; only the round trips are shared. The jobs of a worker reach their touch at
nearly the same moment, so one write and one read carry many of them, which saves the
worker and Redis a system call and a parse each per job. A touch that fails raises its own
error in its own job (a lost connection fails every touch of that pipeline), so the job's
failure rules are unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

MAX_PER_PIPELINE = 512


class Touches:
    """Collects the ``SET`` of each job that asks in one loop turn, then sends them at once."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.waiting: list[tuple[str, Any, int, asyncio.Future[None]]] = []
        self.sending: set[asyncio.Task[None]] = set()

    async def set(self, key: str, value: Any, *, px: int) -> None:
        """``SET key value PX px``; returns once Redis has answered this very command."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((key, value, px, future))
        if len(self.waiting) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        await future

    def _flush(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_PER_PIPELINE], self.waiting[MAX_PER_PIPELINE:]
            task = asyncio.ensure_future(self._send(batch))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _send(self, batch: list[tuple[str, Any, int, asyncio.Future[None]]]) -> None:
        try:
            replies = await self._pipeline(batch)
        except Exception as exc:  # every touch of the pipeline shares its fate
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for *_, future in batch:
                future.cancel()
            raise
        for reply, (*_, future) in zip(replies, batch, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(None)

    async def _pipeline(self, batch: list[tuple[str, Any, int, asyncio.Future[None]]]) -> list[Any]:
        """The batch's ``SET``s in one write on one of the client's connections, and their
        replies, each an error of its own if Redis refused it: what redis-py's
        ``pipeline(transaction=False).execute(raise_on_error=False)`` does, under the same
        ``connection.retry`` and disconnect on a lost connection, without a pipeline object
        and its per-command bookkeeping each loop turn (the README's levers table)."""
        pool = self.redis.connection_pool
        connection: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            replies: list[Any] = await connection.retry.call_with_retry(
                lambda: self._round_trip(connection, batch),
                lambda _: connection.disconnect(),
            )
            return replies
        finally:
            await pool.release(connection)

    @staticmethod
    async def _round_trip(
        connection: AbstractConnection, batch: list[tuple[str, Any, int, asyncio.Future[None]]]
    ) -> list[Any]:
        await connection.send_packed_command(
            connection.pack_commands([("SET", key, value, "PX", px) for key, value, px, _ in batch])
        )
        replies: list[Any] = []
        for _ in batch:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
