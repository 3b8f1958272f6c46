"""The AMQP writer that sends a loop turn's frames in one write: order, timing, closing."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.turn_writes import FLUSH_BYTES, TurnWriter


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False
        self.eof = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True


def writer() -> tuple[TurnWriter, FakeTransport]:
    loop = asyncio.get_running_loop()
    transport = FakeTransport()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    return TurnWriter(transport, protocol, reader, loop), transport


async def test_the_frames_of_one_turn_leave_in_one_write_in_order() -> None:
    turn_writer, transport = writer()
    for frame in (b"publish-1", b"ack-7", b"publish-2"):
        turn_writer.write(frame)
        await turn_writer.drain()
    assert transport.written == []
    await asyncio.sleep(0)
    assert transport.written == [b"publish-1ack-7publish-2"]
    turn_writer.write(b"next-turn")
    await asyncio.sleep(0)
    assert transport.written[1:] == [b"next-turn"]


async def test_a_large_turn_is_written_at_once() -> None:
    turn_writer, transport = writer()
    turn_writer.write(b"x" * FLUSH_BYTES)
    assert transport.written == [b"x" * FLUSH_BYTES]


async def test_closing_sends_what_waits_first() -> None:
    turn_writer, transport = writer()
    turn_writer.write(b"close-ok")
    turn_writer.write_eof()
    turn_writer.close()
    assert transport.written == [b"close-ok"]
    assert transport.eof and transport.closing


async def test_a_closing_transport_gets_its_writes_at_once() -> None:
    turn_writer, transport = writer()
    transport.closing = True
    turn_writer.write(b"late")
    assert transport.written == [b"late"]
