"""The gateway's uvicorn server ticks once a second, yet stops as soon as it is asked to."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import uvicorn

from coordctl.servers import free_port
from services.gateway.server import GatewayServer


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


async def test_asking_to_exit_wakes_the_one_second_tick_at_once() -> None:
    port = free_port()
    server = GatewayServer(uvicorn.Config(hello, host="127.0.0.1", port=port, log_level="error"))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/")
    assert answer.status_code == 200 and "date" in answer.headers
    await asyncio.sleep(0.3)  # inside a one-second tick

    asked = time.perf_counter()
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=5)
    assert time.perf_counter() - asked < 0.5, "not left waiting for the tick to end"
