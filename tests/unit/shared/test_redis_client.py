import asyncio
import enum

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError

from shared.redis_client import HIREDIS, hiredis_packing, make_redis
from shared.settings import load_settings

needs_hiredis = pytest.mark.skipif(not HIREDIS, reason="hiredis is not installed")


class Field(enum.StrEnum):
    DONE = "done"


class Small(enum.IntEnum):
    ONE = 1


def packed(connection: Connection, *args: object) -> bytes:
    return b"".join(bytes(chunk) for chunk in connection.pack_command(*args))


@needs_hiredis
@pytest.mark.parametrize(
    "args",
    [
        ("SET", "key", 1, "PX", 60_000),
        ("EVALSHA", "f" * 40, 2, "k1", "k2", 1795827323.2450914, 0.1, -3, 2**70, "é", Field.DONE),
        (b"SET", b"\x00\xff", "x"),
        ("CONFIG GET", "maxmemory"),
        ("SET", bytearray(b"ab"), memoryview(b"cd"), Small.ONE),
    ],
)
def test_hiredis_packs_the_same_bytes_as_redis_py(args: tuple[object, ...]) -> None:
    """hiredis's packer for what it accepts, redis-py's for the rest: the same bytes."""
    assert packed(hiredis_packing(Connection)(), *args) == packed(Connection(), *args)


@needs_hiredis
@pytest.mark.parametrize("bad", [True, None, object()])
def test_what_redis_py_refuses_is_still_refused(bad: object) -> None:
    with pytest.raises(DataError):
        hiredis_packing(Connection)().pack_command("SET", "key", bad)


@needs_hiredis
def test_one_class_per_connection_class_and_the_switch() -> None:
    assert hiredis_packing(Connection) is hiredis_packing(Connection)
    assert issubclass(hiredis_packing(UnixDomainSocketConnection), UnixDomainSocketConnection)
    on = make_redis(load_settings(redis_hiredis=True)).connection_pool.connection_class
    off = make_redis(load_settings(redis_hiredis=False)).connection_pool.connection_class
    assert on is hiredis_packing(Connection) and off is Connection


async def test_a_dropped_connection_is_tried_again_then_the_error_is_the_callers() -> None:
    """A listener that closes every connection it accepts: the command is tried again, and
    so is each attempt's connect (redis-py retries both), before the error reaches the
    caller; never endlessly."""
    accepted = 0

    def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_redis(load_settings(redis_url=f"redis://127.0.0.1:{port}/0"), retries=3)
    try:
        with pytest.raises(RedisConnectionError):
            await client.ping()
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert 1 + 3 <= accepted <= (1 + 3) ** 2
