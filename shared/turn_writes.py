"""An AMQP connection whose frames of one event-loop turn leave in one socket write.

aiormq hands every frame set (a publish with its header and body, an ack) to the socket on
its own, and uvloop writes each at once: a system call, and on loopback a trip through the
TCP stack that wakes the broker, per frame. A worker's jobs finish in bursts (the runners
woken by one Redis reply publish in the same turn), so its publishes and acks of a turn go
out together here: what is written during a turn is sent in one write when the loop next
runs its callbacks, or at once past :data:`FLUSH_BYTES`.

Nothing else changes: frames keep their order, ``drain`` still waits while the transport is
paused (the broker reads slower than we write), and a publish counts only once the broker
has confirmed it, which it can do only after it has read it. A closing or closed transport
gets its writes as before, so errors surface where they did.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aiormq.connection import SSLContextProvider, TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

FLUSH_BYTES = 256 * 1024
"""Written at once when a turn buffers this much, so a burst never sits in memory long."""


class TurnWriter(asyncio.StreamWriter):
    """A stream writer that gathers the writes of one loop turn into one transport write."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.StreamReaderProtocol,
        reader: asyncio.StreamReader,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self.event_loop = loop
        self.pending: list[bytes] = []
        self.pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.transport.is_closing():
            self.flush()
            super().write(data)
            return
        if not data:
            return
        if not self.pending:
            self.event_loop.call_soon(self.flush)
        self.pending.append(bytes(data))
        self.pending_bytes += len(data)
        if self.pending_bytes >= FLUSH_BYTES:
            self.flush()

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what this turn wrote to the transport, as one write."""
        if not self.pending:
            return
        chunks, self.pending, self.pending_bytes = self.pending, [], 0
        super().write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def write_eof(self) -> None:
        self.flush()
        super().write_eof()

    def close(self) -> None:
        self.flush()
        super().close()


class TurnTransportFactory(TransportFactory):
    """aiormq's TCP and TLS transports, with a :class:`TurnWriter` for the connection."""

    async def create(
        self, url: URL, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        provider: SSLContextProvider | None = kwargs.pop("ssl_context_provider", None)
        ssl = await provider.get_context() if provider and url.scheme == "amqps" else None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol,
                host=url.host or "localhost",
                port=url.port or 5672,
                ssl=ssl,
                **kwargs,
            )
        except OSError as exc:
            raise AMQPConnectionError(*exc.args) from exc
        return reader, TurnWriter(transport, protocol, reader, loop)


class TurnWritesConnection(aio_pika.RobustConnection):
    """A robust connection whose every (re)connect goes through :class:`TurnTransportFactory`."""

    def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any):
        super().__init__(url, loop, **kwargs)
        self.kwargs["transport_factory"] = TurnTransportFactory()
