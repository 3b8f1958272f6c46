"""``python -m loadtests.accept_spread``: how two server processes on one port share a burst
of new connections: one shared listening socket (uvicorn ``--workers``) or a socket each
with ``SO_REUSEPORT`` (``COORD_GATEWAYS``).

Each round starts two uvicorn processes serving ``loadtests.bare_app:bare``, opens
``--connections`` connections at once (as Locust's users do), sends one request on each
and keeps them open, then counts the established connections of each process (psutil).
The figure is the larger process's share: 0.5 is an even spread, 1.0 all on one.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from typing import Annotated

import psutil
import typer

from coordctl.servers import free_port, wait_listening

APP = "loadtests.bare_app:bare"
SERVE = (
    "import socket, sys, uvicorn\n"
    "from services.gateway.group import bind_reuse_port\n"
    "fd, port = int(sys.argv[1]), int(sys.argv[2])\n"
    "sock = socket.socket(fileno=fd) if fd >= 0 else bind_reuse_port('127.0.0.1', port)\n"
    f"config = uvicorn.Config({APP!r}, loop='uvloop', http='httptools', log_level='warning')\n"
    "uvicorn.Server(config).run(sockets=[sock])\n"
)
REQUEST = b"POST /batches HTTP/1.1\r\nHost: bench\r\nContent-Length: 2\r\n\r\n{}"


def start_pair(mode: str, port: int) -> tuple[list[subprocess.Popen[bytes]], socket.socket | None]:
    """Two server processes on ``port``: sharing the parent's socket, or binding their own."""
    shared = None
    fds: tuple[int, ...] = ()
    if mode == "shared":
        shared = socket.socket()
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        shared.bind(("127.0.0.1", port))
        shared.set_inheritable(True)
        fds = (shared.fileno(),)
    fd = str(fds[0]) if fds else "-1"
    processes = [
        subprocess.Popen([sys.executable, "-c", SERVE, fd, str(port)], pass_fds=fds)
        for _ in range(2)
    ]
    return processes, shared


async def open_connections(port: int, count: int) -> list[asyncio.StreamWriter]:
    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        return writer

    return await asyncio.gather(*(one() for _ in range(count)))


def spread(mode: str, connections: int) -> list[int]:
    """Connections each of the two processes holds after one burst."""
    port = free_port()
    processes, shared = start_pair(mode, port)
    try:
        wait_listening("127.0.0.1", port, timeout_s=30, what=mode)
        time.sleep(1.0)  # both processes listening, not only the first

        async def burst() -> list[int]:
            writers = await open_connections(port, connections)
            held = [
                sum(
                    1
                    for c in psutil.Process(p.pid).net_connections(kind="tcp")
                    if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
                )
                for p in processes
            ]
            for writer in writers:
                writer.close()
            return held

        return asyncio.run(burst())
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        if shared is not None:
            shared.close()


def main(
    rounds: Annotated[int, typer.Option(min=1, max=50)] = 5,
    connections: Annotated[int, typer.Option(min=2, max=2000)] = 100,
) -> None:
    """Print each round's split and the median share of the busier process, per mode."""
    for mode in ("shared", "reuseport"):
        shares = []
        for _ in range(rounds):
            held = spread(mode, connections)
            shares.append(max(held) / max(1, sum(held)))
            print(f"{mode:9} {held[0]:4} / {held[1]:4}")
        print(f"{mode:9} median share of the busier process: {statistics.median(shares):.2f}")


if __name__ == "__main__":
    typer.run(main)
